package networkpolicy

import (
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// flushPause is how many objects flush syncs between two releases of the
// lock, so that handlers are not held up by a long flush.
const flushPause = 512

// flush syncs the marked objects until none is left: AppliedToGroups
// first, as the spans of the policies and AddressGroups derive from
// theirs, then policies, then AddressGroups. It is called with c.mu held,
// and releases it now and then; objects marked meanwhile are synced in a
// later round. It returns early when done is closed.
func (c *Controller) flush(done <-chan struct{}) {
	// The first flush after the initial lists stores most objects.
	if len(c.dirtyATGs)+len(c.dirtyPolicies)+len(c.dirtyAGs) > flushPause {
		c.appliedToGroups.reserve(len(c.dirtyATGs))
		c.networkPolicies.reserve(len(c.dirtyPolicies))
		c.addressGroups.reserve(len(c.dirtyAGs))
	}
	n := 0
	pause := func() bool {
		c.pending.Add(-1)
		c.processed.Add(1)
		if n++; n%flushPause != 0 {
			return false
		}
		c.mu.Unlock()
		c.mu.Lock()
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	for {
		switch {
		case len(c.dirtyATGs) > 0:
			batch := c.dirtyATGs
			c.dirtyATGs = nil
			for _, g := range batch {
				g.dirty = false
				c.syncAppliedToGroup(g)
				if pause() {
					return
				}
			}
		case len(c.dirtyPolicies) > 0:
			batch := c.dirtyPolicies
			c.dirtyPolicies = nil
			for _, ps := range batch {
				ps.dirty = false
				c.syncPolicy(ps)
				if pause() {
					return
				}
			}
		case len(c.dirtyAGs) > 0:
			batch := c.dirtyAGs
			c.dirtyAGs = nil
			for _, g := range batch {
				g.dirty = false
				c.syncAddressGroup(g)
				if pause() {
					return
				}
			}
		default:
			return
		}
	}
}

// syncAppliedToGroup stores an AppliedToGroup as its members make it, or
// deletes it. When its span is first computed or changes, the policies
// applied to it and their AddressGroups are marked, as their spans derive
// from it.
func (c *Controller) syncAppliedToGroup(g *group) {
	if g.dead {
		// Unless a group of the same key (and name) was made since.
		if c.index.liveGroup(appliedToKind, g.sel.key) == nil {
			c.appliedToGroups.Delete(g.name())
			if klog.V(4).Enabled() {
				klog.InfoS("Deleted AppliedToGroup", "group", g.name())
			}
		}
		return
	}
	s := g.sel
	members := s.memberList()
	span := c.membersSpan(members)
	spanChanged := !g.synced || !slices.Equal(span, g.span)
	if spanChanged {
		g.span = cloneSpan(span)
		g.synced = true
		c.index.spanSeq++
		g.spanVersion = c.index.spanSeq
		for ps := range g.policies.all() {
			c.markPolicy(ps)
			for _, ag := range ps.ags {
				c.markGroup(ag)
			}
		}
	} else if g.published == s.version {
		return // nothing it publishes changed
	}
	g.published = s.version
	c.appliedToGroups.Update(&controlplane.AppliedToGroup{Name: g.name(), Members: members, Span: g.span})
	if klog.V(4).Enabled() {
		klog.InfoS("Synced AppliedToGroup", "group", g.name(), "members", len(members), "span", len(g.span))
	}
}

// syncAddressGroup stores an AddressGroup as its members and the spans of
// the policies using it make it, or deletes it.
func (c *Controller) syncAddressGroup(g *group) {
	if g.dead {
		if c.index.liveGroup(addressKind, g.sel.key) == nil {
			c.addressGroups.Delete(g.name())
			if klog.V(4).Enabled() {
				klog.InfoS("Deleted AddressGroup", "group", g.name())
			}
		}
		return
	}
	var span []string
	if g.refs.len() == 1 {
		for atg := range g.refs.all() {
			if !atg.synced {
				return // its first sync marks this group again
			}
			span = atg.span // shared, never modified
		}
	} else {
		c.scratch = c.scratch[:0]
		for atg := range g.refs.all() {
			if !atg.synced {
				return
			}
			c.scratch = append(c.scratch, atg.span...)
		}
		slices.Sort(c.scratch)
		span = slices.Compact(c.scratch)
		if g.synced && slices.Equal(span, g.span) {
			span = g.span
		} else {
			span = cloneSpan(span)
		}
	}
	members := g.sel.memberList()
	if g.synced && g.published == g.sel.version && slices.Equal(span, g.span) {
		return // nothing it publishes changed
	}
	g.span, g.synced, g.published = span, true, g.sel.version
	c.addressGroups.Update(&controlplane.AddressGroup{Name: g.name(), Members: members, Span: span})
	if klog.V(4).Enabled() {
		klog.InfoS("Synced AddressGroup", "group", g.name(), "members", len(members), "span", len(span))
	}
}

// syncPolicy stores an internal NetworkPolicy with the span of its
// AppliedToGroup, or deletes it; it skips a policy already stored with
// that spec and span.
func (c *Controller) syncPolicy(ps *policyState) {
	if ps.dead {
		if c.policies[ps.key] == nil {
			c.networkPolicies.Delete(ps.key)
			if klog.V(4).Enabled() {
				klog.InfoS("Deleted NetworkPolicy", "policy", ps.key)
			}
		}
		return
	}
	atg := ps.atg
	if !atg.synced || (!ps.stale && ps.publishedSpan == atg.spanVersion) {
		return // an AppliedToGroup's sync marks its policies when its span changes
	}
	ps.stale = false
	ps.publishedSpan = atg.spanVersion
	namespace, name, _ := strings.Cut(ps.key, "/")
	c.networkPolicies.Update(&controlplane.NetworkPolicy{
		UID:             ps.uid,
		Name:            name,
		Namespace:       namespace,
		Rules:           ps.rules,
		AppliedToGroups: atg.names[:],
		PolicyTypes:     ps.policyTypes,
		Span:            atg.span,
	})
	if klog.V(4).Enabled() {
		klog.InfoS("Synced NetworkPolicy", "policy", ps.key, "span", len(atg.span))
	}
}

// membersSpan returns the sorted nodes of members, in a scratch slice
// valid until the next call.
func (c *Controller) membersSpan(members []controlplane.GroupMember) []string {
	span := c.scratch[:0]
	for i := range members {
		span = append(span, members[i].Node)
	}
	slices.Sort(span)
	span = slices.Compact(span)
	c.scratch = span
	return span
}

// cloneSpan returns a copy of a span, nil when empty.
func cloneSpan(span []string) []string {
	if len(span) == 0 {
		return nil
	}
	return slices.Clone(span)
}
