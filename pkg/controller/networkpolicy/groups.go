package networkpolicy

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// podRef names a pod; it keys group members.
type podRef struct{ namespace, name string }

// group is an AppliedToGroup or an AddressGroup being maintained: its
// selection, its members, and who uses it.
type group struct {
	name string
	kind groupKind
	sel  groupSelector
	// members are the eligible pods the selection matches.
	members map[podRef]struct{}
	// namespaces are, for a cluster-scoped selection, the namespaces its
	// namespace selector matches.
	namespaces map[string]struct{}

	// AppliedToGroup: the policies applied to it, and the nodes of its
	// members as last synced (sorted; shared, never modified in place)
	// with a version bumped on each change.
	policies    map[string]struct{}
	span        []string
	spanVersion uint64
	// synced is set once the span was first computed; until then the
	// policies and AddressGroups that derive from it wait.
	synced bool

	// AddressGroup: how many of the policies using it are applied to each
	// AppliedToGroup; its span is the union of theirs.
	atgRefs map[string]int
}

// podEligible reports whether a pod belongs in groups: it runs on a node,
// has an IP, and is not terminated.
func podEligible(pod *corev1.Pod) bool {
	if pod == nil || pod.Spec.NodeName == "" || pod.Status.PodIP == "" {
		return false
	}
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// podIPs returns the IPs of a pod.
func podIPs(pod *corev1.Pod) []string {
	if len(pod.Status.PodIPs) == 0 {
		return []string{pod.Status.PodIP}
	}
	ips := make([]string, 0, len(pod.Status.PodIPs))
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	return ips
}

// namedPorts returns the named container ports of a pod.
func namedPorts(pod *corev1.Pod) []controlplane.NamedPort {
	var ports []controlplane.NamedPort
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.Name == "" {
				continue
			}
			proto := controlplane.ProtocolTCP
			if p.Protocol != "" {
				proto = controlplane.Protocol(p.Protocol)
			}
			ports = append(ports, controlplane.NamedPort{Name: p.Name, Port: p.ContainerPort, Protocol: proto})
		}
	}
	return ports
}

// memberChanged reports whether a pod's change shows in the groups it is
// a member of (not counting its labels, which decide membership).
func memberChanged(a, b *corev1.Pod) bool {
	if a.Spec.NodeName != b.Spec.NodeName || a.Status.PodIP != b.Status.PodIP ||
		len(a.Status.PodIPs) != len(b.Status.PodIPs) {
		return true
	}
	for i := range a.Status.PodIPs {
		if a.Status.PodIPs[i].IP != b.Status.PodIPs[i].IP {
			return true
		}
	}
	pa, pb := namedPorts(a), namedPorts(b)
	if len(pa) != len(pb) {
		return true
	}
	for i := range pa {
		if pa[i] != pb[i] {
			return true
		}
	}
	return false
}

// index is the controller's view of pods and namespaces and the groups it
// maintains, indexed both ways: the pods a selector matches, and the
// groups whose selectors may match a pod or a namespace.
type index struct {
	pods       map[string]*labelIndex[*corev1.Pod] // by namespace
	namespaces *labelIndex[*corev1.Namespace]

	appliedTo map[string]*group
	address   map[string]*group
	// nsGroups indexes the pod selectors of namespaced groups by
	// namespace; clusterGroups indexes the namespace selectors of
	// cluster-scoped groups, and nsMatched lists those matching each
	// namespace.
	nsGroups      map[string]*selectorIndex
	clusterGroups *selectorIndex
	nsMatched     map[string]map[string]struct{}
	// spanSeq numbers the spans of AppliedToGroups.
	spanSeq uint64
}

func newIndex() *index {
	return &index{
		pods:          map[string]*labelIndex[*corev1.Pod]{},
		namespaces:    newLabelIndex[*corev1.Namespace](),
		appliedTo:     map[string]*group{},
		address:       map[string]*group{},
		nsGroups:      map[string]*selectorIndex{},
		clusterGroups: newSelectorIndex(),
		nsMatched:     map[string]map[string]struct{}{},
	}
}

func (x *index) groups(kind groupKind) map[string]*group {
	if kind == appliedToKind {
		return x.appliedTo
	}
	return x.address
}

// group returns a group by name, whichever its kind.
func (x *index) group(name string) *group {
	if g := x.appliedTo[name]; g != nil {
		return g
	}
	return x.address[name]
}

func (x *index) pod(ref podRef) *corev1.Pod {
	if pods := x.pods[ref.namespace]; pods != nil {
		p, _ := pods.get(ref.name)
		return p
	}
	return nil
}

// ensureGroup returns the group of that kind and selection, creating it
// with its members if it does not exist yet; created reports that.
func (x *index) ensureGroup(kind groupKind, sel groupSelector) (g *group, created bool) {
	name := groupName(kind, sel)
	groups := x.groups(kind)
	if g := groups[name]; g != nil {
		return g, false
	}
	g = &group{name: name, kind: kind, sel: sel, members: map[podRef]struct{}{}}
	if kind == appliedToKind {
		g.policies = map[string]struct{}{}
		x.spanSeq++
		g.spanVersion = x.spanSeq
	} else {
		g.atgRefs = map[string]int{}
	}
	groups[name] = g
	if !sel.clusterScoped() {
		si := x.nsGroups[sel.namespace]
		if si == nil {
			si = newSelectorIndex()
			x.nsGroups[sel.namespace] = si
		}
		si.add(name, sel.podSelector)
		x.addNamespacePods(g, sel.namespace)
		return g, true
	}
	g.namespaces = map[string]struct{}{}
	x.clusterGroups.add(name, sel.nsSelector)
	x.namespaces.match(sel.nsSelector, func(ns string, _ *corev1.Namespace) {
		x.matchNamespace(g, ns)
	})
	return g, true
}

// deleteGroup forgets a group that nothing uses any more.
func (x *index) deleteGroup(g *group) {
	delete(x.groups(g.kind), g.name)
	if !g.sel.clusterScoped() {
		if si := x.nsGroups[g.sel.namespace]; si != nil {
			si.remove(g.name, g.sel.podSelector)
			if si.empty() {
				delete(x.nsGroups, g.sel.namespace)
			}
		}
		return
	}
	x.clusterGroups.remove(g.name, g.sel.nsSelector)
	for ns := range g.namespaces {
		if m := x.nsMatched[ns]; m != nil {
			delete(m, g.name)
			if len(m) == 0 {
				delete(x.nsMatched, ns)
			}
		}
	}
}

// addNamespacePods adds the pods of ns that the group's pod selector
// matches; it reports whether any was added.
func (x *index) addNamespacePods(g *group, ns string) bool {
	pods := x.pods[ns]
	if pods == nil {
		return false
	}
	n := len(g.members)
	pods.match(g.sel.podSelector, func(name string, _ *corev1.Pod) {
		g.members[podRef{ns, name}] = struct{}{}
	})
	return len(g.members) != n
}

// matchNamespace records that a cluster-scoped group's namespace selector
// matches ns, and adds its pods.
func (x *index) matchNamespace(g *group, ns string) bool {
	g.namespaces[ns] = struct{}{}
	m := x.nsMatched[ns]
	if m == nil {
		m = map[string]struct{}{}
		x.nsMatched[ns] = m
	}
	m[g.name] = struct{}{}
	return x.addNamespacePods(g, ns)
}

// unmatchNamespace is the reverse of matchNamespace.
func (x *index) unmatchNamespace(g *group, ns string) bool {
	delete(g.namespaces, ns)
	if m := x.nsMatched[ns]; m != nil {
		delete(m, g.name)
		if len(m) == 0 {
			delete(x.nsMatched, ns)
		}
	}
	changed := false
	for ref := range g.members {
		if ref.namespace == ns {
			delete(g.members, ref)
			changed = true
		}
	}
	return changed
}

// setPod records a pod's new state (nil when it is gone or not eligible)
// and updates the groups whose selection may include it; it calls changed
// for each group whose members changed.
func (x *index) setPod(ns, name string, pod *corev1.Pod, changed func(*group)) {
	pods := x.pods[ns]
	var old *corev1.Pod
	if pods != nil {
		old, _ = pods.get(name)
	}
	if old == nil && pod == nil {
		return
	}
	if pod == nil {
		pods.remove(name)
		if pods.len() == 0 {
			delete(x.pods, ns)
		}
	} else {
		if pods == nil {
			pods = newLabelIndex[*corev1.Pod]()
			x.pods[ns] = pods
		}
		pods.set(name, pod)
	}
	moved := old == nil || pod == nil || memberChanged(old, pod)
	if !moved && labels.Equals(old.Labels, pod.Labels) {
		return
	}
	ref := podRef{ns, name}
	seen := map[string]struct{}{}
	visit := func(gname string) {
		if _, ok := seen[gname]; ok {
			return
		}
		seen[gname] = struct{}{}
		g := x.group(gname)
		if g == nil {
			return
		}
		_, was := g.members[ref]
		now := pod != nil && g.sel.podSelector.Matches(labels.Set(pod.Labels))
		switch {
		case now && !was:
			g.members[ref] = struct{}{}
		case was && !now:
			delete(g.members, ref)
		case !now || !moved:
			return
		}
		changed(g)
	}
	for _, p := range []*corev1.Pod{pod, old} {
		if p == nil {
			continue
		}
		if si := x.nsGroups[ns]; si != nil {
			si.candidates(p.Labels, visit)
		}
		for gname := range x.nsMatched[ns] {
			visit(gname)
		}
	}
}

// setNamespace records a namespace's new state (nil when deleted) and
// updates the cluster-scoped groups whose namespace selector may match it.
func (x *index) setNamespace(name string, ns *corev1.Namespace, changed func(*group)) {
	old, _ := x.namespaces.get(name)
	if ns == nil {
		x.namespaces.remove(name)
	} else {
		x.namespaces.set(name, ns)
	}
	if old != nil && ns != nil && labels.Equals(old.Labels, ns.Labels) {
		return
	}
	seen := map[string]struct{}{}
	visit := func(gname string) {
		if _, ok := seen[gname]; ok {
			return
		}
		seen[gname] = struct{}{}
		g := x.address[gname]
		if g == nil {
			return
		}
		_, was := g.namespaces[name]
		now := ns != nil && g.sel.nsSelector.Matches(labels.Set(ns.Labels))
		var members bool
		switch {
		case now && !was:
			members = x.matchNamespace(g, name)
		case was && !now:
			members = x.unmatchNamespace(g, name)
		}
		if members {
			changed(g)
		}
	}
	for _, n := range []*corev1.Namespace{ns, old} {
		if n != nil {
			x.clusterGroups.candidates(n.Labels, visit)
		}
	}
}
