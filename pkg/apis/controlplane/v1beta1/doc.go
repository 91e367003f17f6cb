// Package v1beta1 is version v1beta1 of the controlplane.antrea.io API: the
// objects antrea-controller computes from Kubernetes NetworkPolicies and
// serves to agents through its aggregated API server.
//
// AppliedToGroups and AddressGroups are cluster-scoped; NetworkPolicies
// keep the namespace and name of the Kubernetes NetworkPolicy they come
// from. Every resource is read-only (get, list, watch) and accepts the
// field selector nodeName=<node>, which narrows it to the objects that
// node needs (its span); for AppliedToGroups it also narrows the members
// to the pods on that node. Watches send group changes as patches
// (AppliedToGroupPatch, AddressGroupPatch) that add and remove members.
//
// +k8s:deepcopy-gen=package
// +k8s:protobuf-gen=package
// +k8s:openapi-gen=true
// +groupName=controlplane.antrea.io
package v1beta1
