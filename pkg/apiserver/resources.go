package apiserver

import (
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/controller/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/controller/stats"
)

// Sources are the stores the API serves.
type Sources struct {
	AppliedToGroups networkpolicy.Store[controlplane.AppliedToGroup]
	AddressGroups   networkpolicy.Store[controlplane.AddressGroup]
	NetworkPolicies networkpolicy.Store[controlplane.NetworkPolicy]
	// Stats takes the agents' NodeStatsSummaries and serves the
	// stats.antrea.io NetworkPolicyStats.
	Stats *stats.Aggregator
}

func listRV(rev uint64) metav1.ListMeta {
	return metav1.ListMeta{ResourceVersion: strconv.FormatUint(rev, 10)}
}

func summarize(ss []string, max int) string {
	if len(ss) > max {
		return strings.Join(ss[:max], ",") + fmt.Sprintf(" + %d more", len(ss)-max)
	}
	return strings.Join(ss, ",")
}

func newAppliedToGroupStorage(store networkpolicy.Store[controlplane.AppliedToGroup]) *storage[controlplane.AppliedToGroup] {
	return newStorage(kind[controlplane.AppliedToGroup]{
		resource:  v1beta1.Resource("appliedtogroups"),
		singular:  "appliedtogroup",
		newObj:    func() runtime.Object { return &v1beta1.AppliedToGroup{} },
		newList:   func() runtime.Object { return &v1beta1.AppliedToGroupList{} },
		name:      func(g *controlplane.AppliedToGroup) string { return g.Name },
		namespace: func(*controlplane.AppliedToGroup) string { return "" },
		span:      func(g *controlplane.AppliedToGroup) []string { return g.Span },
		full: func(g *controlplane.AppliedToGroup, node string, rev uint64) runtime.Object {
			return appliedToGroup(g, node, rev)
		},
		patch: func(old, cur *controlplane.AppliedToGroup, node string, rev uint64) runtime.Object {
			if p := appliedToGroupPatch(old, cur, node, rev); p != nil {
				return p
			}
			return nil
		},
		setItems: func(list runtime.Object, items []runtime.Object, rev uint64) {
			l := list.(*v1beta1.AppliedToGroupList)
			l.ListMeta = listRV(rev)
			l.Items = make([]v1beta1.AppliedToGroup, len(items))
			for i, o := range items {
				l.Items[i] = *o.(*v1beta1.AppliedToGroup)
			}
		},
		columns: []metav1.TableColumnDefinition{
			{Name: "Members", Type: "integer", Description: "Pods in the group (on the requested node only, with a nodeName selector)."},
		},
		table: func(obj runtime.Object) []any {
			return []any{int64(len(obj.(*v1beta1.AppliedToGroup).Members))}
		},
	}, store)
}

func newAddressGroupStorage(store networkpolicy.Store[controlplane.AddressGroup]) *storage[controlplane.AddressGroup] {
	return newStorage(kind[controlplane.AddressGroup]{
		resource:  v1beta1.Resource("addressgroups"),
		singular:  "addressgroup",
		newObj:    func() runtime.Object { return &v1beta1.AddressGroup{} },
		newList:   func() runtime.Object { return &v1beta1.AddressGroupList{} },
		name:      func(g *controlplane.AddressGroup) string { return g.Name },
		namespace: func(*controlplane.AddressGroup) string { return "" },
		span:      func(g *controlplane.AddressGroup) []string { return g.Span },
		full: func(g *controlplane.AddressGroup, node string, rev uint64) runtime.Object {
			return addressGroup(g, node, rev)
		},
		patch: func(old, cur *controlplane.AddressGroup, node string, rev uint64) runtime.Object {
			if p := addressGroupPatch(old, cur, node, rev); p != nil {
				return p
			}
			return nil
		},
		setItems: func(list runtime.Object, items []runtime.Object, rev uint64) {
			l := list.(*v1beta1.AddressGroupList)
			l.ListMeta = listRV(rev)
			l.Items = make([]v1beta1.AddressGroup, len(items))
			for i, o := range items {
				l.Items[i] = *o.(*v1beta1.AddressGroup)
			}
		},
		columns: []metav1.TableColumnDefinition{
			{Name: "Members", Type: "integer", Description: "Pods in the group."},
		},
		table: func(obj runtime.Object) []any {
			return []any{int64(len(obj.(*v1beta1.AddressGroup).Members))}
		},
	}, store)
}

func newNetworkPolicyStorage(store networkpolicy.Store[controlplane.NetworkPolicy]) *storage[controlplane.NetworkPolicy] {
	return newStorage(kind[controlplane.NetworkPolicy]{
		resource:   v1beta1.Resource("networkpolicies"),
		singular:   "networkpolicy",
		namespaced: true,
		newObj:     func() runtime.Object { return &v1beta1.NetworkPolicy{} },
		newList:    func() runtime.Object { return &v1beta1.NetworkPolicyList{} },
		name:       func(p *controlplane.NetworkPolicy) string { return p.Name },
		namespace:  func(p *controlplane.NetworkPolicy) string { return p.Namespace },
		span:       func(p *controlplane.NetworkPolicy) []string { return p.Span },
		full: func(p *controlplane.NetworkPolicy, node string, rev uint64) runtime.Object {
			return networkPolicy(p, node, rev)
		},
		patch: func(_, cur *controlplane.NetworkPolicy, node string, rev uint64) runtime.Object {
			return networkPolicy(cur, node, rev)
		},
		setItems: func(list runtime.Object, items []runtime.Object, rev uint64) {
			l := list.(*v1beta1.NetworkPolicyList)
			l.ListMeta = listRV(rev)
			l.Items = make([]v1beta1.NetworkPolicy, len(items))
			for i, o := range items {
				l.Items[i] = *o.(*v1beta1.NetworkPolicy)
			}
		},
		columns: []metav1.TableColumnDefinition{
			{Name: "Rules", Type: "integer", Description: "Ingress and egress rules."},
			{Name: "Applied-To", Type: "string", Description: "AppliedToGroups of the policy."},
		},
		table: func(obj runtime.Object) []any {
			p := obj.(*v1beta1.NetworkPolicy)
			return []any{int64(len(p.Rules)), summarize(p.AppliedToGroups, 3)}
		},
	}, store)
}
