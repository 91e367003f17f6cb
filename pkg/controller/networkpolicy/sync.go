package networkpolicy

import (
	"cmp"
	"slices"

	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// syncAppliedToGroup stores an AppliedToGroup as its members make it, or
// deletes it. When its span is first computed or changes, the policies
// applied to it and their AddressGroups are queued, as their spans derive
// from it.
func (c *Controller) syncAppliedToGroup(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.index.appliedTo[name]
	if g == nil {
		c.appliedToGroups.Delete(name)
		klog.V(4).InfoS("Deleted AppliedToGroup", "group", name)
		return
	}
	members := c.members(g)
	if span := membersSpan(members); !g.synced || !slices.Equal(span, g.span) {
		g.span, g.synced = span, true
		c.index.spanSeq++
		g.spanVersion = c.index.spanSeq
		for key := range g.policies {
			c.policyQueue.Add(key)
			if ps := c.policies[key]; ps != nil {
				for _, ag := range ps.addressGroups {
					c.addressQueue.Add(ag)
				}
			}
		}
	}
	c.appliedToGroups.Update(&controlplane.AppliedToGroup{Name: name, Members: members, Span: g.span})
	klog.V(4).InfoS("Synced AppliedToGroup", "group", name, "members", len(members), "span", len(g.span))
}

// syncAddressGroup stores an AddressGroup as its members and the spans of
// the policies using it make it, or deletes it.
func (c *Controller) syncAddressGroup(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.index.address[name]
	if g == nil {
		c.addressGroups.Delete(name)
		klog.V(4).InfoS("Deleted AddressGroup", "group", name)
		return
	}
	spans := make([][]string, 0, len(g.atgRefs))
	for atg := range g.atgRefs {
		a := c.index.appliedTo[atg]
		if a == nil || !a.synced {
			return // its first sync queues this group again
		}
		spans = append(spans, a.span)
	}
	members := c.members(g)
	span := unionSpans(spans)
	c.addressGroups.Update(&controlplane.AddressGroup{Name: name, Members: members, Span: span})
	klog.V(4).InfoS("Synced AddressGroup", "group", name, "members", len(members), "span", len(span))
}

// syncPolicy stores an internal NetworkPolicy with the span of its
// AppliedToGroup, or deletes it; it skips a policy already stored with
// that span.
func (c *Controller) syncPolicy(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.policies[key]
	if ps == nil {
		c.networkPolicies.Delete(key)
		klog.V(4).InfoS("Deleted NetworkPolicy", "policy", key)
		return
	}
	atg := c.index.appliedTo[ps.appliedTo[0]]
	if atg == nil || !atg.synced || ps.publishedSpan == atg.spanVersion {
		return // an AppliedToGroup's sync queues its policies when its span changes
	}
	ps.publishedSpan = atg.spanVersion
	c.networkPolicies.Update(&controlplane.NetworkPolicy{
		UID:             ps.uid,
		Name:            ps.name,
		Namespace:       ps.namespace,
		Rules:           ps.spec.rules,
		AppliedToGroups: ps.appliedTo,
		PolicyTypes:     ps.spec.policyTypes,
		Span:            atg.span,
	})
	klog.V(4).InfoS("Synced NetworkPolicy", "policy", key, "span", len(atg.span))
}

// members returns the members of a group, sorted by pod.
func (c *Controller) members(g *group) []controlplane.GroupMember {
	out := make([]controlplane.GroupMember, 0, len(g.members))
	for ref := range g.members {
		pod := c.index.pod(ref)
		if pod == nil {
			continue
		}
		out = append(out, controlplane.GroupMember{
			Pod:   controlplane.PodReference{Namespace: ref.namespace, Name: ref.name},
			Node:  pod.Spec.NodeName,
			IPs:   podIPs(pod),
			Ports: namedPorts(pod),
		})
	}
	slices.SortFunc(out, func(a, b controlplane.GroupMember) int {
		return cmp.Or(cmp.Compare(a.Pod.Namespace, b.Pod.Namespace), cmp.Compare(a.Pod.Name, b.Pod.Name))
	})
	return out
}

// membersSpan returns the sorted nodes of members.
func membersSpan(members []controlplane.GroupMember) []string {
	span := make([]string, 0, len(members))
	for i := range members {
		span = append(span, members[i].Node)
	}
	slices.Sort(span)
	return slices.Clip(slices.Compact(span))
}

// unionSpans returns the sorted union of sorted spans; a single span is
// returned as is (spans are shared, never modified).
func unionSpans(spans [][]string) []string {
	switch len(spans) {
	case 0:
		return nil
	case 1:
		return spans[0]
	}
	var out []string
	for _, s := range spans {
		out = append(out, s...)
	}
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}
