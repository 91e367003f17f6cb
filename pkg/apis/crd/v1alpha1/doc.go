// Package v1alpha1 is version v1alpha1 of the crd.antrea.io API: the
// custom resources that antrea declares with CustomResourceDefinitions
// (build/yamls/base), served by the kube-apiserver itself. Today that is
// Traceflow, a packet the agents inject and follow through the pipeline of
// every node it crosses (see docs/traceflow.md).
//
// Only deepcopy is generated for this package (`make generate`): the
// kube-apiserver stores and serves these objects as JSON, so they need no
// protobuf or OpenAPI Go code; their schema is the CRD's.
//
// +k8s:deepcopy-gen=package
// +groupName=crd.antrea.io
package v1alpha1
