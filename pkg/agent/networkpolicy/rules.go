package networkpolicy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

type localPod struct {
	ip     netip.Addr
	ofport uint32
	ports  []controlplane.NamedPort
}

// clauseMatch is one match of a clause and the key of its clause flow
// (at PriorityRuleClause).
type clauseMatch struct {
	match []of.MatchField
	key   string
}

// builder compiles one policy (or the base flows) at a time into the
// compiler's merged flows, as contributions of cur.
type builder struct {
	c   *Compiler
	s   *State
	cur *compiledPolicy
	// groupPodCache holds groupPods' answers for this compile.
	groupPodCache map[*controlplane.AppliedToGroup][]localPod
}

// ipv4 is the dl_type match of every policy flow, shared: match fields
// are never modified once built.
var ipv4 = of.MatchEthType(of.EthTypeIPv4)

func newClauseMatch(t agentof.Table, m ...of.MatchField) clauseMatch {
	f := of.Flow{Table: t.ID, Priority: PriorityRuleClause, Match: m}
	return clauseMatch{match: m, key: f.Key()}
}

func resubmit(t agentof.Table) []of.Action { return []of.Action{of.Resubmit{Table: t.ID}} }

func (b *builder) add(owner string, f of.Flow) {
	b.c.contribute(b.cur, kindPlain, f.Key(), f, keyRef{owner: owner})
}

// addClause adds the clause flow of match cm to the conjunction conj;
// action is conj as an action.
func (b *builder) addClause(table uint8, cm clauseMatch, conj of.Conjunction, action of.Action) {
	f := of.Flow{Table: table, Priority: PriorityRuleClause, Match: cm.match}
	b.c.contribute(b.cur, kindClause, cm.key, f, keyRef{value: packConj(conj), action: action})
}

// addSingle adds the allow flow f of a single-clause rule, without its
// register load: rules whose single clause has the same match share the
// flow, which loads the id of the rule whose owner sorts first (flowOf).
func (b *builder) addSingle(owner string, f of.Flow, id uint32) {
	b.c.contribute(b.cur, kindSingle, f.Key(), f, keyRef{owner: owner, value: uint64(id)})
}

// base adds the flows that do not depend on any policy.
func (b *builder) base() {
	// Replies of connections allowed on the way in may leave an
	// egress-isolated pod (table 90 has the same in the base pipeline).
	b.add(ownerBase, of.Flow{Table: agentof.EgressRuleTable.ID, Priority: PriorityEstablished,
		Match:   []of.MatchField{of.MatchCTState(of.CTEst, of.CTNew), ipv4},
		Actions: resubmit(agentof.L3ForwardingTable)})
	gw := make([]of.MatchField, 2, 3)
	gw[0], gw[1] = ipv4, agentof.PortTypeField.Match(agentof.PortTypeGateway)
	if b.s.GatewayIP.Is4() {
		gw = append(gw, of.MatchIPSrc(netip.PrefixFrom(b.s.GatewayIP, 32)))
	}
	b.add(ownerBase, of.Flow{Table: agentof.IngressRuleTable.ID, Priority: PriorityGateway,
		Match: gw, Actions: resubmit(agentof.ConntrackCommitTable)})
}

// policy compiles p, applied to pods (appliedToPods).
func (b *builder) policy(p *controlplane.NetworkPolicy, pods []localPod) {
	if len(pods) == 0 {
		return
	}
	ingress, egress := policyTypes(p)
	perDirection := map[controlplane.Direction]int{}
	for i, r := range p.Rules {
		ref := Rule{PolicyUID: p.UID, PolicyNamespace: p.Namespace, PolicyName: p.Name, Direction: r.Direction, Index: perDirection[r.Direction]}
		perDirection[r.Direction]++
		switch {
		case r.Direction == controlplane.DirectionIn && ingress:
			b.ingressRule(ref, i, r, pods)
		case r.Direction == controlplane.DirectionOut && egress:
			b.egressRule(ref, i, r, pods)
		}
	}
	for _, pod := range pods {
		owner := IsolationOwner(pod.ip)
		// Each isolation drop has its Traceflow companion, which reports a
		// traced packet that it would drop.
		if ingress {
			drop := of.Flow{Table: agentof.IngressDefaultTable.ID, Priority: PriorityIsolation, Cookie: agentof.CookieCounted,
				Match: []of.MatchField{ipv4, agentof.OutputPortReg.Match(pod.ofport)}}
			b.add(owner, drop)
			b.add(owner, agentof.TraceflowDropReport(drop))
		}
		if egress {
			drop := of.Flow{Table: agentof.EgressDefaultTable.ID, Priority: PriorityIsolation, Cookie: agentof.CookieCounted,
				Match: []of.MatchField{ipv4, of.MatchIPSrc(netip.PrefixFrom(pod.ip, 32))}}
			b.add(owner, drop)
			b.add(owner, agentof.TraceflowDropReport(drop))
		}
	}
}

// policyTypes says which directions p isolates. Without policyTypes, as
// in Kubernetes: ingress always, egress when p has an egress rule.
func policyTypes(p *controlplane.NetworkPolicy) (ingress, egress bool) {
	if len(p.PolicyTypes) == 0 {
		for _, r := range p.Rules {
			egress = egress || r.Direction == controlplane.DirectionOut
		}
		return true, egress
	}
	for _, t := range p.PolicyTypes {
		ingress = ingress || t == controlplane.DirectionIn
		egress = egress || t == controlplane.DirectionOut
	}
	return ingress, egress
}

// appliedToPods returns the members of p's applied-to groups that run on
// this node and have a port, sorted by IP.
// The result may be shared with other policies: do not modify it.
func (b *builder) appliedToPods(p *controlplane.NetworkPolicy) []localPod {
	var pods []localPod
	n := 0
	for _, name := range p.AppliedToGroups {
		if g := b.s.AppliedToGroups[name]; g != nil {
			gp := b.groupPods(g)
			if n++; n == 1 {
				pods = gp
			} else {
				if n == 2 {
					pods = slices.Clone(pods)
				}
				pods = append(pods, gp...)
			}
		}
	}
	if n > 1 {
		pods = sortedPods(pods)
	}
	return pods
}

// groupPods returns the members of g that run on this node and have a
// port, sorted by IP; once per group and compile, however many policies
// apply to the group.
func (b *builder) groupPods(g *controlplane.AppliedToGroup) []localPod {
	if pods, ok := b.groupPodCache[g]; ok {
		return pods
	}
	var pods []localPod
	for _, m := range g.Members {
		if m.Node != b.s.NodeName || b.s.NodeName == "" {
			continue
		}
		for _, pfx := range memberPrefixes(m) {
			if ofport, ok := b.s.LocalPods[pfx.Addr()]; ok {
				pods = append(pods, localPod{ip: pfx.Addr(), ofport: ofport, ports: m.Ports})
			}
		}
	}
	pods = sortedPods(pods)
	if b.groupPodCache == nil {
		b.groupPodCache = map[*controlplane.AppliedToGroup][]localPod{}
	}
	b.groupPodCache[g] = pods
	return pods
}

// sortedPods sorts pods by IP, keeping the first of each IP (the first
// group's, the first member's).
func sortedPods(pods []localPod) []localPod {
	slices.SortStableFunc(pods, func(a, b localPod) int { return a.ip.Compare(b.ip) })
	return slices.CompactFunc(pods, func(a, b localPod) bool { return a.ip == b.ip })
}

// peerPrefixes returns the addresses of a peer: its address groups'
// members and its IP blocks (minus excepts).
func (b *builder) peerPrefixes(peer controlplane.NetworkPolicyPeer) []netip.Prefix {
	var out []netip.Prefix
	for _, name := range peer.AddressGroups {
		if g := b.s.AddressGroups[name]; g != nil {
			for _, m := range g.Members {
				out = appendMemberPrefixes(out, m)
			}
		}
	}
	for _, blk := range peer.IPBlocks {
		out = append(out, blockPrefixes(blk)...)
	}
	return sortPrefixes(out)
}

type clause []clauseMatch

// addrMatch is an address clause's match, allocated as one.
type addrMatch struct {
	fields [2]of.MatchField
	value  [4]byte
}

// addrClause matches the addresses ps, as sources or (dst) destinations.
func (b *builder) addrClause(t agentof.Table, dst bool, ps []netip.Prefix) clause {
	field, f := of.FieldIPSrc, of.MatchIPSrc
	if dst {
		field, f = of.FieldIPDst, of.MatchIPDst
	}
	c := make(clause, len(ps))
	for i, p := range ps {
		// A match and its value in one allocation, its own: the flow that
		// keeps it (in the compiler and the syncer) keeps no other's.
		am := &addrMatch{}
		am.fields[0] = ipv4
		if p.Bits() == 32 {
			am.value = p.Addr().As4()
			am.fields[1] = of.MatchField{Field: field, Value: am.value[:]}
		} else {
			am.fields[1] = f(p)
		}
		c[i] = newClauseMatch(t, am.fields[:]...)
	}
	return c
}

// podMatch matches packets to the applied-to pod on ofport (ingress).
func (b *builder) podMatch(t agentof.Table, ofport uint32) clauseMatch {
	return newClauseMatch(t, ipv4, agentof.OutputPortReg.Match(ofport))
}

func (b *builder) portClause(t agentof.Table, ms []l4Match) clause {
	c := make(clause, len(ms))
	for i, m := range ms {
		c[i] = newClauseMatch(t, m.fields()...)
	}
	return c
}

// ingressRule: sources (unless any), destination pods by reg1, ports
// (unless none), in table 90; one conjunction per way the pods resolve the
// rule's named ports.
func (b *builder) ingressRule(ref Rule, idx int, r controlplane.NetworkPolicyRule, pods []localPod) {
	var sources clause
	anySource := peerIsAny(r.From)
	if !anySource {
		if sources = b.addrClause(agentof.IngressRuleTable, false, b.peerPrefixes(r.From)); len(sources) == 0 {
			return
		}
	}
	type group struct {
		ports []l4Match
		pods  clause
	}
	groups := map[string]*group{}
	for _, pod := range pods {
		ms := resolveServices(r.Services, pod.ports)
		sig := signature(ms)
		g := groups[sig]
		if g == nil {
			g = &group{ports: ms}
			groups[sig] = g
		}
		g.pods = append(g.pods, b.podMatch(agentof.IngressRuleTable, pod.ofport))
	}
	for _, sig := range sortedKeys(groups) {
		g := groups[sig]
		var clauses []clause
		if !anySource {
			clauses = append(clauses, sources)
		}
		clauses = append(clauses, g.pods)
		if len(r.Services) > 0 {
			clauses = append(clauses, b.portClause(agentof.IngressRuleTable, g.ports))
		}
		b.conjunction(ref, "in", idx, sig, agentof.IngressRuleTable, clauses, resubmit(agentof.ConntrackCommitTable))
	}
}

// egressRule: source pods by IP, destinations (unless any), ports (unless
// none), in table 50; one conjunction per way the destination pods
// resolve the rule's named ports.
func (b *builder) egressRule(ref Rule, idx int, r controlplane.NetworkPolicyRule, pods []localPod) {
	podIPs := make([]netip.Prefix, len(pods))
	for i, p := range pods {
		podIPs[i] = netip.PrefixFrom(p.ip, 32)
	}
	type group struct {
		ports []l4Match
		dsts  []netip.Prefix
	}
	groups := map[string]*group{}
	addDst := func(ms []l4Match, dsts []netip.Prefix) {
		sig := signature(ms)
		g := groups[sig]
		if g == nil {
			g = &group{ports: ms}
			groups[sig] = g
		}
		g.dsts = append(g.dsts, dsts...)
	}
	anyDest := peerIsAny(r.To)
	if anyDest {
		addDst(resolveServices(r.Services, nil), nil)
	} else {
		named := hasNamedPort(r.Services)
		for _, name := range r.To.AddressGroups {
			if g := b.s.AddressGroups[name]; g != nil {
				for _, m := range g.Members {
					var ports []controlplane.NamedPort
					if named {
						ports = m.Ports
					}
					addDst(resolveServices(r.Services, ports), memberPrefixes(m))
				}
			}
		}
		for _, blk := range r.To.IPBlocks {
			addDst(resolveServices(r.Services, nil), blockPrefixes(blk))
		}
	}
	for _, sig := range sortedKeys(groups) {
		g := groups[sig]
		clauses := []clause{b.addrClause(agentof.EgressRuleTable, false, podIPs)}
		if !anyDest {
			clauses = append(clauses, b.addrClause(agentof.EgressRuleTable, true, sortPrefixes(g.dsts)))
		}
		if len(r.Services) > 0 {
			clauses = append(clauses, b.portClause(agentof.EgressRuleTable, g.ports))
		}
		b.conjunction(ref, "out", idx, sig, agentof.EgressRuleTable, clauses, resubmit(agentof.L3ForwardingTable))
	}
}

// conjunction adds the flows of one conjunction: nothing if a clause is
// empty (the rule matches nothing), allow flows for a single clause, and
// otherwise one clause flow per match plus the conj_id allow flow. Every
// allow flow first loads the conjunction's id into the direction's rule
// register (a single-clause rule gets an id for that too).
func (b *builder) conjunction(ref Rule, dir string, idx int, sig string, t agentof.Table, clauses []clause, allow []of.Action) {
	for _, c := range clauses {
		if len(c) == 0 {
			return
		}
	}
	owner := fmt.Sprintf("%s%s/%d", RuleOwnerPrefix(ref.PolicyUID), dir, idx)
	idKey := fmt.Sprintf("%s/%s/%d/%s", ref.PolicyUID, dir, idx, sig)
	id := b.c.ids.Get(idKey)
	b.cur.idKeys = append(b.cur.idKeys, idKey)
	b.cur.rules = append(b.cur.rules, ruleID{id, ref})
	reg, label := agentof.IngressRuleReg, agentof.IngressRuleLabel
	if t.ID == agentof.EgressRuleTable.ID {
		reg, label = agentof.EgressRuleReg, agentof.EgressRuleLabel
	}
	// The rest of each connection the rule allowed: its counters are the
	// rule's packets and bytes (NetworkPolicy statistics).
	b.add(ownerEstablishedPrefix+strings.TrimPrefix(owner, ownerRulePrefix), of.Flow{Table: t.ID, Priority: PriorityEstablishedRule,
		Cookie:  agentof.CookieCounted,
		Match:   []of.MatchField{of.MatchCTState(of.CTEst, of.CTNew), label.Match(uint64(id)), ipv4},
		Actions: allow})
	if len(clauses) == 1 {
		for _, m := range clauses[0] {
			b.addSingle(owner, of.Flow{Table: t.ID, Priority: PriorityRuleAllow, Cookie: agentof.CookieCounted, Match: m.match, Actions: allow}, id)
		}
		return
	}
	allow = append([]of.Action{reg.Load(id)}, allow...)
	for i, c := range clauses {
		conj := of.Conjunction{ID: id, Clause: uint8(i + 1), NClauses: uint8(len(clauses))}
		action := of.Action(conj) // boxed once for every flow of the clause
		for _, m := range c {
			b.addClause(t.ID, m, conj, action)
		}
	}
	b.add(owner, of.Flow{Table: t.ID, Priority: PriorityRuleAllow, Cookie: agentof.CookieCounted,
		Match: []of.MatchField{of.MatchConjID(id), ipv4}, Actions: allow})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
