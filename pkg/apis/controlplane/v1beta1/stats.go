package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TrafficStats counts traffic: packets and bytes, and sessions
// (connections, counted once each when their first packet is decided).
type TrafficStats struct {
	Packets  int64 `json:"packets,omitempty" protobuf:"varint,1,opt,name=packets"`
	Bytes    int64 `json:"bytes,omitempty" protobuf:"varint,2,opt,name=bytes"`
	Sessions int64 `json:"sessions,omitempty" protobuf:"varint,3,opt,name=sessions"`
}

// NetworkPolicyReference names a Kubernetes NetworkPolicy.
type NetworkPolicyReference struct {
	Namespace string    `json:"namespace" protobuf:"bytes,1,opt,name=namespace"`
	Name      string    `json:"name" protobuf:"bytes,2,opt,name=name"`
	UID       types.UID `json:"uid" protobuf:"bytes,3,opt,name=uid,casttype=k8s.io/apimachinery/pkg/types.UID"`
}

// RuleTrafficStats is the traffic one rule of a policy allowed: the rule
// is the Index-th of the policy's ingress (Direction In) or egress
// (Direction Out) rules, from 0, as in the policy's spec.
type RuleTrafficStats struct {
	Direction Direction    `json:"direction" protobuf:"bytes,1,opt,name=direction,casttype=Direction"`
	Index     int32        `json:"index" protobuf:"varint,2,opt,name=index"`
	Allowed   TrafficStats `json:"allowed" protobuf:"bytes,3,opt,name=allowed"`
}

// NetworkPolicyStats is the traffic one policy decided on a node.
type NetworkPolicyStats struct {
	NetworkPolicy NetworkPolicyReference `json:"networkPolicy" protobuf:"bytes,1,opt,name=networkPolicy"`
	Rules         []RuleTrafficStats     `json:"rules,omitempty" protobuf:"bytes,2,rep,name=rules"`
	// Dropped counts the new connections to or from the policy's pods
	// that its isolation dropped (no rule of any policy allowed them).
	// A pod isolated by several policies counts its drops in each.
	Dropped TrafficStats `json:"dropped,omitempty" protobuf:"bytes,3,opt,name=dropped"`
}

// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NodeStatsSummary is what a node's agent counted since its previous
// summary. Agents create one per interval, named after their node; the
// controller adds it to its totals and keeps nothing else of it.
type NodeStatsSummary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	NetworkPolicies   []NetworkPolicyStats `json:"networkPolicies,omitempty" protobuf:"bytes,2,rep,name=networkPolicies"`
}
