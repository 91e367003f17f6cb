package policysync

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// Resource names of the three resources.
const (
	ResourceAppliedToGroups = "appliedtogroups"
	ResourceAddressGroups   = "addressgroups"
	ResourceNetworkPolicies = "networkpolicies"
)

type podKey struct{ namespace, name string }

type members map[podKey]controlplane.GroupMember

// Cache is the node's copy of the controller's objects, kept as the
// internal controlplane types the compiler reads.
//
// Snapshots hand out the same object for a group or policy as long as it
// does not change (and a relist that brings it unchanged keeps it): the
// compiler recompiles only the policies whose objects changed.
type Cache struct {
	mu        sync.Mutex
	appliedTo map[string]members
	addresses map[string]members
	// appliedToObjs and addressObjs are the groups as last handed out,
	// dropped when they change.
	appliedToObjs map[string]*controlplane.AppliedToGroup
	addressObjs   map[string]*controlplane.AddressGroup
	policies      map[string]*controlplane.NetworkPolicy // namespace/name
	listed        map[string]bool
	// changed is signalled (without blocking) after every change;
	// changedSince is when the oldest change not yet taken arrived.
	changed      chan struct{}
	changedSince time.Time
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		appliedTo:     map[string]members{},
		addresses:     map[string]members{},
		appliedToObjs: map[string]*controlplane.AppliedToGroup{},
		addressObjs:   map[string]*controlplane.AddressGroup{},
		policies:      map[string]*controlplane.NetworkPolicy{},
		listed:        map[string]bool{},
		changed:       make(chan struct{}, 1),
	}
}

// Changed is signalled after changes; one signal may stand for several.
func (c *Cache) Changed() <-chan struct{} { return c.changed }

// notify records a change; c.mu is held.
func (c *Cache) notify() {
	if c.changedSince.IsZero() {
		c.changedSince = time.Now()
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Synced reports whether every resource has been listed at least once.
func (c *Cache) Synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listed[ResourceAppliedToGroups] && c.listed[ResourceAddressGroups] && c.listed[ResourceNetworkPolicies]
}

func convertMember(m *v1beta1.GroupMember) controlplane.GroupMember {
	out := controlplane.GroupMember{
		Pod:  controlplane.PodReference{Namespace: m.Pod.Namespace, Name: m.Pod.Name},
		Node: m.Node,
		IPs:  m.IPs,
	}
	for _, p := range m.Ports {
		out.Ports = append(out.Ports, controlplane.NamedPort{Name: p.Name, Port: p.Port, Protocol: controlplane.Protocol(p.Protocol)})
	}
	return out
}

func sameMember(a, b controlplane.GroupMember) bool {
	return a.Pod == b.Pod && a.Node == b.Node && slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Ports, b.Ports)
}

func memberSet(ms []v1beta1.GroupMember) members {
	out := make(members, len(ms))
	for i := range ms {
		out[podKey{ms[i].Pod.Namespace, ms[i].Pod.Name}] = convertMember(&ms[i])
	}
	return out
}

func patch(set members, added, removed []v1beta1.GroupMember) members {
	if set == nil {
		set = members{}
	}
	for i := range removed {
		delete(set, podKey{removed[i].Pod.Namespace, removed[i].Pod.Name})
	}
	for i := range added {
		set[podKey{added[i].Pod.Namespace, added[i].Pod.Name}] = convertMember(&added[i])
	}
	return set
}

func convertPeer(p v1beta1.NetworkPolicyPeer) controlplane.NetworkPolicyPeer {
	out := controlplane.NetworkPolicyPeer{AddressGroups: p.AddressGroups}
	for _, b := range p.IPBlocks {
		out.IPBlocks = append(out.IPBlocks, controlplane.IPBlock{CIDR: b.CIDR, Except: b.Except})
	}
	return out
}

func convertPolicy(p *v1beta1.NetworkPolicy) *controlplane.NetworkPolicy {
	out := &controlplane.NetworkPolicy{
		UID: p.UID, Name: p.Name, Namespace: p.Namespace,
		AppliedToGroups: p.AppliedToGroups,
	}
	for _, d := range p.PolicyTypes {
		out.PolicyTypes = append(out.PolicyTypes, controlplane.Direction(d))
	}
	for _, r := range p.Rules {
		rule := controlplane.NetworkPolicyRule{
			Direction: controlplane.Direction(r.Direction),
			From:      convertPeer(r.From),
			To:        convertPeer(r.To),
		}
		for _, s := range r.Services {
			rule.Services = append(rule.Services, controlplane.Service{Protocol: controlplane.Protocol(s.Protocol), Port: s.Port, EndPort: s.EndPort})
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

func policyKey(namespace, name string) string { return namespace + "/" + name }

// relistGroups returns the member sets of a list of n groups (item(i)
// is the i-th group's name and members) that replaces old, and drops
// from objs the handed-out objects of the groups that changed or went.
func relistGroups[G any](old map[string]members, objs map[string]G, n int, item func(int) (string, []v1beta1.GroupMember)) map[string]members {
	sets := make(map[string]members, n)
	for i := range n {
		name, ms := item(i)
		set := memberSet(ms)
		sets[name] = set
		if !maps.EqualFunc(set, old[name], sameMember) {
			delete(objs, name)
		}
	}
	for name := range objs {
		if _, ok := sets[name]; !ok {
			delete(objs, name)
		}
	}
	return sets
}

// Replace sets the objects of a resource to those of a list.
func (c *Cache) Replace(resource string, list any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch l := list.(type) {
	case *v1beta1.AppliedToGroupList:
		c.appliedTo = relistGroups(c.appliedTo, c.appliedToObjs, len(l.Items), func(i int) (string, []v1beta1.GroupMember) {
			return l.Items[i].Name, l.Items[i].Members
		})
	case *v1beta1.AddressGroupList:
		c.addresses = relistGroups(c.addresses, c.addressObjs, len(l.Items), func(i int) (string, []v1beta1.GroupMember) {
			return l.Items[i].Name, l.Items[i].Members
		})
	case *v1beta1.NetworkPolicyList:
		old := c.policies
		c.policies = make(map[string]*controlplane.NetworkPolicy, len(l.Items))
		for i := range l.Items {
			p := &l.Items[i]
			key := policyKey(p.Namespace, p.Name)
			np := convertPolicy(p)
			if prev := old[key]; prev != nil && equality.Semantic.DeepEqual(prev, np) {
				np = prev
			}
			c.policies[key] = np
		}
	}
	c.listed[resource] = true
	c.notify()
}

// Apply applies one watch event. It returns false for an object it does
// not know, which the caller treats as a protocol error.
func (c *Cache) Apply(t watch.EventType, obj any) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	deleted := t == watch.Deleted
	switch o := obj.(type) {
	case *v1beta1.AppliedToGroup:
		delete(c.appliedToObjs, o.Name)
		if deleted {
			delete(c.appliedTo, o.Name)
		} else {
			c.appliedTo[o.Name] = memberSet(o.Members)
		}
	case *v1beta1.AppliedToGroupPatch:
		delete(c.appliedToObjs, o.Name)
		c.appliedTo[o.Name] = patch(c.appliedTo[o.Name], o.AddedMembers, o.RemovedMembers)
	case *v1beta1.AddressGroup:
		delete(c.addressObjs, o.Name)
		if deleted {
			delete(c.addresses, o.Name)
		} else {
			c.addresses[o.Name] = memberSet(o.Members)
		}
	case *v1beta1.AddressGroupPatch:
		delete(c.addressObjs, o.Name)
		c.addresses[o.Name] = patch(c.addresses[o.Name], o.AddedMembers, o.RemovedMembers)
	case *v1beta1.NetworkPolicy:
		if deleted {
			delete(c.policies, policyKey(o.Namespace, o.Name))
		} else {
			c.policies[policyKey(o.Namespace, o.Name)] = convertPolicy(o)
		}
	default:
		return false
	}
	c.notify()
	return true
}

func groupOf(name string, ms members) (out []controlplane.GroupMember) {
	out = make([]controlplane.GroupMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pod.Namespace != out[j].Pod.Namespace {
			return out[i].Pod.Namespace < out[j].Pod.Namespace
		}
		return out[i].Pod.Name < out[j].Pod.Name
	})
	return out
}

// TakeChangedSince returns when the oldest change since the last call
// arrived (zero if none did) and forgets it: call it before Snapshot, so
// that a change made in between is both in the snapshot and counted for
// the next one.
func (c *Cache) TakeChangedSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	since := c.changedSince
	c.changedSince = time.Time{}
	return since
}

// Snapshot returns the policies and the groups as the compiler reads
// them. The result shares nothing mutable with the cache: its objects are
// never modified, a change replaces them.
func (c *Cache) Snapshot() (policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup, addresses map[string]*controlplane.AddressGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	policies = make([]*controlplane.NetworkPolicy, 0, len(c.policies))
	for _, p := range c.policies {
		policies = append(policies, p)
	}
	appliedTo = snapshotGroups(c.appliedTo, c.appliedToObjs, func(name string, ms []controlplane.GroupMember) *controlplane.AppliedToGroup {
		return &controlplane.AppliedToGroup{Name: name, Members: ms}
	})
	addresses = snapshotGroups(c.addresses, c.addressObjs, func(name string, ms []controlplane.GroupMember) *controlplane.AddressGroup {
		return &controlplane.AddressGroup{Name: name, Members: ms}
	})
	return policies, appliedTo, addresses
}

// snapshotGroups returns the group object of each member set: the one
// handed out before (in objs) unless it changed since, else a new one.
func snapshotGroups[G comparable](sets map[string]members, objs map[string]G, build func(string, []controlplane.GroupMember) G) map[string]G {
	out := make(map[string]G, len(sets))
	var none G
	for name, ms := range sets {
		g := objs[name]
		if g == none {
			g = build(name, groupOf(name, ms))
			objs[name] = g
		}
		out[name] = g
	}
	return out
}
