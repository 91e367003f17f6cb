// Package client is the antrea-cni plugin: the binary the container runtime
// executes for every CNI command. It parses the network config, forwards
// the whole invocation over gRPC on a unix socket to the antrea agent
// (pkg/agent/cniserver) and prints the agent's answer. It does no network
// work itself, and it never waits for the agent longer than cniTimeout.
package client
