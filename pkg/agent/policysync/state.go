package policysync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// RealizedState is what the agent last installed in OVS: the controller's
// objects for this node as of one successful realization. Digest equals
// DigestOfLists of the controller's lists for the node when the node is in
// sync with the controller.
type RealizedState struct {
	RealizedAt      time.Time        `json:"realizedAt"`
	Digest          string           `json:"digest"`
	Policies        []RealizedPolicy `json:"policies"`
	AppliedToGroups []RealizedGroup  `json:"appliedToGroups"`
	AddressGroups   []RealizedGroup  `json:"addressGroups"`
}

// RealizedPolicy is one internal NetworkPolicy, summarized.
type RealizedPolicy struct {
	Namespace       string    `json:"namespace"`
	Name            string    `json:"name"`
	UID             types.UID `json:"uid"`
	AppliedToGroups []string  `json:"appliedToGroups"`
	Rules           int       `json:"rules"`
}

// RealizedGroup is one group: its pods (namespace/name) and their IPs.
type RealizedGroup struct {
	Name string   `json:"name"`
	Pods []string `json:"pods"`
	IPs  []string `json:"ips"`
}

// NewRealizedState summarizes a snapshot of the cache.
func NewRealizedState(at time.Time, policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup, addresses map[string]*controlplane.AddressGroup) *RealizedState {
	s := &RealizedState{
		RealizedAt:      at,
		Digest:          Digest(policies, appliedTo, addresses),
		Policies:        make([]RealizedPolicy, 0, len(policies)),
		AppliedToGroups: summarizeGroups(appliedTo, func(g *controlplane.AppliedToGroup) []controlplane.GroupMember { return g.Members }),
		AddressGroups:   summarizeGroups(addresses, func(g *controlplane.AddressGroup) []controlplane.GroupMember { return g.Members }),
	}
	for _, p := range sortedPolicies(policies) {
		s.Policies = append(s.Policies, RealizedPolicy{
			Namespace: p.Namespace, Name: p.Name, UID: p.UID,
			AppliedToGroups: p.AppliedToGroups, Rules: len(p.Rules),
		})
	}
	return s
}

func summarizeGroups[G any](groups map[string]*G, membersOf func(*G) []controlplane.GroupMember) []RealizedGroup {
	out := make([]RealizedGroup, 0, len(groups))
	for name, g := range groups {
		rg := RealizedGroup{Name: name, Pods: []string{}, IPs: []string{}}
		for _, m := range membersOf(g) {
			rg.Pods = append(rg.Pods, m.Pod.Namespace+"/"+m.Pod.Name)
			rg.IPs = append(rg.IPs, m.IPs...)
		}
		out = append(out, rg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sortedPolicies(policies []*controlplane.NetworkPolicy) []*controlplane.NetworkPolicy {
	out := append([]*controlplane.NetworkPolicy(nil), policies...)
	sort.Slice(out, func(i, j int) bool {
		return policyKey(out[i].Namespace, out[i].Name) < policyKey(out[j].Namespace, out[j].Name)
	})
	return out
}

// Digest is a fingerprint of policies and groups as the compiler reads
// them: equal inputs in any order give equal digests.
func Digest(policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup, addresses map[string]*controlplane.AddressGroup) string {
	canonical := struct {
		Policies  []*controlplane.NetworkPolicy
		AppliedTo map[string][]controlplane.GroupMember
		Addresses map[string][]controlplane.GroupMember
	}{
		Policies:  sortedPolicies(policies),
		AppliedTo: make(map[string][]controlplane.GroupMember, len(appliedTo)),
		Addresses: make(map[string][]controlplane.GroupMember, len(addresses)),
	}
	for name, g := range appliedTo {
		canonical.AppliedTo[name] = g.Members
	}
	for name, g := range addresses {
		canonical.Addresses[name] = g.Members
	}
	// Marshaling plain structs, slices and string-keyed maps (sorted by
	// encoding/json) cannot fail.
	data, _ := json.Marshal(canonical)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

// DigestOfLists is the digest an agent reaches once it has realized these
// lists of the controller (those served for its node).
func DigestOfLists(appliedTo *v1beta1.AppliedToGroupList, addresses *v1beta1.AddressGroupList, policies *v1beta1.NetworkPolicyList) string {
	c := NewCache()
	c.Replace(ResourceAppliedToGroups, appliedTo)
	c.Replace(ResourceAddressGroups, addresses)
	c.Replace(ResourceNetworkPolicies, policies)
	return Digest(c.Snapshot())
}
