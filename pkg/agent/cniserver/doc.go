// Package cniserver is the agent side of the antrea CNI protocol: a gRPC
// server on a unix socket that receives the invocations forwarded by the
// antrea-cni plugin, validates them, serializes them per container and hands
// them to a PodConfigurator, which does the real work (IPAM, interfaces,
// OVS). It converts the configurator's result to the cniVersion of the
// request and its errors to CNI error codes (see pkg/apis/cni/v1/codes.go).
package cniserver
