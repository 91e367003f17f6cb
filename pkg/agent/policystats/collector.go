// Package policystats counts, on a node, the traffic each NetworkPolicy
// rule allowed and each policy's isolation dropped, from the counters of
// the policy flows the agent installed, and reports the counts of each
// interval to the controller as a NodeStatsSummary.
//
// What is counted:
//   - a rule's allowed sessions: the packets that hit its allow flows (the
//     conj_id flow, or the single-clause allow flows). Only the first
//     packet of a connection reaches them (later ones bypass policy as
//     established), so each is a connection the rule let through;
//   - a policy's dropped traffic: the packets and bytes that hit the
//     isolation drop flows of the pods it applies to, in the directions it
//     isolates. Those are packets of new connections only, each counted as
//     a session: a client that retries counts each try. A pod isolated by
//     several policies counts its drops in each.
package policystats

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// FlowDumper reads the switch's flows with their counters: those of
// table whose cookie has the bits of cookie under mask.
type FlowDumper interface {
	DumpFlowsByCookie(ctx context.Context, table int, cookie, mask uint64) ([]of.FlowStats, error)
}

// KeyOwners returns the owner of each flow the agent installed that keep
// accepts, by flow key (FlowSyncer.KeyOwners).
type KeyOwners func(keep func(owner string, f of.Flow) bool) map[string]string

// Realized returns the policies and AppliedToGroups last realized on the
// node.
type Realized func() ([]*controlplane.NetworkPolicy, map[string]*controlplane.AppliedToGroup)

// countedTables are the tables of the allow and isolation flows.
var countedTables = []agentof.Table{
	agentof.EgressRuleTable, agentof.EgressDefaultTable, agentof.IngressRuleTable, agentof.IngressDefaultTable,
}

type counters struct{ packets, bytes uint64 }

// deltaKey is where counts go: a flow owner, in a table (an isolation
// owner has a drop flow in each direction's table).
type deltaKey struct {
	owner string
	table uint8
}

// Collector turns flow counters into per-interval counts. Not safe for
// concurrent use.
type Collector struct {
	dumper   FlowDumper
	owners   KeyOwners
	realized Realized
	// last holds each counted flow's counters at the previous collection.
	last map[string]counters
}

// NewCollector returns a Collector; its first Collect counts from zero
// what the flows counted so far.
func NewCollector(dumper FlowDumper, owners KeyOwners, realized Realized) *Collector {
	return &Collector{dumper: dumper, owners: owners, realized: realized, last: map[string]counters{}}
}

// Collect returns what the flows counted since the previous Collect, as
// a summary for node (nil when nothing was counted).
func (c *Collector) Collect(ctx context.Context, node string) (*cpv1beta1.NodeStatsSummary, error) {
	// The counted flows (allow, established, isolation drops) carry a
	// cookie bit: the switch sends those only, not the clause flows that
	// make up most of a policy table.
	ownerOf := c.owners(func(owner string, f of.Flow) bool {
		return f.Cookie&agentof.CookieCounted != 0 && networkpolicy.IsRuleOrIsolationOwner(owner)
	})
	seen := make(map[string]counters, len(ownerOf))
	deltas := map[deltaKey]counters{}
	for _, t := range countedTables {
		stats, err := c.dumper.DumpFlowsByCookie(ctx, int(t.ID), agentof.CookieCounted, agentof.CookieCounted)
		if err != nil {
			return nil, fmt.Errorf("reading the counters of table %s: %w", t.Name, err)
		}
		for _, fs := range stats {
			key := fs.Flow.Key()
			owner, ok := ownerOf[key]
			if !ok {
				continue
			}
			cur := counters{fs.PacketCount, fs.ByteCount}
			seen[key] = cur
			d := cur
			if prev, ok := c.last[key]; ok && cur.packets >= prev.packets && cur.bytes >= prev.bytes {
				d = counters{cur.packets - prev.packets, cur.bytes - prev.bytes}
			}
			if d.packets == 0 {
				continue
			}
			k := deltaKey{owner: owner, table: t.ID}
			acc := deltas[k]
			deltas[k] = counters{acc.packets + d.packets, acc.bytes + d.bytes}
		}
	}
	c.last = seen
	if len(deltas) == 0 {
		return nil, nil
	}
	policies, appliedTo := c.realized()
	return summarize(node, deltas, policies, appliedTo), nil
}

// summarize attributes the deltas to policies and rules.
func summarize(node string, deltas map[deltaKey]counters, policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup) *cpv1beta1.NodeStatsSummary {
	byUID := make(map[types.UID]*controlplane.NetworkPolicy, len(policies))
	for _, p := range policies {
		byUID[p.UID] = p
	}
	out := map[types.UID]*cpv1beta1.NetworkPolicyStats{}
	entry := func(p *controlplane.NetworkPolicy) *cpv1beta1.NetworkPolicyStats {
		e := out[p.UID]
		if e == nil {
			e = &cpv1beta1.NetworkPolicyStats{NetworkPolicy: cpv1beta1.NetworkPolicyReference{Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
			out[p.UID] = e
		}
		return e
	}
	isolatedBy := map[controlplane.Direction]map[netip.Addr][]*controlplane.NetworkPolicy{}
	for k, d := range deltas {
		if r, ok := networkpolicy.ParseRuleOwner(k.owner); ok {
			p := byUID[r.PolicyUID]
			if p == nil || r.Index >= len(p.Rules) {
				continue // realized since by another state; its counts are lost
			}
			dir, index := directionIndex(p, r.Index)
			// The allow flows see the first packet of each connection, the
			// established flow the rest.
			s := cpv1beta1.TrafficStats{Packets: int64(d.packets), Bytes: int64(d.bytes)}
			if !r.Established {
				s.Sessions = int64(d.packets)
			}
			e := entry(p)
			e.Rules = addRule(e.Rules, dir, index, s)
			continue
		}
		ip, ok := networkpolicy.ParseIsolationOwner(k.owner)
		if !ok {
			continue
		}
		dir := controlplane.DirectionOut
		if k.table == agentof.IngressDefaultTable.ID {
			dir = controlplane.DirectionIn
		}
		if isolatedBy[dir] == nil {
			isolatedBy[dir] = isolating(policies, appliedTo, dir)
		}
		for _, p := range isolatedBy[dir][ip] {
			addTraffic(&entry(p).Dropped, cpv1beta1.TrafficStats{Packets: int64(d.packets), Bytes: int64(d.bytes), Sessions: int64(d.packets)})
		}
	}
	return newSummary(node, out)
}

// newSummary is the summary of node's per-policy stats, rules and
// policies in a stable order.
func newSummary(node string, byUID map[types.UID]*cpv1beta1.NetworkPolicyStats) *cpv1beta1.NodeStatsSummary {
	s := &cpv1beta1.NodeStatsSummary{}
	s.Name = node
	for _, e := range byUID {
		slices.SortFunc(e.Rules, func(a, b cpv1beta1.RuleTrafficStats) int {
			return cmp.Or(cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Index, b.Index))
		})
		s.NetworkPolicies = append(s.NetworkPolicies, *e)
	}
	slices.SortFunc(s.NetworkPolicies, func(a, b cpv1beta1.NetworkPolicyStats) int {
		return cmp.Or(cmp.Compare(a.NetworkPolicy.Namespace, b.NetworkPolicy.Namespace), cmp.Compare(a.NetworkPolicy.Name, b.NetworkPolicy.Name))
	})
	return s
}

// directionIndex returns the direction of the i-th rule of p and its
// index among the rules of that direction (its index in the Kubernetes
// policy's ingress or egress list).
func directionIndex(p *controlplane.NetworkPolicy, i int) (cpv1beta1.Direction, int32) {
	dir := p.Rules[i].Direction
	var n int32
	for j := range i {
		if p.Rules[j].Direction == dir {
			n++
		}
	}
	return cpv1beta1.Direction(dir), n
}

func addRule(rules []cpv1beta1.RuleTrafficStats, dir cpv1beta1.Direction, index int32, s cpv1beta1.TrafficStats) []cpv1beta1.RuleTrafficStats {
	for i := range rules {
		if rules[i].Direction == dir && rules[i].Index == index {
			addTraffic(&rules[i].Allowed, s)
			return rules
		}
	}
	return append(rules, cpv1beta1.RuleTrafficStats{Direction: dir, Index: index, Allowed: s})
}

// addTraffic adds s to to.
func addTraffic(to *cpv1beta1.TrafficStats, s cpv1beta1.TrafficStats) {
	to.Packets += s.Packets
	to.Bytes += s.Bytes
	to.Sessions += s.Sessions
}

// isolating returns, by pod IP, the policies that isolate the pod in dir.
func isolating(policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup, dir controlplane.Direction) map[netip.Addr][]*controlplane.NetworkPolicy {
	out := map[netip.Addr][]*controlplane.NetworkPolicy{}
	networkpolicy.EachIsolated(policies, appliedTo, dir, func(p *controlplane.NetworkPolicy, m *controlplane.GroupMember) {
		for _, s := range m.IPs {
			if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(out[ip], p) {
				out[ip] = append(out[ip], p)
			}
		}
	})
	return out
}
