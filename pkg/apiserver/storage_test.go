package apiserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/controller/networkpolicy"
)

func member(ns, name, node, ip string) controlplane.GroupMember {
	return controlplane.GroupMember{Pod: controlplane.PodReference{Namespace: ns, Name: name}, Node: node, IPs: []string{ip}}
}

func init() { processEpoch = 0 } // resourceVersions equal the store's revisions

func newGroupStore() *networkpolicy.MemoryStore[controlplane.AppliedToGroup] {
	return networkpolicy.NewMemoryStore(
		func(g *controlplane.AppliedToGroup) string { return g.Name },
		func(g *controlplane.AppliedToGroup) []string { return g.Span })
}

func nodeSelector(node string) *metainternalversion.ListOptions {
	return &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector(v1beta1.NodeNameField, node)}
}

func TestAppliedToGroupListNarrowsToNode(t *testing.T) {
	store := newGroupStore()
	store.Update(&controlplane.AppliedToGroup{Name: "g1", Span: []string{"n1", "n2"},
		Members: []controlplane.GroupMember{member("x", "a", "n1", "10.0.1.2"), member("x", "b", "n2", "10.0.2.2")}})
	store.Update(&controlplane.AppliedToGroup{Name: "g2", Span: []string{"n2"},
		Members: []controlplane.GroupMember{member("y", "c", "n2", "10.0.2.3")}})
	s := newAppliedToGroupStorage(store)
	defer s.Destroy()

	tests := []struct {
		name    string
		opts    *metainternalversion.ListOptions
		want    map[string][]string // group -> member pod names
		wantRev string
	}{
		{"everything", nil, map[string][]string{"g1": {"a", "b"}, "g2": {"c"}}, "2"},
		{"n1", nodeSelector("n1"), map[string][]string{"g1": {"a"}}, "2"},
		{"n2", nodeSelector("n2"), map[string][]string{"g1": {"b"}, "g2": {"c"}}, "2"},
		{"unknown node", nodeSelector("n9"), map[string][]string{}, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := s.List(context.Background(), tt.opts)
			require.NoError(t, err)
			list := obj.(*v1beta1.AppliedToGroupList)
			assert.Equal(t, tt.wantRev, list.ResourceVersion)
			got := map[string][]string{}
			for _, g := range list.Items {
				names := []string{}
				for _, m := range g.Members {
					names = append(names, m.Pod.Name)
				}
				got[g.Name] = names
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestListRejectsUnsupportedSelectors(t *testing.T) {
	s := newAppliedToGroupStorage(newGroupStore())
	defer s.Destroy()
	_, err := s.List(context.Background(), &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.foo", "x")})
	require.Error(t, err)
	assert.True(t, apierrors.IsBadRequest(err))
	assert.Contains(t, err.Error(), "spec.foo")
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		require.True(t, ok, "watch closed")
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

func TestWatchSendsPatchesAsTheNodeSeesThem(t *testing.T) {
	store := newGroupStore()
	store.Update(&controlplane.AppliedToGroup{Name: "g1", Span: []string{"n1"},
		Members: []controlplane.GroupMember{member("x", "a", "n1", "10.0.1.2")}})
	s := newAppliedToGroupStorage(store)
	defer s.Destroy()
	w, err := s.Watch(context.Background(), nodeSelector("n1"))
	require.NoError(t, err)
	defer w.Stop()

	e := next(t, w)
	assert.Equal(t, watch.Added, e.Type)
	assert.Len(t, e.Object.(*v1beta1.AppliedToGroup).Members, 1)

	// A member on another node: the group now spans n2 too, but n1's
	// view is unchanged, so n1 gets nothing for it. Then a pod on n1.
	store.Update(&controlplane.AppliedToGroup{Name: "g1", Span: []string{"n1", "n2"},
		Members: []controlplane.GroupMember{member("x", "a", "n1", "10.0.1.2"), member("x", "b", "n2", "10.0.2.2")}})
	store.Update(&controlplane.AppliedToGroup{Name: "g1", Span: []string{"n1", "n2"},
		Members: []controlplane.GroupMember{member("x", "b", "n2", "10.0.2.2"), member("x", "d", "n1", "10.0.1.4")}})
	e = next(t, w)
	require.Equal(t, watch.Modified, e.Type)
	patch := e.Object.(*v1beta1.AppliedToGroupPatch)
	assert.Equal(t, "3", patch.ResourceVersion)
	require.Len(t, patch.AddedMembers, 1)
	assert.Equal(t, "d", patch.AddedMembers[0].Pod.Name)
	require.Len(t, patch.RemovedMembers, 1)
	assert.Equal(t, "a", patch.RemovedMembers[0].Pod.Name)

	// Leaving n1's span is a deletion for n1.
	store.Update(&controlplane.AppliedToGroup{Name: "g1", Span: []string{"n2"},
		Members: []controlplane.GroupMember{member("x", "b", "n2", "10.0.2.2")}})
	e = next(t, w)
	assert.Equal(t, watch.Deleted, e.Type)
	assert.Equal(t, "g1", e.Object.(*v1beta1.AppliedToGroup).Name)
}

func TestWatchResumesFromResourceVersion(t *testing.T) {
	store := newGroupStore()
	s := newAppliedToGroupStorage(store)
	defer s.Destroy()
	store.Update(&controlplane.AppliedToGroup{Name: "g1", Span: []string{"n1"}, Members: []controlplane.GroupMember{member("x", "a", "n1", "10.0.1.2")}})
	obj, err := s.List(context.Background(), nodeSelector("n1"))
	require.NoError(t, err)
	rv := obj.(*v1beta1.AppliedToGroupList).ResourceVersion
	// Changes between the list and the watch are replayed, not lost.
	store.Update(&controlplane.AppliedToGroup{Name: "g2", Span: []string{"n1"}, Members: []controlplane.GroupMember{member("x", "b", "n1", "10.0.1.3")}})
	store.Delete("g1")

	opts := nodeSelector("n1")
	opts.ResourceVersion = rv
	w, err := s.Watch(context.Background(), opts)
	require.NoError(t, err)
	defer w.Stop()
	e := next(t, w)
	assert.Equal(t, watch.Added, e.Type)
	assert.Equal(t, "g2", e.Object.(*v1beta1.AppliedToGroup).Name)
	e = next(t, w)
	assert.Equal(t, watch.Deleted, e.Type)
	assert.Equal(t, "g1", e.Object.(*v1beta1.AppliedToGroup).Name)
}

func TestWatchFromExpiredResourceVersionIsGone(t *testing.T) {
	store := newGroupStore()
	s := newStorage(newAppliedToGroupStorage(store).kind, store)
	s.history.stop()
	s.history = newHistory[controlplane.AppliedToGroup](store, 2)
	defer s.Destroy()
	for _, name := range []string{"g1", "g2", "g3", "g4"} {
		store.Update(&controlplane.AppliedToGroup{Name: name})
	}
	opts := &metainternalversion.ListOptions{ResourceVersion: "1"}
	_, err := s.Watch(context.Background(), opts)
	require.Error(t, err)
	assert.True(t, apierrors.IsResourceExpired(err) || apierrors.IsGone(err), "got %v", err)

	opts.ResourceVersion = "2" // changes 3 and 4 are still held
	w, err := s.Watch(context.Background(), opts)
	require.NoError(t, err)
	defer w.Stop()
	assert.Equal(t, "g3", next(t, w).Object.(*v1beta1.AppliedToGroup).Name)
	assert.Equal(t, "g4", next(t, w).Object.(*v1beta1.AppliedToGroup).Name)
}

func TestWatchFromAnotherRunIsGone(t *testing.T) {
	store := newGroupStore()
	s := newAppliedToGroupStorage(store)
	s.epoch = 1000
	defer s.Destroy()
	store.Update(&controlplane.AppliedToGroup{Name: "g1"})
	for _, rv := range []string{"999", "1002"} { // before this run; ahead of it
		_, err := s.Watch(context.Background(), &metainternalversion.ListOptions{ResourceVersion: rv})
		require.Error(t, err, rv)
		assert.True(t, apierrors.IsResourceExpired(err) || apierrors.IsGone(err), "rv %s: %v", rv, err)
	}
	w, err := s.Watch(context.Background(), &metainternalversion.ListOptions{ResourceVersion: "1000"})
	require.NoError(t, err)
	defer w.Stop()
	e := next(t, w)
	assert.Equal(t, "1001", e.Object.(*v1beta1.AppliedToGroup).ResourceVersion)
}

func TestNetworkPolicyGetIsNamespaced(t *testing.T) {
	store := networkpolicy.NewMemoryStore(
		func(p *controlplane.NetworkPolicy) string { return p.Namespace + "/" + p.Name },
		func(p *controlplane.NetworkPolicy) []string { return p.Span })
	store.Update(&controlplane.NetworkPolicy{Name: "web", Namespace: "x", AppliedToGroups: []string{"g1"}, Span: []string{"n1"},
		Rules: []controlplane.NetworkPolicyRule{{Direction: controlplane.DirectionIn}}})
	s := newNetworkPolicyStorage(store)
	defer s.Destroy()
	ctx := genericapirequest.WithNamespace(context.Background(), "x")
	obj, err := s.Get(ctx, "web", nil)
	require.NoError(t, err)
	p := obj.(*v1beta1.NetworkPolicy)
	assert.Equal(t, "x", p.Namespace)
	assert.Equal(t, []string{"g1"}, p.AppliedToGroups)
	_, err = s.Get(genericapirequest.WithNamespace(context.Background(), "y"), "web", nil)
	assert.True(t, apierrors.IsNotFound(err))
}
