// Package cniv1 is the gRPC protocol between the antrea-cni plugin and the
// antrea agent's CNI server. The *.pb.go files are generated from
// api/cni/v1/cni.proto by hack/generate-proto.sh; codes.go is hand-written
// and lists the CNI error codes both sides use.
package cniv1
