package apiserver

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/controller/stats"
)

// summaryStorage takes the agents' NodeStatsSummaries: create only; each
// is added to the aggregator's totals and not stored.
type summaryStorage struct {
	agg *stats.Aggregator
}

var (
	_ rest.Storage              = (*summaryStorage)(nil)
	_ rest.Scoper               = (*summaryStorage)(nil)
	_ rest.Creater              = (*summaryStorage)(nil)
	_ rest.SingularNameProvider = (*summaryStorage)(nil)
)

func (s *summaryStorage) New() runtime.Object     { return &cpv1beta1.NodeStatsSummary{} }
func (s *summaryStorage) Destroy()                {}
func (s *summaryStorage) NamespaceScoped() bool   { return false }
func (s *summaryStorage) GetSingularName() string { return "nodestatssummary" }

// Create adds a summary to the totals and returns it.
func (s *summaryStorage) Create(_ context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	summary, ok := obj.(*cpv1beta1.NodeStatsSummary)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a NodeStatsSummary: %T", obj))
	}
	if summary.Name == "" {
		return nil, apierrors.NewBadRequest("metadata.name: the node's name is required")
	}
	for i, p := range summary.NetworkPolicies {
		if p.NetworkPolicy.UID == "" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("networkPolicies[%d].networkPolicy.uid: required", i))
		}
	}
	if validate != nil {
		if err := validate(context.Background(), obj); err != nil {
			return nil, err
		}
	}
	s.agg.Add(summary)
	return summary, nil
}

// policyStatsStorage serves NetworkPolicyStats read-only: get and list.
type policyStatsStorage struct {
	agg *stats.Aggregator
}

var (
	_ rest.Storage              = (*policyStatsStorage)(nil)
	_ rest.Scoper               = (*policyStatsStorage)(nil)
	_ rest.Getter               = (*policyStatsStorage)(nil)
	_ rest.Lister               = (*policyStatsStorage)(nil)
	_ rest.SingularNameProvider = (*policyStatsStorage)(nil)
)

func (s *policyStatsStorage) New() runtime.Object     { return &statsv1alpha1.NetworkPolicyStats{} }
func (s *policyStatsStorage) NewList() runtime.Object { return &statsv1alpha1.NetworkPolicyStatsList{} }
func (s *policyStatsStorage) Destroy()                {}
func (s *policyStatsStorage) NamespaceScoped() bool   { return true }
func (s *policyStatsStorage) GetSingularName() string { return "networkpolicystats" }

// Get returns the stats of one policy.
func (s *policyStatsStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns, _ := genericapirequest.NamespaceFrom(ctx)
	st, ok := s.agg.Get(ns, name)
	if !ok {
		return nil, apierrors.NewNotFound(statsv1alpha1.Resource("networkpolicystats"), name)
	}
	return &st, nil
}

// List returns the stats of the policies of the request's namespace, or
// of all. Selectors are not supported.
func (s *policyStatsStorage) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	if opts != nil && ((opts.LabelSelector != nil && !opts.LabelSelector.Empty()) || (opts.FieldSelector != nil && !opts.FieldSelector.Empty())) {
		return nil, apierrors.NewBadRequest("networkpolicystats: label and field selectors are not supported")
	}
	ns, _ := genericapirequest.NamespaceFrom(ctx)
	return &statsv1alpha1.NetworkPolicyStatsList{Items: s.agg.List(ns)}, nil
}

// ConvertToTable renders the stats for kubectl get.
func (s *policyStatsStorage) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the NetworkPolicy."},
		{Name: "Sessions", Type: "integer", Description: "Connections its rules allowed."},
		{Name: "Packets", Type: "integer", Description: "Packets of the connections its rules allowed."},
		{Name: "Bytes", Type: "integer", Description: "Bytes of the connections its rules allowed."},
		{Name: "Dropped-Sessions", Type: "integer", Description: "New connections its isolation dropped."},
		{Name: "Dropped-Packets", Type: "integer", Description: "Packets its isolation dropped."},
	}}
	var items []statsv1alpha1.NetworkPolicyStats
	switch o := obj.(type) {
	case *statsv1alpha1.NetworkPolicyStatsList:
		items = o.Items
	case *statsv1alpha1.NetworkPolicyStats:
		items = []statsv1alpha1.NetworkPolicyStats{*o}
	default:
		return nil, fmt.Errorf("render networkpolicystats: unexpected %T", obj)
	}
	for i := range items {
		st := &items[i]
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{st.Name, st.Allowed.Sessions, st.Allowed.Packets, st.Allowed.Bytes, st.Dropped.Sessions, st.Dropped.Packets},
			Object: runtime.RawExtension{Object: st},
		})
	}
	return t, nil
}
