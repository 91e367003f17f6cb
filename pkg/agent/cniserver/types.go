package cniserver

import (
	"context"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// CNI commands, as in CNI_COMMAND.
const (
	CmdAdd    = "ADD"
	CmdCheck  = "CHECK"
	CmdDel    = "DEL"
	CmdGC     = "GC"
	CmdStatus = "STATUS"
)

// PodConfigurator does the real work behind the CNI commands. The server
// calls it with validated requests, never concurrently for the same
// container ID, and never concurrently with GC. An error may be an *Error
// (or a containernetworking *types.Error) to choose the CNI code; any other
// error becomes cniv1.CodeAgentInternal (cniv1.CodePluginNotAvailable for
// Status).
type PodConfigurator interface {
	// Add connects the container; it must be idempotent for the same
	// container ID and interface, answering from its state when the work
	// is already done. The result is in the current (1.x) types; the
	// server converts it to the request's version.
	Add(ctx context.Context, req PodRequest) (*current.Result, error)
	// Check verifies the container's networking against req.PrevResult.
	Check(ctx context.Context, req PodRequest) error
	// Del disconnects the container; it is idempotent, and a missing
	// netns, port or allocation is success.
	Del(ctx context.Context, req PodRequest) error
	// GC releases every attachment that is not in valid.
	GC(ctx context.Context, valid []Attachment) error
	// Status returns nil when the agent can serve ADDs.
	Status(ctx context.Context) error
}

// PodRequest is one validated CNI invocation. For GC and STATUS only
// Command, CNIVersion, NetworkName, NetConf and Path are set.
type PodRequest struct {
	// Command is one of CmdAdd, CmdCheck, CmdDel, CmdGC, CmdStatus.
	Command string
	// ContainerID is CNI_CONTAINERID (the sandbox ID).
	ContainerID string
	// Netns is CNI_NETNS, a path; it may be empty for DEL.
	Netns string
	// IfName is CNI_IFNAME.
	IfName string
	// PodNamespace, PodName, PodUID and InfraContainerID come from the
	// K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID and
	// K8S_POD_INFRA_CONTAINER_ID pairs of CNI_ARGS. Namespace and name are
	// required for ADD and CHECK; the others may be empty.
	PodNamespace     string
	PodName          string
	PodUID           string
	InfraContainerID string
	// Args holds every pair of CNI_ARGS, the K8S_* ones included.
	Args map[string]string
	// Path is CNI_PATH split into directories.
	Path []string
	// CNIVersion and NetworkName are the config's cniVersion and name.
	CNIVersion  string
	NetworkName string
	// NetConf is the raw network config, as the runtime wrote it (with
	// its ipam section, prevResult, runtimeConfig...).
	NetConf []byte
	// PrevResult is the config's prevResult converted to the current
	// types; set for CHECK (where it is required), and for ADD or DEL
	// when the runtime supplied one.
	PrevResult *current.Result
}

// Attachment is one attachment that GC must keep.
type Attachment struct {
	ContainerID string
	IfName      string
}

// Observation describes one served request, for metrics.
type Observation struct {
	// Command is the CNI command.
	Command string
	// ContainerID is empty for GC and STATUS.
	ContainerID string
	// Duration covers validation, waiting for the container's lock, the
	// configurator and result encoding.
	Duration time.Duration
	// Code is 0 on success, else the CNI error code returned.
	Code uint
}
