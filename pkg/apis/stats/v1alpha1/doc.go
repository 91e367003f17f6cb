// Package v1alpha1 is version v1alpha1 of the stats.antrea.io API: the
// traffic each Kubernetes NetworkPolicy allowed and dropped, per rule,
// summed over every node by antrea-controller from its agents' summaries
// and served read-only (get, list) by its aggregated API server, so that
// `kubectl get networkpolicystats -A` shows it. The counts start when the
// controller starts; a NetworkPolicyStats has the namespace and name of
// its policy and lives as long as the policy.
//
// +k8s:deepcopy-gen=package
// +k8s:protobuf-gen=package
// +k8s:openapi-gen=true
// +groupName=stats.antrea.io
package v1alpha1
