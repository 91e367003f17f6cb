package networkpolicy

import (
	"cmp"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ovs-cni/antrea/pkg/agent/idalloc"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// State is everything the flows of this node depend on. Its policies and
// groups are never modified once handed to a Compiler: a changed one is
// a new object.
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
// allocated, so that a rule keeps its id from one compile to the next,
// and what it compiled, so that the next compile recompiles only the
// policies whose inputs changed and reports what changed in the flows
// (CompileChanges). Its results are those of a fresh compile of the same
// state, conjunction ids aside.
//
// The objects of a State are taken as immutable: a changed policy or
// group must come as a new object. A policy is recompiled when its object,
// one of the groups it names (by pointer), or its local pods (IP and
// ofport) changed.
type Compiler struct {
	ids *idalloc.Allocator
	// cookie is stamped into every flow (see SetCookie).
	cookie   uint64
	nodeName string
	// policies are the compiled policies by UID; base the flows that do
	// not depend on any.
	policies map[types.UID]*compiledPolicy
	base     *compiledPolicy
	// keys are the merged flows by key: every flow of every owner.
	keys map[string]*keyState
	// dirty are the keys whose contributions changed since their flows
	// were last emitted.
	dirty []*keyState
	// rules are the rules by conjunction id; rulesView a copy of them
	// handed out by Rules, nil when stale.
	rules     map[uint32]Rule
	rulesView map[uint32]Rule
}

// compiledPolicy is what one policy (or the base flows) contributed, and
// the inputs it was compiled from.
type compiledPolicy struct {
	policy    *controlplane.NetworkPolicy
	appliedTo []*controlplane.AppliedToGroup
	addresses []*controlplane.AddressGroup
	pods      []localPod
	gateway   netip.Addr // the base flows' only input
	// keys are the merged flows it contributes to (once per
	// contribution).
	keys   []*keyState
	idKeys []string
	rules  []ruleID
	// stale: replaced or gone; its contributions are being removed.
	stale bool
}

type ruleID struct {
	id   uint32
	rule Rule
}

// Kinds of merged flows.
const (
	// kindPlain: every contribution is the same flow, of its owner.
	kindPlain uint8 = iota
	// kindClause: a clause flow of the conjunctions of its contributions
	// (in the table's match owner).
	kindClause
	// kindSingle: the allow flow of single-clause rules, in each rule's
	// owner, loading the id of the rule whose owner sorts first.
	kindSingle
)

// keyState is one flow key and what contributes to it. There is one per
// flow, so it is kept small.
type keyState struct {
	key   string
	match []of.MatchField
	// actions are the flow's (kindPlain), or those after the id load
	// (kindSingle).
	actions []of.Action
	refs    []keyRef
	// out are the owners the flow was last emitted to (kindPlain,
	// kindSingle; a clause flow is always in its table's match owner).
	out      []string
	priority uint16
	table    uint8
	kind     uint8
	dirty    bool
	// counted: the flow's counters are statistics (agentof.CookieCounted).
	counted bool
	// emittedID is the id the flow loaded when last emitted (kindSingle).
	emittedID uint32
	// inline holds the first contribution, so that most keys need no
	// allocation for refs.
	inline [1]keyRef
}

// keyRef is one contribution to a key: from whom, for which owner
// (kindPlain, kindSingle; clause flows are in their table's match
// owner), and the conjunction (kindClause: packed by packConj, and as
// the action) or rule id (kindSingle).
type keyRef struct {
	from   *compiledPolicy
	owner  string
	value  uint64
	action of.Action
}

func packConj(c of.Conjunction) uint64 {
	return uint64(c.ID)<<16 | uint64(c.Clause)<<8 | uint64(c.NClauses)
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
func (c *Compiler) Rules() map[uint32]Rule {
	if c.rulesView == nil {
		c.rulesView = maps.Clone(c.rules)
		if c.rulesView == nil {
			c.rulesView = map[uint32]Rule{}
		}
	}
	return c.rulesView
}

// NewCompiler returns a compiler whose first conjunction id is 1.
func NewCompiler() *Compiler { return NewCompilerFrom(1) }

// NewCompilerFrom returns a compiler whose conjunction ids start at first.
// An agent that restarts next to the flows of its previous run starts in
// another part of the id space, so that until those flows are swept no
// new rule shares a conjunction id with an old rule's leftover clauses.
func NewCompilerFrom(first uint32) *Compiler {
	return &Compiler{ids: idalloc.New(first), policies: map[types.UID]*compiledPolicy{}, keys: map[string]*keyState{}, rules: map[uint32]Rule{}}
}

// Compile returns the desired flows of s by owner. It does no I/O; its
// only effects are on the compiler: the conjunction ids (those of rules
// that are gone stay reserved until ReleaseUnusedIDs) and what it keeps
// of the compile.
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
	c.update(s)
	live := 0
	for _, ks := range c.dirty {
		ks.dirty = false
		if len(ks.refs) == 0 {
			delete(c.keys, ks.key)
		} else {
			live++
		}
	}
	// When every key changed (a first compile), walk them in the order
	// they were made, which is the order they lie in memory.
	all := slices.Values(c.dirty)
	if live != len(c.keys) {
		all = maps.Values(c.keys)
	}
	perTable := clausesPerTable(all)
	out := make(map[string]map[string]of.Flow, len(c.policies)*4)
	for t, n := range perTable {
		if n > 0 {
			out[matchOwner(uint8(t))] = make(map[string]of.Flow, n)
		}
	}
	for ks := range all {
		if len(ks.refs) == 0 {
			continue
		}
		f, id := c.flowOf(ks)
		if ks.kind == kindClause {
			out[matchOwner(ks.table)][ks.key] = f
			continue
		}
		ks.emittedID = id
		ks.out = c.ownersOf(ks, ks.out[:0])
		for _, owner := range ks.out {
			m := out[owner]
			if m == nil {
				m = make(map[string]of.Flow, 2)
				out[owner] = m
			}
			m[ks.key] = f
		}
	}
	c.dirty = c.dirty[:0]
	return out
}

// OwnerPatch is the change of one owner's flows (agentof.OwnerPatch).
type OwnerPatch = agentof.OwnerPatch

// CompileChanges compiles s and returns how its flows differ from those
// of the previous compile, by owner: flows set (added or changed) and
// keys removed. The first compile's changes are all of its flows.
func (c *Compiler) CompileChanges(s *State) map[string]*OwnerPatch {
	c.update(s)
	perTable := clausesPerTable(slices.Values(c.dirty))
	patches := map[string]*OwnerPatch{}
	// patchSized returns owner's patch, made for n flows when new.
	patchSized := func(owner string, n int) *OwnerPatch {
		p := patches[owner]
		if p == nil {
			p = &OwnerPatch{Set: make(map[string]of.Flow, max(n, 1))}
			patches[owner] = p
		}
		return p
	}
	patch := func(owner string) *OwnerPatch { return patchSized(owner, 1) }
	clausePatch := func(table uint8) *OwnerPatch { return patchSized(matchOwner(table), perTable[table]) }
	var owners []string
	for _, ks := range c.dirty {
		ks.dirty = false
		if ks.kind == kindClause {
			if len(ks.refs) == 0 {
				p := clausePatch(ks.table)
				p.Remove = append(p.Remove, ks.key)
				delete(c.keys, ks.key)
				continue
			}
			f, _ := c.flowOf(ks)
			clausePatch(ks.table).Set[ks.key] = f
			continue
		}
		owners = c.ownersOf(ks, owners[:0])
		var f of.Flow
		changed := false
		if len(ks.refs) > 0 {
			var id uint32
			f, id = c.flowOf(ks)
			// A plain flow never changes; a shared allow flow changes with
			// the rule it names.
			changed = ks.kind == kindSingle && id != ks.emittedID
			ks.emittedID = id
		}
		// Both lists are sorted: the owners that lose the flow, gain it,
		// or keep it (sent again only if it changed).
		for i, j := 0, 0; i < len(ks.out) || j < len(owners); {
			switch {
			case j == len(owners) || (i < len(ks.out) && ks.out[i] < owners[j]):
				p := patch(ks.out[i])
				p.Remove = append(p.Remove, ks.key)
				i++
			case i == len(ks.out) || owners[j] < ks.out[i]:
				patch(owners[j]).Set[ks.key] = f
				j++
			default:
				if changed {
					patch(owners[j]).Set[ks.key] = f
				}
				i++
				j++
			}
		}
		if len(ks.refs) == 0 {
			delete(c.keys, ks.key)
			continue
		}
		if !slices.Equal(owners, ks.out) {
			ks.out = slices.Clone(owners)
		}
	}
	c.dirty = c.dirty[:0]
	return patches
}

// update brings the merged flows to those of s: the contributions of
// policies that are gone or whose inputs changed are removed, changed and
// new policies compiled, and every key whose contributions changed is
// marked dirty.
func (c *Compiler) update(s *State) {
	c.ids.Begin()
	if len(c.keys) == 0 {
		// Size the first compile's table: mostly a flow per peer address,
		// plus a few per rule.
		c.keys = make(map[string]*keyState, flowHint(s))
	}
	b := &builder{c: c, s: s}
	var stale []*compiledPolicy
	if s.NodeName != c.nodeName {
		// Every policy's applied-to pods may have changed.
		for uid, cp := range c.policies {
			stale = append(stale, cp)
			delete(c.policies, uid)
		}
		c.nodeName = s.NodeName
	}
	newBase := c.base == nil || c.base.gateway != s.GatewayIP
	if newBase && c.base != nil {
		stale = append(stale, c.base)
	}
	seen := make(map[types.UID]bool, len(s.Policies))
	var changed []*compiledPolicy
	for _, p := range s.Policies {
		if seen[p.UID] {
			continue // a UID names one policy
		}
		seen[p.UID] = true
		cp := b.inputs(p)
		old := c.policies[p.UID]
		if old != nil && old.sameInputs(cp) {
			for _, k := range old.idKeys {
				c.ids.Get(k)
			}
			continue
		}
		if old != nil {
			stale = append(stale, old)
		}
		changed = append(changed, cp)
	}
	for uid, cp := range c.policies {
		if !seen[uid] {
			stale = append(stale, cp)
			delete(c.policies, uid)
		}
	}
	// Remove the contributions of stale policies, each touched key once.
	for _, cp := range stale {
		cp.stale = true
		for _, ks := range cp.keys {
			c.markDirty(ks)
		}
		for _, r := range cp.rules {
			delete(c.rules, r.id)
			c.rulesView = nil
		}
	}
	for _, ks := range c.dirty {
		ks.refs = slices.DeleteFunc(ks.refs, func(r keyRef) bool { return r.from.stale })
	}
	if newBase {
		c.base = &compiledPolicy{gateway: s.GatewayIP}
		b.cur = c.base
		b.base()
	}
	// New ids go to policies in UID order, as in a fresh compile.
	slices.SortFunc(changed, func(x, y *compiledPolicy) int { return cmp.Compare(x.policy.UID, y.policy.UID) })
	for _, cp := range changed {
		c.policies[cp.policy.UID] = cp
		b.cur = cp
		b.policy(cp.policy, cp.pods)
		for _, r := range cp.rules {
			c.rules[r.id] = r.rule
			c.rulesView = nil
		}
	}
}

// inputs returns a compiledPolicy for p with its inputs and nothing
// compiled yet.
func (b *builder) inputs(p *controlplane.NetworkPolicy) *compiledPolicy {
	cp := &compiledPolicy{policy: p, pods: b.appliedToPods(p)}
	if len(p.AppliedToGroups) > 0 {
		cp.appliedTo = make([]*controlplane.AppliedToGroup, len(p.AppliedToGroups))
		for i, name := range p.AppliedToGroups {
			cp.appliedTo[i] = b.s.AppliedToGroups[name]
		}
	}
	for _, r := range p.Rules {
		for _, name := range r.From.AddressGroups {
			cp.addresses = append(cp.addresses, b.s.AddressGroups[name])
		}
		for _, name := range r.To.AddressGroups {
			cp.addresses = append(cp.addresses, b.s.AddressGroups[name])
		}
	}
	return cp
}

// sameInputs reports whether cp was compiled from the inputs of in.
func (cp *compiledPolicy) sameInputs(in *compiledPolicy) bool {
	return cp.policy == in.policy && slices.Equal(cp.appliedTo, in.appliedTo) && slices.Equal(cp.addresses, in.addresses) &&
		slices.EqualFunc(cp.pods, in.pods, func(a, b localPod) bool { return a.ip == b.ip && a.ofport == b.ofport })
}

func (c *Compiler) markDirty(ks *keyState) {
	if !ks.dirty {
		ks.dirty = true
		c.dirty = append(c.dirty, ks)
	}
}

// contribute adds from's contribution ref to the flow f, whose key is
// key. Flows of one key have one kind: the tables and priorities of the
// kinds do not overlap.
func (c *Compiler) contribute(from *compiledPolicy, kind uint8, key string, f of.Flow, ref keyRef) {
	ks := c.keys[key]
	if ks == nil {
		ks = &keyState{}
		ks.key, ks.kind, ks.table, ks.priority, ks.match, ks.actions = key, kind, f.Table, f.Priority, f.Match, f.Actions
		ks.counted = f.Cookie&agentof.CookieCounted != 0
		ks.refs = ks.inline[:0]
		c.keys[key] = ks
	}
	ref.from = from
	ks.refs = append(ks.refs, ref)
	c.markDirty(ks)
	from.keys = append(from.keys, ks)
}

// ownersOf appends the distinct owners of ks's contributions to owners
// (empty), sorted.
func (c *Compiler) ownersOf(ks *keyState, owners []string) []string {
	for _, r := range ks.refs {
		owners = append(owners, r.owner)
	}
	if len(owners) > 1 {
		slices.Sort(owners)
		owners = slices.Compact(owners)
	}
	return owners
}

// flowOf returns the flow of ks, which must have contributions, and for
// a single-clause allow flow the id it loads. Each flow's actions are its
// own: a flow the syncer keeps pins no more than itself.
func (c *Compiler) flowOf(ks *keyState) (of.Flow, uint32) {
	f := of.Flow{Table: ks.table, Priority: ks.priority, Cookie: c.cookie, Match: ks.match, Actions: ks.actions}
	if ks.counted {
		f.Cookie |= agentof.CookieCounted
	}
	switch ks.kind {
	case kindClause:
		if len(ks.refs) == 1 {
			f.Actions = []of.Action{ks.refs[0].action}
			break
		}
		// Packed conjunctions sort by id, then clause.
		refs := slices.Clone(ks.refs)
		slices.SortFunc(refs, func(a, b keyRef) int { return cmp.Compare(a.value, b.value) })
		f.Actions = make([]of.Action, 0, len(refs))
		for i, r := range refs {
			if i == 0 || r.value != refs[i-1].value {
				f.Actions = append(f.Actions, r.action)
			}
		}
	case kindSingle:
		// The rule whose owner sorts first: which rule that is does not
		// depend on the order ids were allocated in.
		first := ks.refs[0]
		for _, r := range ks.refs[1:] {
			if r.owner < first.owner || (r.owner == first.owner && r.value < first.value) {
				first = r
			}
		}
		reg := agentof.IngressRuleReg
		if f.Table == agentof.EgressRuleTable.ID {
			reg = agentof.EgressRuleReg
		}
		f.Actions = append([]of.Action{reg.Load(uint32(first.value))}, ks.actions...)
		return f, uint32(first.value)
	}
	return f, 0
}

// matchOwner is the owner of the clause flows of table.
func matchOwner(table uint8) string {
	switch table {
	case agentof.EgressRuleTable.ID:
		return ownerMatchEgress
	case agentof.IngressRuleTable.ID:
		return ownerMatchIngress
	}
	return ownerMatchPrefix + strconv.Itoa(int(table))
}

// clausesPerTable counts the clause flows with contributions among keys,
// by table: the sizes of the match owners' maps.
func clausesPerTable(keys iter.Seq[*keyState]) (n [256]int) {
	for ks := range keys {
		if ks.kind == kindClause && len(ks.refs) > 0 {
			n[ks.table]++
		}
	}
	return n
}

var (
	ownerMatchEgress  = ownerMatchPrefix + strconv.Itoa(int(agentof.EgressRuleTable.ID))
	ownerMatchIngress = ownerMatchPrefix + strconv.Itoa(int(agentof.IngressRuleTable.ID))
)

// flowHint guesses how many flows s compiles to: a clause flow per peer
// address, one per local pod and direction, and an allow, an
// established and a port flow per rule.
func flowHint(s *State) int {
	n := 2 * len(s.LocalPods)
	for _, g := range s.AddressGroups {
		n += len(g.Members)
	}
	for _, p := range s.Policies {
		n += 3 * len(p.Rules)
	}
	return min(n, 1<<21)
}

// ReleaseUnusedIDs frees the conjunction ids that the last Compile did not
// use, for reuse by later compiles. Call it once the flows of that compile
// are installed.
func (c *Compiler) ReleaseUnusedIDs() { c.ids.ReleaseUnused() }

// Compile compiles s with a fresh compiler (conjunction ids from 1).
func Compile(s *State) map[string][]of.Flow { return NewCompiler().Compile(s) }
