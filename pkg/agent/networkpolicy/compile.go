package networkpolicy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ovs-cni/antrea/pkg/agent/idalloc"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// State is everything the flows of this node depend on.
type State struct {
	// NodeName is this node: only applied-to members on it get flows.
	NodeName string
	// GatewayIP, when valid, narrows the gateway allow flow to packets from
	// the node itself (nw_src=GatewayIP) instead of everything that entered
	// through the gateway port.
	GatewayIP netip.Addr
	// Policies whose span includes this node (others yield no flows).
	Policies []*controlplane.NetworkPolicy
	// The groups the policies refer to, by name. A missing group has no
	// members: a rule whose peers are all missing allows nothing.
	AppliedToGroups map[string]*controlplane.AppliedToGroup
	AddressGroups   map[string]*controlplane.AddressGroup
	// LocalPods maps the IP of each pod on this node that has an OVS port
	// to its ofport. Applied-to members without one get no flows yet.
	LocalPods map[netip.Addr]uint32
}

// Priorities in the rule tables (50, 90) and default tables (60, 100).
// See the package documentation for the free bands.
const (
	PriorityEstablished uint16 = 210
	// PriorityEstablishedRule: the established packets of the
	// connections one rule allowed, by the rule's id in their ct_label;
	// the same bypass as PriorityEstablished, counted per rule.
	PriorityEstablishedRule uint16 = 211
	PriorityGateway         uint16 = 205
	PriorityRuleClause      uint16 = 100
	PriorityRuleAllow       uint16 = 90
	PriorityIsolation       uint16 = 100
	// PriorityTraceflowDrop is the isolation's Traceflow companion.
	PriorityTraceflowDrop uint16 = agentof.PriorityTraceflowDrop
)

// Owners of the flows, all under OwnerPrefix; the Reconciler deletes only
// owners with that prefix.
const (
	OwnerPrefix     = "networkpolicy/"
	ownerBase       = OwnerPrefix + "base"
	ownerRulePrefix = OwnerPrefix + "rule/"
	// ownerEstablishedPrefix owns the flow that counts a rule's
	// established packets, named as the rule's owner is.
	ownerEstablishedPrefix = OwnerPrefix + "established/"
	ownerMatchPrefix       = OwnerPrefix + "match/"
	ownerIsolationPrefix   = OwnerPrefix + "isolation/"
)

// IsolationOwner owns the default-deny flows of the pod at ip.
func IsolationOwner(ip netip.Addr) string { return ownerIsolationPrefix + ip.String() }

// RuleOwnerPrefix starts the owners of the rule flows of the policy uid.
func RuleOwnerPrefix(uid types.UID) string { return ownerRulePrefix + string(uid) + "/" }

// Compiler compiles States into flows. It keeps the conjunction ids it
// allocated, so that a rule keeps its id from one compile to the next.
type Compiler struct {
	ids *idalloc.Allocator
	// lastClauses is how many clause flows the last compile had, to size
	// the next one's maps.
	lastClauses int
	// lastRules are the rules of the last compile, by conjunction id.
	lastRules map[uint32]Rule
	// cookie is stamped into every flow (see SetCookie).
	cookie uint64
}

// SetCookie makes the compiler stamp cookie into every flow it makes: the
// cookie the FlowSyncer installs them with, which it then need not set
// itself.
func (c *Compiler) SetCookie(cookie uint64) { c.cookie = cookie }

// Rule identifies the NetworkPolicy rule behind a conjunction id: the
// id that the rule's allow flows load into agentof.EgressRuleReg or
// IngressRuleReg, and that the commit of a connection it allowed records
// in the connection's ct_label.
type Rule struct {
	PolicyUID       types.UID
	PolicyNamespace string
	PolicyName      string
	Direction       controlplane.Direction
	// Index is the rule's position among the policy's rules of its
	// direction (spec.ingress[Index] or spec.egress[Index]).
	Index int
}

// Name is how records name the rule: "ingress-<Index>" or
// "egress-<Index>" (Kubernetes NetworkPolicy rules have no names).
func (r Rule) Name() string {
	if r.Direction == controlplane.DirectionOut {
		return fmt.Sprintf("egress-%d", r.Index)
	}
	return fmt.Sprintf("ingress-%d", r.Index)
}

// Rules returns the rules of the last compile by conjunction id. The map
// is not modified afterwards.
func (c *Compiler) Rules() map[uint32]Rule { return c.lastRules }

// NewCompiler returns a compiler whose first conjunction id is 1.
func NewCompiler() *Compiler { return NewCompilerFrom(1) }

// NewCompilerFrom returns a compiler whose conjunction ids start at first.
// An agent that restarts next to the flows of its previous run starts in
// another part of the id space, so that until those flows are swept no
// new rule shares a conjunction id with an old rule's leftover clauses.
func NewCompilerFrom(first uint32) *Compiler { return &Compiler{ids: idalloc.New(first)} }

// Compile returns the desired flows of s by owner. It does no I/O; its
// only effect is on the compiler's conjunction ids: those of rules that
// are gone stay reserved until ReleaseUnusedIDs.
func (c *Compiler) Compile(s *State) map[string][]of.Flow {
	keyed := c.CompileKeyed(s)
	out := make(map[string][]of.Flow, len(keyed))
	for owner, m := range keyed {
		flows := make([]of.Flow, 0, len(m))
		for _, f := range m {
			flows = append(flows, f)
		}
		of.SortFlows(flows)
		out[owner] = flows
	}
	return out
}

// CompileKeyed is Compile with each owner's flows keyed by their Key(),
// as the FlowSyncer's SyncAllKeyed takes them.
func (c *Compiler) CompileKeyed(s *State) map[string]map[string]of.Flow {
	c.ids.Begin()
	hint := c.lastClauses
	if hint == 0 {
		hint = clauseHint(s)
	}
	b := &builder{c: c, s: s, owners: map[string]map[string]of.Flow{}, clauseIndex: make(map[string]int32, hint),
		clauses: make([]clauseFlow, 0, hint),
		rules:   make(map[uint32]Rule, len(c.lastRules)), singles: map[string]*singleFlow{}}
	b.base()
	policies := append([]*controlplane.NetworkPolicy(nil), s.Policies...)
	sort.Slice(policies, func(i, j int) bool { return policies[i].UID < policies[j].UID })
	for _, p := range policies {
		b.policy(p)
	}
	return b.result()
}

// clauseHint guesses how many clause flows s compiles to, to size the
// first compile's tables: mostly one per peer address, and one per local
// pod and direction.
func clauseHint(s *State) int {
	n := 2 * len(s.LocalPods)
	for _, g := range s.AddressGroups {
		n += len(g.Members)
	}
	return min(n, 1<<20)
}

// ReleaseUnusedIDs frees the conjunction ids that the last Compile did not
// use, for reuse by later compiles. Call it once the flows of that compile
// are installed.
func (c *Compiler) ReleaseUnusedIDs() { c.ids.ReleaseUnused() }

// Compile compiles s with a fresh compiler (conjunction ids from 1).
func Compile(s *State) map[string][]of.Flow { return NewCompiler().Compile(s) }

type localPod struct {
	ip     netip.Addr
	ofport uint32
	ports  []controlplane.NamedPort
}

// clauseFlow is a clause flow shared by the conjunctions it is a
// clause of: first, then more, in the order added, duplicates included
// (result sorts and compacts them).
type clauseFlow struct {
	flow  of.Flow
	first of.Conjunction
	more  []of.Conjunction
}

// clauseMatch is one match of a clause and the key of its clause flow
// (at PriorityRuleClause).
type clauseMatch struct {
	match []of.MatchField
	key   string
}

type builder struct {
	c      *Compiler
	s      *State
	owners map[string]map[string]of.Flow // owner -> key -> flow
	// clauses are the clause flows, clauseIndex their positions by key.
	clauses     []clauseFlow
	clauseIndex map[string]int32
	rules       map[uint32]Rule        // conjunction id -> rule
	singles     map[string]*singleFlow // key -> allow flow of single-clause rules
}

// ipv4 is the dl_type match of every policy flow, shared: match fields
// are never modified once built.
var ipv4 = of.MatchEthType(of.EthTypeIPv4)

func ipMatch() of.MatchField { return ipv4 }

func newClauseMatch(t agentof.Table, m ...of.MatchField) clauseMatch {
	f := of.Flow{Table: t.ID, Priority: PriorityRuleClause, Match: m}
	return clauseMatch{match: m, key: f.Key()}
}

func resubmit(t agentof.Table) []of.Action { return []of.Action{of.Resubmit{Table: t.ID}} }

func (b *builder) add(owner string, f of.Flow) { b.addKeyed(owner, f.Key(), f) }

// addKeyed adds f, whose key is k.
func (b *builder) addKeyed(owner, k string, f of.Flow) {
	f.Cookie = b.c.cookie
	m := b.owners[owner]
	if m == nil {
		m = map[string]of.Flow{}
		b.owners[owner] = m
	}
	m[k] = f
}

func (b *builder) addClause(table uint8, cm clauseMatch, c of.Conjunction) {
	if i, ok := b.clauseIndex[cm.key]; ok {
		cf := &b.clauses[i]
		cf.more = append(cf.more, c)
		return
	}
	b.clauseIndex[cm.key] = int32(len(b.clauses))
	b.clauses = append(b.clauses, clauseFlow{flow: of.Flow{Table: table, Priority: PriorityRuleClause, Match: cm.match}, first: c})
}

// base adds the flows that do not depend on any policy.
func (b *builder) base() {
	// Replies of connections allowed on the way in may leave an
	// egress-isolated pod (table 90 has the same in the base pipeline).
	b.add(ownerBase, of.Flow{Table: agentof.EgressRuleTable.ID, Priority: PriorityEstablished,
		Match:   []of.MatchField{of.MatchCTState(of.CTEst, of.CTNew), ipMatch()},
		Actions: resubmit(agentof.L3ForwardingTable)})
	gw := []of.MatchField{ipMatch(), agentof.PortTypeField.Match(agentof.PortTypeGateway)}
	if b.s.GatewayIP.Is4() {
		gw = append(gw, of.MatchIPSrc(netip.PrefixFrom(b.s.GatewayIP, 32)))
	}
	b.add(ownerBase, of.Flow{Table: agentof.IngressRuleTable.ID, Priority: PriorityGateway,
		Match: gw, Actions: resubmit(agentof.ConntrackCommitTable)})
}

func (b *builder) policy(p *controlplane.NetworkPolicy) {
	pods := b.appliedToPods(p)
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
			drop := of.Flow{Table: agentof.IngressDefaultTable.ID, Priority: PriorityIsolation,
				Match: []of.MatchField{ipMatch(), agentof.OutputPortReg.Match(pod.ofport)}}
			b.add(owner, drop)
			b.add(owner, agentof.TraceflowDropReport(drop))
		}
		if egress {
			drop := of.Flow{Table: agentof.EgressDefaultTable.ID, Priority: PriorityIsolation,
				Match: []of.MatchField{ipMatch(), of.MatchIPSrc(netip.PrefixFrom(pod.ip, 32))}}
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
func (b *builder) appliedToPods(p *controlplane.NetworkPolicy) []localPod {
	seen := map[netip.Addr]bool{}
	var pods []localPod
	for _, name := range p.AppliedToGroups {
		g := b.s.AppliedToGroups[name]
		if g == nil {
			continue
		}
		for _, m := range g.Members {
			if m.Node != b.s.NodeName || b.s.NodeName == "" {
				continue
			}
			for _, pfx := range memberPrefixes(m) {
				ofport, ok := b.s.LocalPods[pfx.Addr()]
				if !ok || seen[pfx.Addr()] {
					continue
				}
				seen[pfx.Addr()] = true
				pods = append(pods, localPod{ip: pfx.Addr(), ofport: ofport, ports: m.Ports})
			}
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].ip.Less(pods[j].ip) })
	return pods
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

// addrClause matches the addresses ps, as sources or (dst) destinations.
func (b *builder) addrClause(t agentof.Table, dst bool, ps []netip.Prefix) clause {
	field, f := of.FieldIPSrc, of.MatchIPSrc
	if dst {
		field, f = of.FieldIPDst, of.MatchIPDst
	}
	c := make(clause, len(ps))
	// The matches of all addresses, and their values, carved out of one
	// array each.
	fields := make([]of.MatchField, 2*len(ps))
	values := make([]byte, 4*len(ps))
	for i, p := range ps {
		m := fields[2*i : 2*i+2 : 2*i+2]
		m[0] = ipv4
		if p.Bits() == 32 {
			v := values[4*i : 4*i+4 : 4*i+4]
			a := p.Addr().As4()
			copy(v, a[:])
			m[1] = of.MatchField{Field: field, Value: v}
		} else {
			m[1] = f(p)
		}
		c[i] = newClauseMatch(t, m...)
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
	id := b.c.ids.Get(fmt.Sprintf("%s/%s/%d/%s", ref.PolicyUID, dir, idx, sig))
	b.rules[id] = ref
	reg, label := agentof.IngressRuleReg, agentof.IngressRuleLabel
	if t.ID == agentof.EgressRuleTable.ID {
		reg, label = agentof.EgressRuleReg, agentof.EgressRuleLabel
	}
	// The rest of each connection the rule allowed: its counters are the
	// rule's packets and bytes (NetworkPolicy statistics).
	b.add(ownerEstablishedPrefix+strings.TrimPrefix(owner, ownerRulePrefix), of.Flow{Table: t.ID, Priority: PriorityEstablishedRule,
		Match:   []of.MatchField{of.MatchCTState(of.CTEst, of.CTNew), label.Match(uint64(id)), ipMatch()},
		Actions: allow})
	if len(clauses) == 1 {
		for _, m := range clauses[0] {
			b.addSingle(owner, of.Flow{Table: t.ID, Priority: PriorityRuleAllow, Match: m.match, Actions: allow}, reg, id)
		}
		return
	}
	allow = append([]of.Action{reg.Load(id)}, allow...)
	for i, c := range clauses {
		for _, m := range c {
			b.addClause(t.ID, m, of.Conjunction{ID: id, Clause: uint8(i + 1), NClauses: uint8(len(clauses))})
		}
	}
	b.add(owner, of.Flow{Table: t.ID, Priority: PriorityRuleAllow,
		Match: []of.MatchField{of.MatchConjID(id), ipMatch()}, Actions: allow})
}

// singleFlow is the allow flow of single-clause rules with one match:
// the rules share it (its owners), and it loads the lowest of their ids,
// so that every owner installs the same flow.
type singleFlow struct {
	flow   of.Flow
	reg    agentof.RegField
	id     uint32
	owners []string
}

func (b *builder) addSingle(owner string, f of.Flow, reg agentof.RegField, id uint32) {
	k := f.Key()
	sf := b.singles[k]
	if sf == nil {
		sf = &singleFlow{flow: f, reg: reg, id: id}
		b.singles[k] = sf
	}
	sf.id = min(sf.id, id)
	sf.owners = append(sf.owners, owner)
}

func (b *builder) result() map[string]map[string]of.Flow {
	b.c.lastClauses = len(b.clauses)
	b.c.lastRules = b.rules
	for k, sf := range b.singles {
		f := sf.flow
		f.Actions = append([]of.Action{sf.reg.Load(sf.id)}, f.Actions...)
		for _, owner := range sf.owners {
			b.addKeyed(owner, k, f)
		}
	}
	perTable := map[uint8]int{}
	nconj := 0
	for i := range b.clauses {
		perTable[b.clauses[i].flow.Table]++
		nconj += 1 + len(b.clauses[i].more)
	}
	tableOwner := make(map[uint8]map[string]of.Flow, len(perTable))
	for t, n := range perTable {
		m := make(map[string]of.Flow, n)
		b.owners[fmt.Sprintf("%s%d", ownerMatchPrefix, t)] = m
		tableOwner[t] = m
	}
	// The actions of all clause flows, carved out of one array.
	actions := make([]of.Action, 0, nconj)
	for k, i := range b.clauseIndex {
		cf := &b.clauses[i]
		f := cf.flow
		start := len(actions)
		if len(cf.more) == 0 {
			actions = append(actions, cf.first)
		} else {
			conj := append(cf.more, cf.first)
			slices.SortFunc(conj, func(a, b of.Conjunction) int {
				return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Clause, b.Clause))
			})
			for _, c := range slices.Compact(conj) {
				actions = append(actions, c)
			}
		}
		f.Actions = actions[start:len(actions):len(actions)]
		f.Cookie = b.c.cookie
		tableOwner[f.Table][k] = f
	}
	return b.owners
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
