// Package stats sums the traffic statistics agents report (their
// NodeStatsSummaries, each the counts of one interval on one node) into
// totals per Kubernetes NetworkPolicy and rule, since the controller
// started, and renders them as stats.antrea.io NetworkPolicyStats.
package stats

import (
	"cmp"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
)

// Policy is a NetworkPolicy that exists now.
type Policy struct {
	Namespace, Name string
	UID             types.UID
}

// Policies lists the NetworkPolicies that exist now.
type Policies func() []Policy

type ruleKey struct {
	direction cpv1beta1.Direction
	index     int32
}

type totals struct {
	rules   map[ruleKey]*cpv1beta1.TrafficStats
	dropped cpv1beta1.TrafficStats
}

// Aggregator keeps the totals. It is safe for concurrent use.
type Aggregator struct {
	policies Policies

	mu sync.Mutex
	// byUID holds the totals of each policy, by UID: a policy deleted and
	// created again under the same name starts from zero.
	byUID map[types.UID]*totals
}

// NewAggregator returns an Aggregator whose totals cover the policies
// policies lists.
func NewAggregator(policies Policies) *Aggregator {
	return &Aggregator{policies: policies, byUID: map[types.UID]*totals{}}
}

func add(to *cpv1beta1.TrafficStats, s cpv1beta1.TrafficStats) {
	to.Packets += s.Packets
	to.Bytes += s.Bytes
	to.Sessions += s.Sessions
}

// Add adds one node's summary to the totals. Counts that are negative
// (an agent's counters cannot go back) are ignored.
func (a *Aggregator) Add(s *cpv1beta1.NodeStatsSummary) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range s.NetworkPolicies {
		ps := &s.NetworkPolicies[i]
		uid := ps.NetworkPolicy.UID
		if uid == "" {
			continue
		}
		t := a.byUID[uid]
		if t == nil {
			t = &totals{rules: map[ruleKey]*cpv1beta1.TrafficStats{}}
			a.byUID[uid] = t
		}
		if valid(ps.Dropped) {
			add(&t.dropped, ps.Dropped)
		}
		for _, r := range ps.Rules {
			if !valid(r.Allowed) || r.Index < 0 {
				continue
			}
			k := ruleKey{r.Direction, r.Index}
			if t.rules[k] == nil {
				t.rules[k] = &cpv1beta1.TrafficStats{}
			}
			add(t.rules[k], r.Allowed)
		}
	}
}

func valid(s cpv1beta1.TrafficStats) bool {
	return s.Packets >= 0 && s.Bytes >= 0 && s.Sessions >= 0
}

// List returns the stats of every existing policy of namespace ("" for
// all), sorted by namespace and name, and forgets the totals of policies
// that no longer exist.
func (a *Aggregator) List(namespace string) []statsv1alpha1.NetworkPolicyStats {
	policies := a.policies()
	a.mu.Lock()
	defer a.mu.Unlock()
	live := make(map[types.UID]bool, len(policies))
	out := make([]statsv1alpha1.NetworkPolicyStats, 0, len(policies))
	for _, p := range policies {
		live[p.UID] = true
		if namespace == "" || p.Namespace == namespace {
			out = append(out, a.render(p))
		}
	}
	for uid := range a.byUID {
		if !live[uid] {
			delete(a.byUID, uid)
		}
	}
	slices.SortFunc(out, func(x, y statsv1alpha1.NetworkPolicyStats) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return out
}

// Get returns the stats of one policy, false if it does not exist.
func (a *Aggregator) Get(namespace, name string) (statsv1alpha1.NetworkPolicyStats, bool) {
	for _, p := range a.policies() {
		if p.Namespace == namespace && p.Name == name {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.render(p), true
		}
	}
	return statsv1alpha1.NetworkPolicyStats{}, false
}

// render builds the stats of p; a.mu is held.
func (a *Aggregator) render(p Policy) statsv1alpha1.NetworkPolicyStats {
	out := statsv1alpha1.NetworkPolicyStats{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
	t := a.byUID[p.UID]
	if t == nil {
		return out
	}
	out.Dropped = convert(t.dropped)
	keys := make([]ruleKey, 0, len(t.rules))
	for k := range t.rules {
		keys = append(keys, k)
	}
	// Ingress rules first, as in the spec.
	slices.SortFunc(keys, func(x, y ruleKey) int {
		return cmp.Or(cmp.Compare(directionOrder(x.direction), directionOrder(y.direction)), cmp.Compare(x.index, y.index))
	})
	for _, k := range keys {
		s := convert(*t.rules[k])
		out.Rules = append(out.Rules, statsv1alpha1.RuleTrafficStats{Direction: directionName(k.direction), Index: k.index, Allowed: s})
		out.Allowed.Packets += s.Packets
		out.Allowed.Bytes += s.Bytes
		out.Allowed.Sessions += s.Sessions
	}
	return out
}

func convert(s cpv1beta1.TrafficStats) statsv1alpha1.TrafficStats {
	return statsv1alpha1.TrafficStats{Packets: s.Packets, Bytes: s.Bytes, Sessions: s.Sessions}
}

func directionOrder(d cpv1beta1.Direction) int {
	if d == cpv1beta1.DirectionIn {
		return 0
	}
	return 1
}

// directionName names a direction as NetworkPolicy policyTypes do.
func directionName(d cpv1beta1.Direction) string {
	if d == cpv1beta1.DirectionIn {
		return "Ingress"
	}
	return "Egress"
}
