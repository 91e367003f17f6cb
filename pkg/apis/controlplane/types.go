// Package controlplane holds the objects the controller computes from
// Kubernetes NetworkPolicies and hands to agents: AppliedToGroups (the pods a
// policy applies to, by node), AddressGroups (the peer pods' addresses,
// shared between policies), and internal NetworkPolicies (rules that refer
// to those groups), each with its span: the nodes that need it.
//
// These are plain Go types today; they are served as an API of our own
// group by the controller's aggregated API server.
package controlplane

import (
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// GroupMember is one pod of a group.
type GroupMember struct {
	Pod  PodReference
	Node string
	// IPs of the pod (IPv4 today).
	IPs []string
	// Ports are the pod's named container ports, for rules that name a
	// port instead of a number.
	Ports []NamedPort
}

// PodReference names a pod.
type PodReference struct {
	Namespace string
	Name      string
}

// NamedPort is a named container port of a pod.
type NamedPort struct {
	Name     string
	Port     int32
	Protocol Protocol
}

// Protocol of a service port.
type Protocol string

// Protocols.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// AppliedToGroup is the set of pods a policy applies to. Its span is the
// nodes of its members.
type AppliedToGroup struct {
	// Name is stable for the same selector (a hash of it), so policies with
	// the same podSelector in the same namespace share the group.
	Name    string
	Members []GroupMember
	Span    []string
}

// AddressGroup is the set of peer pods of rules. Its span is the union of
// the spans of the policies that use it.
type AddressGroup struct {
	Name    string
	Members []GroupMember
	Span    []string
}

// Direction of a rule.
type Direction string

// Directions.
const (
	DirectionIn  Direction = "In"
	DirectionOut Direction = "Out"
)

// IPBlock is a CIDR with exceptions.
type IPBlock struct {
	CIDR   string
	Except []string
}

// NetworkPolicyPeer is the other end of a rule: pods (by AddressGroups)
// and/or IP blocks. An empty peer (no groups, no blocks) means any.
type NetworkPolicyPeer struct {
	AddressGroups []string
	IPBlocks      []IPBlock
}

// Service is a protocol and port (number, name, or a range with EndPort).
// A nil Port means every port of the protocol.
type Service struct {
	Protocol Protocol
	Port     *intstr.IntOrString
	EndPort  *int32
}

// NetworkPolicyRule is one ingress or egress rule.
type NetworkPolicyRule struct {
	Direction Direction
	// From holds the peers of an ingress rule, To those of an egress rule.
	From     NetworkPolicyPeer
	To       NetworkPolicyPeer
	Services []Service
}

// NetworkPolicy is a Kubernetes NetworkPolicy in the controller's terms.
type NetworkPolicy struct {
	// UID of the Kubernetes NetworkPolicy; Name and Namespace are its own.
	UID       types.UID
	Name      string
	Namespace string
	Rules     []NetworkPolicyRule
	// AppliedToGroups are the groups of pods the policy isolates.
	AppliedToGroups []string
	// PolicyTypes say which directions the policy isolates (a policy with
	// Egress and no egress rule isolates egress with no allowed traffic).
	PolicyTypes []Direction
	// Span: the nodes of the applied-to pods.
	Span []string
}
