package connection

import (
	"net/netip"
	"time"
)

// Pod names a pod.
type Pod struct {
	Namespace string
	Name      string
}

// Policy names the NetworkPolicy rule that allowed a connection in one
// direction.
type Policy struct {
	Namespace string
	Name      string
	UID       string
	Rule      string
}

// Service is the Service a connection was balanced by.
type Service struct {
	// PortName is "<namespace>/<name>:<port name>" (the port name may be
	// empty).
	PortName string
	IP       netip.Addr
	Port     uint16
}

// Flow types, as Antrea's IPFIX registry numbers them (flowType).
const (
	FlowTypeIntraNode    uint8 = 1
	FlowTypeInterNode    uint8 = 2
	FlowTypeToExternal   uint8 = 3
	FlowTypeFromExternal uint8 = 4
)

// Enrichment is what the agent knows about a connection's ends. Zero
// values are unknown.
type Enrichment struct {
	Source          Pod
	Destination     Pod
	SourceNode      string
	DestinationNode string
	Service         Service
	IngressPolicy   Policy
	EgressPolicy    Policy
	FlowType        uint8
}

// End reasons (IANA flowEndReason).
const (
	EndIdleTimeout   uint8 = 1
	EndActiveTimeout uint8 = 2
	EndOfFlow        uint8 = 3
)

// Record is one export of a connection.
type Record struct {
	Conn Conn
	Enrichment
	// Start is when the connection began (conntrack's time, or when the
	// exporter first saw it); End the time of this record.
	Start time.Time
	End   time.Time
	// Deltas since the connection's previous record.
	OrigDelta  Counters
	ReplyDelta Counters
	EndReason  uint8
}
