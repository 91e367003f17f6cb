package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrafficStats counts traffic: packets and bytes, and sessions
// (connections, counted once each when their first packet is decided).
type TrafficStats struct {
	Packets  int64 `json:"packets" protobuf:"varint,1,opt,name=packets"`
	Bytes    int64 `json:"bytes" protobuf:"varint,2,opt,name=bytes"`
	Sessions int64 `json:"sessions" protobuf:"varint,3,opt,name=sessions"`
}

// RuleTrafficStats is the traffic one rule allowed: the Index-th (from
// 0) of the policy's Ingress or Egress rules, as in its spec.
type RuleTrafficStats struct {
	Direction string       `json:"direction" protobuf:"bytes,1,opt,name=direction"`
	Index     int32        `json:"index" protobuf:"varint,2,opt,name=index"`
	Allowed   TrafficStats `json:"allowed" protobuf:"bytes,3,opt,name=allowed"`
}

// +genclient
// +genclient:onlyVerbs=list,get
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NetworkPolicyStats is the traffic a Kubernetes NetworkPolicy of the
// same namespace and name allowed and dropped on every node since the
// controller started.
type NetworkPolicyStats struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	// Allowed is the sum of the rules'.
	Allowed TrafficStats `json:"allowed" protobuf:"bytes,2,opt,name=allowed"`
	// Dropped counts the new connections to or from the policy's pods
	// that its isolation dropped (no rule of any policy allowed them).
	Dropped TrafficStats       `json:"dropped" protobuf:"bytes,3,opt,name=dropped"`
	Rules   []RuleTrafficStats `json:"rules,omitempty" protobuf:"bytes,4,rep,name=rules"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NetworkPolicyStatsList is a list of NetworkPolicyStats.
type NetworkPolicyStatsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Items           []NetworkPolicyStats `json:"items" protobuf:"bytes,2,rep,name=items"`
}
