package apiserver

import (
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// This file converts the controller's internal objects to v1beta1 as a
// node sees them. node "" sees everything.

func objectMeta(name string, rev uint64) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name}
	if rev > 0 {
		m.ResourceVersion = strconv.FormatUint(rev, 10)
	}
	return m
}

func convertMember(m *controlplane.GroupMember) v1beta1.GroupMember {
	out := v1beta1.GroupMember{
		Pod:  v1beta1.PodReference{Namespace: m.Pod.Namespace, Name: m.Pod.Name},
		Node: m.Node,
		IPs:  m.IPs,
	}
	if len(m.Ports) > 0 {
		out.Ports = make([]v1beta1.NamedPort, len(m.Ports))
		for i, p := range m.Ports {
			out.Ports[i] = v1beta1.NamedPort{Name: p.Name, Port: p.Port, Protocol: v1beta1.Protocol(p.Protocol)}
		}
	}
	return out
}

// membersFor returns the members node sees: all of them, or for an
// AppliedToGroup watched by a node, those on the node.
func membersFor(members []controlplane.GroupMember, node string) []v1beta1.GroupMember {
	out := make([]v1beta1.GroupMember, 0, len(members))
	for i := range members {
		if node == "" || members[i].Node == node {
			out = append(out, convertMember(&members[i]))
		}
	}
	return out
}

func memberKey(m *controlplane.GroupMember) podKey {
	return podKey{m.Pod.Namespace, m.Pod.Name}
}

type podKey struct{ namespace, name string }

// memberDiff returns the members of cur that are new or changed since old,
// and those of old that cur no longer has, as node sees them.
func memberDiff(old, cur []controlplane.GroupMember, node string) (added, removed []v1beta1.GroupMember) {
	oldByKey := make(map[podKey]*controlplane.GroupMember, len(old))
	for i := range old {
		if node == "" || old[i].Node == node {
			oldByKey[memberKey(&old[i])] = &old[i]
		}
	}
	for i := range cur {
		m := &cur[i]
		if node != "" && m.Node != node {
			continue
		}
		k := memberKey(m)
		if o, ok := oldByKey[k]; ok {
			delete(oldByKey, k)
			if memberEqual(o, m) {
				continue
			}
		}
		added = append(added, convertMember(m))
	}
	for i := range old {
		if o, ok := oldByKey[memberKey(&old[i])]; ok && o == &old[i] {
			removed = append(removed, convertMember(o))
		}
	}
	return added, removed
}

func memberEqual(a, b *controlplane.GroupMember) bool {
	return a.Node == b.Node && slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Ports, b.Ports)
}

func appliedToGroup(g *controlplane.AppliedToGroup, node string, rev uint64) *v1beta1.AppliedToGroup {
	return &v1beta1.AppliedToGroup{
		ObjectMeta: objectMeta(g.Name, rev),
		Members:    membersFor(g.Members, node),
	}
}

func appliedToGroupPatch(old, cur *controlplane.AppliedToGroup, node string, rev uint64) *v1beta1.AppliedToGroupPatch {
	added, removed := memberDiff(old.Members, cur.Members, node)
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	return &v1beta1.AppliedToGroupPatch{ObjectMeta: objectMeta(cur.Name, rev), AddedMembers: added, RemovedMembers: removed}
}

func addressGroup(g *controlplane.AddressGroup, _ string, rev uint64) *v1beta1.AddressGroup {
	return &v1beta1.AddressGroup{ObjectMeta: objectMeta(g.Name, rev), Members: membersFor(g.Members, "")}
}

func addressGroupPatch(old, cur *controlplane.AddressGroup, _ string, rev uint64) *v1beta1.AddressGroupPatch {
	added, removed := memberDiff(old.Members, cur.Members, "")
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	return &v1beta1.AddressGroupPatch{ObjectMeta: objectMeta(cur.Name, rev), AddedMembers: added, RemovedMembers: removed}
}

func convertPeer(p controlplane.NetworkPolicyPeer) v1beta1.NetworkPolicyPeer {
	out := v1beta1.NetworkPolicyPeer{AddressGroups: p.AddressGroups}
	for _, b := range p.IPBlocks {
		out.IPBlocks = append(out.IPBlocks, v1beta1.IPBlock{CIDR: b.CIDR, Except: b.Except})
	}
	return out
}

func networkPolicy(p *controlplane.NetworkPolicy, _ string, rev uint64) *v1beta1.NetworkPolicy {
	out := &v1beta1.NetworkPolicy{
		ObjectMeta:      objectMeta(p.Name, rev),
		AppliedToGroups: p.AppliedToGroups,
	}
	out.Namespace = p.Namespace
	out.UID = p.UID
	for _, d := range p.PolicyTypes {
		out.PolicyTypes = append(out.PolicyTypes, v1beta1.Direction(d))
	}
	out.Rules = make([]v1beta1.NetworkPolicyRule, len(p.Rules))
	for i, r := range p.Rules {
		rule := v1beta1.NetworkPolicyRule{
			Direction: v1beta1.Direction(r.Direction),
			From:      convertPeer(r.From),
			To:        convertPeer(r.To),
		}
		for _, s := range r.Services {
			rule.Services = append(rule.Services, v1beta1.Service{Protocol: v1beta1.Protocol(s.Protocol), Port: s.Port, EndPort: s.EndPort})
		}
		out.Rules[i] = rule
	}
	return out
}
