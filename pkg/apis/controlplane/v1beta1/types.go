package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PodReference names a pod.
type PodReference struct {
	Namespace string `json:"namespace,omitempty" protobuf:"bytes,1,opt,name=namespace"`
	Name      string `json:"name,omitempty" protobuf:"bytes,2,opt,name=name"`
}

// NamedPort is a named container port of a pod.
type NamedPort struct {
	Name     string   `json:"name,omitempty" protobuf:"bytes,1,opt,name=name"`
	Port     int32    `json:"port,omitempty" protobuf:"varint,2,opt,name=port"`
	Protocol Protocol `json:"protocol,omitempty" protobuf:"bytes,3,opt,name=protocol,casttype=Protocol"`
}

// GroupMember is one pod of a group.
type GroupMember struct {
	Pod PodReference `json:"pod" protobuf:"bytes,1,opt,name=pod"`
	// Node is the node the pod runs on.
	Node string `json:"node,omitempty" protobuf:"bytes,2,opt,name=node"`
	// IPs of the pod.
	IPs []string `json:"ips,omitempty" protobuf:"bytes,3,rep,name=ips"`
	// Ports are the pod's named container ports, for rules that name a
	// port instead of a number.
	Ports []NamedPort `json:"ports,omitempty" protobuf:"bytes,4,rep,name=ports"`
}

// Protocol of a service port: TCP, UDP or SCTP.
type Protocol string

// Protocols.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=list,get,watch
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AppliedToGroup is the set of pods one or more policies apply to.
type AppliedToGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	// Members are the pods of the group (with nodeName=<node>, those on
	// that node only).
	Members []GroupMember `json:"members,omitempty" protobuf:"bytes,2,rep,name=members"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AppliedToGroupPatch is a change to the members of an AppliedToGroup, as
// sent in MODIFIED watch events.
type AppliedToGroupPatch struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	AddedMembers      []GroupMember `json:"addedMembers,omitempty" protobuf:"bytes,2,rep,name=addedMembers"`
	RemovedMembers    []GroupMember `json:"removedMembers,omitempty" protobuf:"bytes,3,rep,name=removedMembers"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AppliedToGroupList is a list of AppliedToGroups.
type AppliedToGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Items           []AppliedToGroup `json:"items" protobuf:"bytes,2,rep,name=items"`
}

// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=list,get,watch
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AddressGroup is the set of peer pods of one or more rules.
type AddressGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Members           []GroupMember `json:"members,omitempty" protobuf:"bytes,2,rep,name=members"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AddressGroupPatch is a change to the members of an AddressGroup, as sent
// in MODIFIED watch events.
type AddressGroupPatch struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	AddedMembers      []GroupMember `json:"addedMembers,omitempty" protobuf:"bytes,2,rep,name=addedMembers"`
	RemovedMembers    []GroupMember `json:"removedMembers,omitempty" protobuf:"bytes,3,rep,name=removedMembers"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AddressGroupList is a list of AddressGroups.
type AddressGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Items           []AddressGroup `json:"items" protobuf:"bytes,2,rep,name=items"`
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
	CIDR   string   `json:"cidr" protobuf:"bytes,1,opt,name=cidr"`
	Except []string `json:"except,omitempty" protobuf:"bytes,2,rep,name=except"`
}

// NetworkPolicyPeer is the other end of a rule: pods (by AddressGroups)
// and/or IP blocks. An empty peer (no groups, no blocks) means any.
type NetworkPolicyPeer struct {
	AddressGroups []string  `json:"addressGroups,omitempty" protobuf:"bytes,1,rep,name=addressGroups"`
	IPBlocks      []IPBlock `json:"ipBlocks,omitempty" protobuf:"bytes,2,rep,name=ipBlocks"`
}

// Service is a protocol and port (number, name, or a range with EndPort).
// A nil Port means every port of the protocol.
type Service struct {
	Protocol Protocol            `json:"protocol,omitempty" protobuf:"bytes,1,opt,name=protocol,casttype=Protocol"`
	Port     *intstr.IntOrString `json:"port,omitempty" protobuf:"bytes,2,opt,name=port"`
	EndPort  *int32              `json:"endPort,omitempty" protobuf:"varint,3,opt,name=endPort"`
}

// NetworkPolicyRule is one ingress or egress rule.
type NetworkPolicyRule struct {
	Direction Direction `json:"direction" protobuf:"bytes,1,opt,name=direction,casttype=Direction"`
	// From holds the peers of an ingress rule, To those of an egress rule.
	From     NetworkPolicyPeer `json:"from,omitempty" protobuf:"bytes,2,opt,name=from"`
	To       NetworkPolicyPeer `json:"to,omitempty" protobuf:"bytes,3,opt,name=to"`
	Services []Service         `json:"services,omitempty" protobuf:"bytes,4,rep,name=services"`
}

// +genclient
// +genclient:onlyVerbs=list,get,watch
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NetworkPolicy is a Kubernetes NetworkPolicy in the controller's terms:
// same namespace, name and UID, with rules that refer to groups.
type NetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Rules             []NetworkPolicyRule `json:"rules,omitempty" protobuf:"bytes,2,rep,name=rules"`
	// AppliedToGroups are the groups of pods the policy isolates.
	AppliedToGroups []string `json:"appliedToGroups,omitempty" protobuf:"bytes,3,rep,name=appliedToGroups"`
	// PolicyTypes say which directions the policy isolates.
	PolicyTypes []Direction `json:"policyTypes,omitempty" protobuf:"bytes,4,rep,name=policyTypes,casttype=Direction"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NetworkPolicyList is a list of NetworkPolicies.
type NetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Items           []NetworkPolicy `json:"items" protobuf:"bytes,2,rep,name=items"`
}
