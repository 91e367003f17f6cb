package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Traceflow asks the agents to inject one packet from a pod, as if the pod
// had sent it, and to report what each node it crosses does with it. The
// agent of the source pod's node runs it; every agent that sees the packet
// adds its node's observations to the status. Cluster-scoped; its spec
// cannot change once created.
type Traceflow struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TraceflowSpec   `json:"spec"`
	Status TraceflowStatus `json:"status,omitempty"`
}

// TraceflowSpec is the packet to trace.
type TraceflowSpec struct {
	// Source is the pod the packet comes from.
	Source Source `json:"source"`
	// Destination is where it goes: a pod, a Service or an IPv4 address,
	// exactly one of them.
	Destination Destination `json:"destination"`
	// Packet says what to send; TCP SYN to port 80 when empty.
	Packet Packet `json:"packet,omitempty"`
	// Timeout is how many seconds the trace may take before it fails
	// (default 20, at most 300).
	Timeout int32 `json:"timeout,omitempty"`
}

// Source is a pod.
type Source struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
}

// Destination is a pod (Namespace and Pod), a Service (Namespace and
// Service) or an IPv4 address (IP).
type Destination struct {
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Service   string `json:"service,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// Protocol of the traced packet.
type Protocol string

// Protocols a Traceflow can send.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolICMP Protocol = "ICMP"
)

// Packet is what the source sends.
type Packet struct {
	// Protocol is TCP (default), UDP or ICMP (an echo request).
	Protocol Protocol `json:"protocol,omitempty"`
	// SrcPort is the source port (TCP, UDP); a random ephemeral port when 0.
	SrcPort int32 `json:"srcPort,omitempty"`
	// DstPort is the destination port (TCP, UDP). When 0: the Service's
	// first port of the protocol for a Service, else 80.
	DstPort int32 `json:"dstPort,omitempty"`
	// Flags are the TCP flags (default SYN, 0x02).
	Flags int32 `json:"flags,omitempty"`
}

// Phase of a Traceflow.
type Phase string

// Phases. An object without a phase has not been started yet.
const (
	// PhaseRunning: the packet is (about to be) on its way.
	PhaseRunning Phase = "Running"
	// PhaseSucceeded: the packet reached a final point (delivered, dropped,
	// or left the cluster network); the results say which.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the trace could not run or did not finish; Reason says
	// why.
	PhaseFailed Phase = "Failed"
)

// TraceflowStatus is how the trace went.
type TraceflowStatus struct {
	Phase Phase `json:"phase,omitempty"`
	// Reason explains a Failed phase, naming the field at fault for bad
	// input.
	Reason string `json:"reason,omitempty"`
	// DataplaneTag is the IP DSCP value that marks the packet on the wire
	// while the trace runs (see docs/traceflow.md).
	DataplaneTag int32 `json:"dataplaneTag,omitempty"`
	// StartTime is when the sender took the trace on.
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// SenderNode is the source pod's node, whose agent runs the trace.
	SenderNode string `json:"senderNode,omitempty"`
	// Packet is the packet as the sender built it.
	Packet *InjectedPacket `json:"packet,omitempty"`
	// Results are what each node saw, in the order they reported.
	Results []NodeResult `json:"results,omitempty"`
}

// InjectedPacket is the packet the sender injected, with the addresses it
// resolved.
type InjectedPacket struct {
	SrcIP    string   `json:"srcIP"`
	DstIP    string   `json:"dstIP"`
	Protocol Protocol `json:"protocol"`
	SrcPort  int32    `json:"srcPort,omitempty"`
	DstPort  int32    `json:"dstPort,omitempty"`
	Flags    int32    `json:"flags,omitempty"`
}

// Role of a node in a trace.
type Role string

// Roles.
const (
	// RoleSender is the source pod's node, which injected the packet.
	RoleSender Role = "Sender"
	// RoleReceiver is a node the packet reached through the tunnel.
	RoleReceiver Role = "Receiver"
)

// NodeResult is what one node saw of the packet.
type NodeResult struct {
	Node         string        `json:"node"`
	Role         Role          `json:"role"`
	Timestamp    metav1.Time   `json:"timestamp"`
	Observations []Observation `json:"observations"`
}

// Component of the pipeline that made an observation.
type Component string

// Components.
const (
	ComponentSpoofGuard     Component = "SpoofGuard"
	ComponentClassification Component = "Classification"
	ComponentLB             Component = "LB"
	ComponentNetworkPolicy  Component = "NetworkPolicy"
	ComponentForwarding     Component = "Forwarding"
	ComponentOutput         Component = "Output"
)

// Action a component took on the packet.
type Action string

// Actions. Delivered, Dropped and ForwardedOutOfNetwork are final: the
// trace ends with them.
const (
	ActionForwarded             Action = "Forwarded"
	ActionReceived              Action = "Received"
	ActionDelivered             Action = "Delivered"
	ActionDropped               Action = "Dropped"
	ActionForwardedOutOfNetwork Action = "ForwardedOutOfNetwork"
)

// Observation is one step of the packet on a node.
type Observation struct {
	Component Component `json:"component"`
	// ComponentInfo is the pipeline table, by name.
	ComponentInfo string `json:"componentInfo,omitempty"`
	Action        Action `json:"action"`
	// Pod is the pod (namespace/name) the packet was delivered to.
	Pod string `json:"pod,omitempty"`
	// NetworkPolicy (namespace/name) and NetworkPolicyRule ("ingress rule
	// 0") name the rule that allowed the packet.
	NetworkPolicy     string `json:"networkPolicy,omitempty"`
	NetworkPolicyRule string `json:"networkPolicyRule,omitempty"`
	// IsolatedBy are the NetworkPolicies (namespace/name) that isolate the
	// pod which dropped the packet, none of whose rules allowed it.
	IsolatedBy []string `json:"isolatedBy,omitempty"`
	// Service (namespace/name) and the endpoint its load balancing chose.
	Service           string `json:"service,omitempty"`
	TranslatedDstIP   string `json:"translatedDstIP,omitempty"`
	TranslatedDstPort int32  `json:"translatedDstPort,omitempty"`
	// TunnelDstIP and TunnelDstNode are where the tunnel took the packet.
	TunnelDstIP   string `json:"tunnelDstIP,omitempty"`
	TunnelDstNode string `json:"tunnelDstNode,omitempty"`
	// Detail says more in words (e.g. why a packet was dropped).
	Detail string `json:"detail,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// TraceflowList is a list of Traceflows.
type TraceflowList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Traceflow `json:"items"`
}
