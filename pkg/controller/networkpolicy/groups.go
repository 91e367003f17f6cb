package networkpolicy

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// nothingCompiled is the selector of the nothing selection.
var nothingCompiled = &compiledSelector{text: nothingKey, sel: labels.Nothing()}

// podEntry is an eligible pod as groups see it: its object (for its
// labels) and the member it makes, computed once for all its groups.
type podEntry struct {
	pod    *pod
	member controlplane.GroupMember
}

func (p *podEntry) GetName() string              { return p.member.Pod.Name }
func (p *podEntry) GetLabels() map[string]string { return p.pod.Labels }

func newPodEntry(p *pod) *podEntry {
	return &podEntry{pod: p, member: podMember(p)}
}

// podMember is the member a pod makes in the groups that select it.
func podMember(p *pod) controlplane.GroupMember {
	return controlplane.GroupMember{
		Pod:   controlplane.PodReference{Namespace: p.Namespace, Name: p.Name},
		Node:  p.NodeName,
		IPs:   p.IPs,
		Ports: p.Ports,
	}
}

// podSelection is the set of pods a selector key selects. The AppliedToGroup
// and the AddressGroup of the same key share it, with its members and the
// list of them they publish.
type podSelection struct {
	key       string
	namespace string // of a namespaced selection
	pods      *compiledSelector
	// cluster is set for a cluster-scoped selection.
	cluster *clusterSelection

	// members are the eligible pods the selection matches.
	members smallSet[*podEntry]

	atg, ag *group

	// list holds the members sorted by pod, shared by the groups'
	// published objects (never modified); stale once members change, and
	// version counts its rebuilds.
	list    []controlplane.GroupMember
	stale   bool
	version uint64
}

func (s *podSelection) nothing() bool { return s.key == nothingKey }

// clusterSelection is what a cluster-scoped selection adds: its namespace
// selector and the namespaces it matches.
type clusterSelection struct {
	ns         *compiledSelector
	namespaces smallSet[string]
}

// compiledSelector is a label selector shared by the selections whose
// selectors have the same normalized text (in many namespaces, say), with
// the count of their references.
type compiledSelector struct {
	text string
	sel  labels.Selector
	refs int
}

// group is an AppliedToGroup or an AddressGroup being maintained.
type group struct {
	// names is its name, as the one AppliedToGroup of its policies.
	names [1]string
	kind  groupKind
	sel   *podSelection
	// dirty: marked for sync; dead: no policy uses it any more, so its
	// sync deletes it.
	dirty, dead bool
	// published is the version of the member list last stored.
	published uint64

	// AppliedToGroup: the policies applied to it, and the nodes of its
	// members as last synced (sorted; shared, never modified in place)
	// with a version bumped on each change.
	policies    smallSet[*policyState]
	span        []string
	spanVersion uint64
	// synced is set once the span was first computed (for an
	// AddressGroup, once stored); until then the policies and
	// AddressGroups that derive from an AppliedToGroup wait.
	synced bool

	// AddressGroup: how many of the policies using it are applied to each
	// AppliedToGroup; its span is the union of theirs.
	refs groupRefs
}

func (g *group) name() string { return g.names[0] }

// podEligible reports whether a pod belongs in groups: it runs on a node,
// has an IP, and is not terminated.
func podEligible(p *pod) bool {
	if p == nil || p.NodeName == "" || len(p.IPs) == 0 {
		return false
	}
	return p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed
}

// memberChanged reports whether a pod's change shows in the groups it is
// a member of (not counting its labels, which decide membership).
func memberChanged(a, b *pod) bool {
	return a.NodeName != b.NodeName || !slices.Equal(a.IPs, b.IPs) || !slices.Equal(a.Ports, b.Ports)
}

// nsState is what the index holds about one namespace: its pods, the
// namespaced selections of its policies, and the cluster-scoped
// selections whose namespace selector matches it.
type nsState struct {
	pods    labelIndex[*podEntry]
	sels    selectorIndex[*podSelection]
	cluster smallSet[*podSelection]
}

func (s *nsState) empty() bool {
	return s.pods.len() == 0 && s.sels.empty() && s.cluster.len() == 0
}

// index is the controller's view of pods and namespaces and the
// selections of its groups, indexed both ways: the pods a selector
// matches, and the selections that may match a pod or a namespace.
type index struct {
	ns         map[string]*nsState
	namespaces *labelIndex[*corev1.Namespace]
	// selections are by key; clusterSels indexes the namespace selectors
	// of the cluster-scoped ones.
	selections  map[string]*podSelection
	clusterSels selectorIndex[*podSelection]
	// compiled are the label selectors of the selections, by text.
	compiled map[string]*compiledSelector
	// spanSeq numbers the spans of AppliedToGroups.
	spanSeq uint64
	// changed is called when the members of a selection change, or the
	// member of one of its pods.
	changed func(*podSelection)
}

func newIndex(changed func(*podSelection)) *index {
	return &index{
		ns:         map[string]*nsState{},
		namespaces: newLabelIndex[*corev1.Namespace](),
		selections: map[string]*podSelection{},
		compiled:   map[string]*compiledSelector{},
		changed:    changed,
	}
}

// nsState returns the state of a namespace, creating it.
func (x *index) nsState(ns string) *nsState {
	st := x.ns[ns]
	if st == nil {
		st = &nsState{pods: labelIndex[*podEntry]{indexAt: labelIndexAt}}
		x.ns[ns] = st
	}
	return st
}

// dropIfEmpty forgets the state of a namespace that holds nothing.
func (x *index) dropIfEmpty(ns string, st *nsState) {
	if st.empty() {
		delete(x.ns, ns)
	}
}

// memberChange marks the list of a selection stale and reports it.
func (x *index) memberChange(s *podSelection) {
	s.stale = true
	x.changed(s)
}

// ensureGroup returns the group of that kind and selection, creating it
// (and its selection, with its members) if it does not exist yet;
// created reports that.
func (x *index) ensureGroup(kind groupKind, gs groupSelector, name string) (g *group, created bool) {
	s := x.selections[gs.key]
	if s == nil {
		s = x.newSelection(gs)
	}
	if kind == appliedToKind {
		g = s.atg
	} else {
		g = s.ag
	}
	if g != nil {
		return g, false
	}
	if name == "" {
		name = groupName(kind, gs)
	}
	g = &group{names: [1]string{name}, kind: kind, sel: s}
	if kind == appliedToKind {
		x.spanSeq++
		g.spanVersion = x.spanSeq
		s.atg = g
	} else {
		s.ag = g
	}
	return g, true
}

// dropGroup detaches a group that nothing uses any more from its
// selection, and forgets the selection once neither kind uses it.
func (x *index) dropGroup(g *group) {
	g.dead = true
	s := g.sel
	if s.atg == g {
		s.atg = nil
	}
	if s.ag == g {
		s.ag = nil
	}
	if s.atg != nil || s.ag != nil {
		return
	}
	delete(x.selections, s.key)
	switch {
	case s.nothing():
		return
	case s.cluster == nil:
		if st := x.ns[s.namespace]; st != nil {
			st.sels.remove(s, s.pods.sel)
			x.dropIfEmpty(s.namespace, st)
		}
	default:
		x.clusterSels.remove(s, s.cluster.ns.sel)
		for ns := range s.cluster.namespaces.all() {
			if st := x.ns[ns]; st != nil {
				st.cluster.remove(s)
				x.dropIfEmpty(ns, st)
			}
		}
		x.release(s.cluster.ns)
	}
	x.release(s.pods)
}

// compile returns the shared label selector of a normalized text, made
// from src when it is not yet compiled, and takes a reference on it.
func (x *index) compile(text string, src *metav1.LabelSelector) *compiledSelector {
	c := x.compiled[text]
	if c == nil {
		c = &compiledSelector{text: text, sel: asSelector(src)}
		x.compiled[text] = c
	}
	c.refs++
	return c
}

// release drops a reference on a compiled selector.
func (x *index) release(c *compiledSelector) {
	if c.refs--; c.refs == 0 {
		delete(x.compiled, c.text)
	}
}

// liveGroup returns the group of that kind and key, if any.
func (x *index) liveGroup(kind groupKind, key string) *group {
	s := x.selections[key]
	switch {
	case s == nil:
		return nil
	case kind == appliedToKind:
		return s.atg
	default:
		return s.ag
	}
}

// newSelection creates the selection of a key with its members.
func (x *index) newSelection(gs groupSelector) *podSelection {
	s := &podSelection{key: gs.key, namespace: gs.namespace, stale: true}
	x.selections[s.key] = s
	switch {
	case gs.key == nothingKey:
		s.pods = nothingCompiled
	case !gs.cluster:
		s.pods = x.compile(gs.podKey, gs.podSel)
		st := x.nsState(s.namespace)
		st.sels.add(s, s.pods.sel)
		st.pods.match(s.pods.sel, func(_ string, p *podEntry) { s.members.add(p) })
	default:
		s.pods = x.compile(gs.podKey, gs.podSel)
		s.cluster = &clusterSelection{ns: x.compile(gs.nsKey, gs.nsSel)}
		x.clusterSels.add(s, s.cluster.ns.sel)
		x.namespaces.match(s.cluster.ns.sel, func(ns string, _ *corev1.Namespace) { x.matchNamespace(s, ns) })
	}
	return s
}

// matchNamespace records that a cluster-scoped selection's namespace
// selector matches ns, and adds its pods; it reports whether any was
// added.
func (x *index) matchNamespace(s *podSelection, ns string) bool {
	s.cluster.namespaces.add(ns)
	st := x.nsState(ns)
	st.cluster.add(s)
	added := false
	st.pods.match(s.pods.sel, func(_ string, p *podEntry) {
		if s.members.add(p) {
			added = true
		}
	})
	return added
}

// unmatchNamespace is the reverse of matchNamespace.
func (x *index) unmatchNamespace(s *podSelection, ns string) bool {
	s.cluster.namespaces.remove(ns)
	st := x.ns[ns]
	if st == nil {
		return false
	}
	st.cluster.remove(s)
	removed := false
	for _, pe := range st.pods.items {
		if s.members.remove(pe) {
			removed = true
		}
	}
	x.dropIfEmpty(ns, st)
	return removed
}

// setPod records a pod's new state (nil when it is gone or not eligible)
// and updates the selections that may include it.
func (x *index) setPod(ns, name string, pod *pod) {
	st := x.ns[ns]
	var pe *podEntry
	if st != nil {
		pe, _ = st.pods.get(name)
	}
	switch {
	case pe == nil && pod == nil:
		return
	case pod == nil:
		x.visitPod(st, pe.pod.Labels, func(s *podSelection) {
			if s.members.remove(pe) {
				x.memberChange(s)
			}
		})
		st.pods.remove(name)
		x.dropIfEmpty(ns, st)
		return
	case pe == nil:
		pe = newPodEntry(pod)
		st = x.nsState(ns)
		st.pods.set(name, pe)
		x.visitPod(st, pod.Labels, func(s *podSelection) {
			if s.pods.sel.Matches(labels.Set(pod.Labels)) && s.members.add(pe) {
				x.memberChange(s)
			}
		})
		return
	}
	old := pe.pod
	moved := memberChanged(old, pod)
	relabeled := !labels.Equals(old.Labels, pod.Labels)
	if relabeled {
		st.pods.remove(name) // indexed by its old labels
	}
	pe.pod = pod
	if moved {
		pe.member = podMember(pod)
	}
	if relabeled {
		st.pods.set(name, pe)
	}
	if !moved && !relabeled {
		return
	}
	// A selection may be visited twice (by old and new labels): each
	// step is idempotent.
	visit := func(s *podSelection) {
		was := s.members.has(pe)
		now := s.pods.sel.Matches(labels.Set(pod.Labels))
		switch {
		case now && !was:
			s.members.add(pe)
		case was && !now:
			s.members.remove(pe)
		case !now || !moved:
			return
		}
		x.memberChange(s)
	}
	x.visitPod(st, pod.Labels, visit)
	if relabeled {
		x.visitPod(st, old.Labels, visit)
	}
}

// visitPod calls fn for the selections that may match a pod of st with
// these labels.
func (x *index) visitPod(st *nsState, lbls map[string]string, fn func(*podSelection)) {
	st.sels.candidates(lbls, fn)
	for s := range st.cluster.all() {
		fn(s)
	}
}

// setNamespace records a namespace's new state (nil when deleted) and
// updates the cluster-scoped selections whose namespace selector may
// match it.
func (x *index) setNamespace(name string, ns *corev1.Namespace) {
	old, _ := x.namespaces.get(name)
	if ns == nil {
		x.namespaces.remove(name)
	} else {
		x.namespaces.set(name, ns)
	}
	if old != nil && ns != nil && labels.Equals(old.Labels, ns.Labels) {
		return
	}
	visit := func(s *podSelection) {
		was := s.cluster.namespaces.has(name)
		now := ns != nil && s.cluster.ns.sel.Matches(labels.Set(ns.Labels))
		switch {
		case now && !was:
			if x.matchNamespace(s, name) {
				x.memberChange(s)
			}
		case was && !now:
			if x.unmatchNamespace(s, name) {
				x.memberChange(s)
			}
		}
	}
	// Collect first: matching changes the namespace's state.
	var cands []*podSelection
	for _, n := range []*corev1.Namespace{ns, old} {
		if n != nil {
			x.clusterSels.candidates(n.Labels, func(s *podSelection) { cands = append(cands, s) })
		}
	}
	for _, s := range cands {
		visit(s)
	}
}

// memberList returns the members of a selection sorted by pod, rebuilt
// when stale.
func (s *podSelection) memberList() []controlplane.GroupMember {
	if !s.stale {
		return s.list
	}
	out := make([]controlplane.GroupMember, 0, s.members.len())
	for p := range s.members.all() {
		out = append(out, p.member)
	}
	slices.SortFunc(out, func(a, b controlplane.GroupMember) int {
		return cmp.Or(cmp.Compare(a.Pod.Namespace, b.Pod.Namespace), cmp.Compare(a.Pod.Name, b.Pod.Name))
	})
	s.list, s.stale = out, false
	s.version++
	return out
}
