package networkpolicy

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// world is a small cluster: namespaces prod (env=prod, team=a), dev
// (env=dev, team=b) and bare (no labels), with pods of app web/db/none.
func world() []runtime.Object {
	prod := map[string]string{"env": "prod", "team": "a"}
	dev := map[string]string{"env": "dev", "team": "b"}
	return []runtime.Object{
		makeNamespace("prod", prod), makeNamespace("dev", dev), makeNamespace("bare", nil),
		makePod("prod", "web1", "n1", ip(1), map[string]string{"app": "web", "tier": "front"}),
		makePod("prod", "db1", "n2", ip(2), map[string]string{"app": "db"}),
		makePod("prod", "plain", "n3", ip(3), nil),
		makePod("dev", "web2", "n1", ip(4), map[string]string{"app": "web"}),
		makePod("dev", "db2", "n4", ip(5), map[string]string{"app": "db", "tier": "back"}),
		makePod("bare", "web3", "n5", ip(6), map[string]string{"app": "web"}),
		// Not eligible: no node, no IP, terminated.
		makePod("prod", "pending", "", "", map[string]string{"app": "web"}),
		makePod("prod", "noip", "n1", "", map[string]string{"app": "web"}),
		makePod("prod", "done", "n1", ip(7), map[string]string{"app": "web"},
			func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		makePod("prod", "failed", "n1", ip(8), map[string]string{"app": "web"},
			func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
	}
}

func TestPeerSelectorMembers(t *testing.T) {
	expr := func(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
	tests := []struct {
		name string
		peer networkingv1.NetworkPolicyPeer
		want []string
	}{
		{"podSelector alone: policy's namespace", podPeer(map[string]string{"app": "web"}), []string{"prod/web1"}},
		{"empty podSelector alone: all pods of policy's namespace",
			networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}}, []string{"prod/db1", "prod/plain", "prod/web1"}},
		{"namespaceSelector alone: all pods of selected namespaces", nsPeer(map[string]string{"env": "dev"}),
			[]string{"dev/db2", "dev/web2"}},
		{"empty namespaceSelector: all namespaces", networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}},
			[]string{"bare/web3", "dev/db2", "dev/web2", "prod/db1", "prod/plain", "prod/web1"}},
		{"both: matching pods of selected namespaces", networkingv1.NetworkPolicyPeer{
			NamespaceSelector: expr("team", metav1.LabelSelectorOpIn, "a", "b"), PodSelector: sel(map[string]string{"app": "web"})},
			[]string{"dev/web2", "prod/web1"}},
		{"empty podSelector with namespaceSelector", networkingv1.NetworkPolicyPeer{
			NamespaceSelector: sel(map[string]string{"env": "prod"}), PodSelector: &metav1.LabelSelector{}},
			[]string{"prod/db1", "prod/plain", "prod/web1"}},
		{"matchExpressions In", networkingv1.NetworkPolicyPeer{PodSelector: expr("app", metav1.LabelSelectorOpIn, "web", "db")},
			[]string{"prod/db1", "prod/web1"}},
		{"matchExpressions NotIn", networkingv1.NetworkPolicyPeer{PodSelector: expr("app", metav1.LabelSelectorOpNotIn, "web")},
			[]string{"prod/db1", "prod/plain"}},
		{"matchExpressions Exists", networkingv1.NetworkPolicyPeer{PodSelector: expr("tier", metav1.LabelSelectorOpExists)},
			[]string{"prod/web1"}},
		{"matchExpressions DoesNotExist", networkingv1.NetworkPolicyPeer{PodSelector: expr("app", metav1.LabelSelectorOpDoesNotExist)},
			[]string{"prod/plain"}},
		{"namespace DoesNotExist with pod Exists", networkingv1.NetworkPolicyPeer{
			NamespaceSelector: expr("env", metav1.LabelSelectorOpDoesNotExist), PodSelector: expr("app", metav1.LabelSelectorOpExists)},
			[]string{"bare/web3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := makePolicy("prod", "p", withIngress([]networkingv1.NetworkPolicyPeer{tt.peer}))
			c := startController(t, append(world(), np)...)
			assert.Equal(t, tt.want, c.addressMembers(peerSelector("prod", &tt.peer)))
		})
	}
}

func TestPolicyObjects(t *testing.T) {
	np := makePolicy("prod", "p",
		withPodSelector(map[string]string{"app": "web"}),
		withTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
		withEgress([]networkingv1.NetworkPolicyPeer{podPeer(map[string]string{"app": "db"})}))
	objs := append(world(), np,
		makePod("prod", "web9", "n7", ip(9), map[string]string{"app": "web"}, func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080}, {ContainerPort: 9090}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}}
		}))
	c := startController(t, objs...)

	atgSel := namespacedSelector("prod", sel(map[string]string{"app": "web"}))
	atg, ok := c.AppliedToGroups().Get(groupName(appliedToKind, atgSel))
	require.True(t, ok)
	assert.Equal(t, []controlplane.GroupMember{
		{Pod: controlplane.PodReference{Namespace: "prod", Name: "web1"}, Node: "n1", IPs: []string{ip(1)}},
		{Pod: controlplane.PodReference{Namespace: "prod", Name: "web9"}, Node: "n7", IPs: []string{ip(9)}, Ports: []controlplane.NamedPort{
			{Name: "http", Port: 8080, Protocol: controlplane.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: controlplane.ProtocolUDP}}},
	}, atg.Members)
	assert.Equal(t, []string{"n1", "n7"}, atg.Span)

	pol, ok := c.NetworkPolicies().Get("prod/p")
	require.True(t, ok)
	agName := groupName(addressKind, namespacedSelector("prod", sel(map[string]string{"app": "db"})))
	assert.Equal(t, &controlplane.NetworkPolicy{
		UID: np.UID, Name: "p", Namespace: "prod",
		Rules: []controlplane.NetworkPolicyRule{{
			Direction: controlplane.DirectionOut, To: controlplane.NetworkPolicyPeer{AddressGroups: []string{agName}},
		}},
		AppliedToGroups: []string{atg.Name},
		PolicyTypes:     []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut},
		Span:            []string{"n1", "n7"},
	}, pol)
	ag, ok := c.AddressGroups().Get(agName)
	require.True(t, ok)
	assert.Equal(t, []string{"prod/db1"}, memberNames(ag.Members))
	assert.Equal(t, []string{"n1", "n7"}, ag.Span, "an AddressGroup spans the nodes of its policies, not its members")
}

func TestIncrementalUpdates(t *testing.T) {
	ctx := context.Background()
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	webSel := namespacedSelector("prod", sel(web))
	dbSel := namespacedSelector("prod", sel(db))
	devSel := peerSelector("prod", &networkingv1.NetworkPolicyPeer{NamespaceSelector: sel(map[string]string{"env": "dev"})})
	policy := func(tweaks ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
		return makePolicy("prod", "p", append([]func(*networkingv1.NetworkPolicy){withPodSelector(web)}, tweaks...)...)
	}
	fromDB := withIngress([]networkingv1.NetworkPolicyPeer{podPeer(db)})
	fromDev := withIngress([]networkingv1.NetworkPolicyPeer{nsPeer(map[string]string{"env": "dev"})})

	tests := []struct {
		name   string
		policy *networkingv1.NetworkPolicy
		change func(t *testing.T, c *testController)
		check  func(c *assert.CollectT, tc *testController)
	}{{
		name:   "pod label change moves it between groups",
		policy: policy(fromDB),
		change: func(t *testing.T, tc *testController) {
			p := makePod("prod", "web1", "n1", ip(1), db)
			_, err := tc.client.CoreV1().Pods("prod").Update(ctx, p, metav1.UpdateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Equal(c, []string{}, tc.appliedToMembers(webSel))
			assert.Equal(c, []string{"prod/db1", "prod/web1"}, tc.addressMembers(dbSel))
		},
	}, {
		name:   "pod IP change updates its member",
		policy: policy(),
		change: func(t *testing.T, tc *testController) {
			p := makePod("prod", "web1", "n1", "10.9.9.9", web)
			_, err := tc.client.CoreV1().Pods("prod").Update(ctx, p, metav1.UpdateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			g, ok := tc.AppliedToGroups().Get(groupName(appliedToKind, webSel))
			if assert.True(c, ok) && assert.Len(c, g.Members, 1) {
				assert.Equal(c, []string{"10.9.9.9"}, g.Members[0].IPs)
			}
		},
	}, {
		name:   "pod deleted",
		policy: policy(fromDB),
		change: func(t *testing.T, tc *testController) {
			require.NoError(t, tc.client.CoreV1().Pods("prod").Delete(ctx, "db1", metav1.DeleteOptions{}))
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Equal(c, []string{}, tc.addressMembers(dbSel))
		},
	}, {
		name:   "pod terminates",
		policy: policy(),
		change: func(t *testing.T, tc *testController) {
			p := makePod("prod", "web1", "n1", ip(1), web, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
			_, err := tc.client.CoreV1().Pods("prod").Update(ctx, p, metav1.UpdateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Equal(c, []string{}, tc.appliedToMembers(webSel))
		},
	}, {
		name:   "namespace label change",
		policy: policy(fromDev),
		change: func(t *testing.T, tc *testController) {
			_, err := tc.client.CoreV1().Namespaces().Update(ctx, makeNamespace("dev", map[string]string{"env": "staging"}), metav1.UpdateOptions{})
			require.NoError(t, err)
			_, err = tc.client.CoreV1().Namespaces().Update(ctx, makeNamespace("bare", map[string]string{"env": "dev"}), metav1.UpdateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Equal(c, []string{"bare/web3"}, tc.addressMembers(devSel))
		},
	}, {
		name:   "policy update drops its unused groups",
		policy: policy(fromDB),
		change: func(t *testing.T, tc *testController) {
			np := makePolicy("prod", "p", withPodSelector(db), fromDev)
			_, err := tc.client.NetworkingV1().NetworkPolicies("prod").Update(ctx, np, metav1.UpdateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Nil(c, tc.appliedToMembers(webSel))
			assert.Nil(c, tc.addressMembers(dbSel))
			assert.Equal(c, []string{"prod/db1"}, tc.appliedToMembers(dbSel))
			assert.Equal(c, []string{"dev/db2", "dev/web2"}, tc.addressMembers(devSel))
			pol, ok := tc.NetworkPolicies().Get("prod/p")
			if assert.True(c, ok) {
				assert.Equal(c, []string{groupName(appliedToKind, dbSel)}, pol.AppliedToGroups)
				assert.Equal(c, []string{"n2"}, pol.Span)
			}
		},
	}, {
		name:   "policy delete removes its groups",
		policy: policy(fromDB),
		change: func(t *testing.T, tc *testController) {
			require.NoError(t, tc.client.NetworkingV1().NetworkPolicies("prod").Delete(ctx, "p", metav1.DeleteOptions{}))
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Empty(c, must(tc.NetworkPolicies().List()))
			assert.Empty(c, must(tc.AppliedToGroups().List()))
			assert.Empty(c, must(tc.AddressGroups().List()))
		},
	}, {
		name:   "new pod joins groups",
		policy: policy(fromDB),
		change: func(t *testing.T, tc *testController) {
			_, err := tc.client.CoreV1().Pods("prod").Create(ctx, makePod("prod", "db3", "n9", ip(30), db), metav1.CreateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Equal(c, []string{"prod/db1", "prod/db3"}, tc.addressMembers(dbSel))
		},
	}, {
		name:   "new pod in a selected namespace joins",
		policy: policy(fromDev),
		change: func(t *testing.T, tc *testController) {
			_, err := tc.client.CoreV1().Pods("dev").Create(ctx, makePod("dev", "x", "n9", ip(31), nil), metav1.CreateOptions{})
			require.NoError(t, err)
		},
		check: func(c *assert.CollectT, tc *testController) {
			assert.Equal(c, []string{"dev/db2", "dev/web2", "dev/x"}, tc.addressMembers(devSel))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := startController(t, append(world(), tt.policy)...)
			tt.change(t, tc)
			eventually(t, func(c *assert.CollectT) { tt.check(c, tc) })
		})
	}
}

// TestPodChangeTouchesOnlyItsGroups checks that a pod's change republishes
// only the groups that hold it, not those of other namespaces or labels.
func TestPodChangeTouchesOnlyItsGroups(t *testing.T) {
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	objs := world()
	for _, ns := range []string{"prod", "dev"} {
		objs = append(objs,
			makePolicy(ns, "web", withPodSelector(web), withIngress([]networkingv1.NetworkPolicyPeer{podPeer(db)})),
			makePolicy(ns, "db", withPodSelector(db), withIngress([]networkingv1.NetworkPolicyPeer{podPeer(web)})))
	}
	tc := startController(t, objs...)
	var changed []string
	_, _, stop1 := tc.appliedToGroups.Watch("", func(e Event[controlplane.AppliedToGroup]) { changed = append(changed, e.Object.Name) })
	defer stop1()
	_, _, stop2 := tc.addressGroups.Watch("", func(e Event[controlplane.AddressGroup]) { changed = append(changed, e.Object.Name) })
	defer stop2()
	_, _, stop3 := tc.networkPolicies.Watch("", func(e Event[controlplane.NetworkPolicy]) { changed = append(changed, policyKey(e.Object)) })
	defer stop3()

	// db1 (node n2) gets a new IP: the prod db AppliedToGroup and AddressGroup.
	p := makePod("prod", "db1", "n2", "10.7.7.7", db)
	_, err := tc.client.CoreV1().Pods("prod").Update(context.Background(), p, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{"prod/db1"}, tc.addressMembers(namespacedSelector("prod", sel(db))))
		g, _ := tc.AddressGroups().Get(groupName(addressKind, namespacedSelector("prod", sel(db))))
		assert.Equal(c, []string{"10.7.7.7"}, g.Members[0].IPs)
	})
	tc.waitIdle(t)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	assert.ElementsMatch(t, []string{
		groupName(appliedToKind, namespacedSelector("prod", sel(db))),
		groupName(addressKind, namespacedSelector("prod", sel(db))),
	}, changed)
}

func must[T any](items []*T, _ uint64) []*T { return items }

func TestSharedGroups(t *testing.T) {
	ctx := context.Background()
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	p1 := makePolicy("prod", "p1", withPodSelector(web), withIngress([]networkingv1.NetworkPolicyPeer{podPeer(db)}))
	p2 := makePolicy("prod", "p2", withPodSelector(web), withIngress([]networkingv1.NetworkPolicyPeer{podPeer(db)}))
	tc := startController(t, append(world(), p1, p2)...)
	assert.Len(t, must(tc.AppliedToGroups().List()), 1, "identical selectors share one AppliedToGroup")
	assert.Len(t, must(tc.AddressGroups().List()), 1, "identical peers share one AddressGroup")

	require.NoError(t, tc.client.NetworkingV1().NetworkPolicies("prod").Delete(ctx, "p1", metav1.DeleteOptions{}))
	eventually(t, func(c *assert.CollectT) {
		_, ok := tc.NetworkPolicies().Get("prod/p1")
		assert.False(c, ok)
	})
	tc.waitIdle(t)
	assert.Equal(t, []string{"prod/web1"}, tc.appliedToMembers(namespacedSelector("prod", sel(web))), "still used by p2")
	assert.Equal(t, []string{"prod/db1"}, tc.addressMembers(namespacedSelector("prod", sel(db))), "still used by p2")
}

func TestSpans(t *testing.T) {
	ctx := context.Background()
	a := map[string]string{"app": "a"}
	b := map[string]string{"app": "b"}
	db := map[string]string{"app": "db"}
	fromDB := withIngress([]networkingv1.NetworkPolicyPeer{podPeer(db)})
	objs := []runtime.Object{
		makeNamespace("ns", nil),
		makePod("ns", "a1", "nodeA", ip(1), a),
		makePod("ns", "b1", "nodeB", ip(2), b),
		makePod("ns", "db1", "nodeC", ip(3), db),
		makePolicy("ns", "pa", withPodSelector(a), fromDB),
		makePolicy("ns", "pb", withPodSelector(b), fromDB),
		makePolicy("ns", "pc", withPodSelector(map[string]string{"app": "none"}), fromDB),
	}
	tc := startController(t, objs...)
	agName := groupName(addressKind, namespacedSelector("ns", sel(db)))
	ag, ok := tc.AddressGroups().Get(agName)
	require.True(t, ok)
	assert.Equal(t, []string{"nodeA", "nodeB"}, ag.Span, "an AddressGroup used on nodes A and B spans both, not its members' node")

	pa, _ := tc.NetworkPolicies().Get("ns/pa")
	assert.Equal(t, []string{"nodeA"}, pa.Span)
	pc, _ := tc.NetworkPolicies().Get("ns/pc")
	assert.Empty(t, pc.Span, "a policy selecting no pod reaches no node")

	// Per node: each node gets its own policy, its AppliedToGroup and the
	// shared AddressGroup; nodeC (a peer only) gets nothing.
	names := func(ps []*controlplane.NetworkPolicy) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	assert.Equal(t, []string{"pa"}, names(tc.NetworkPolicies().ListForNode("nodeA")))
	assert.Equal(t, []string{"pb"}, names(tc.NetworkPolicies().ListForNode("nodeB")))
	assert.Empty(t, tc.NetworkPolicies().ListForNode("nodeC"))
	assert.Len(t, tc.AddressGroups().ListForNode("nodeA"), 1)
	assert.Empty(t, tc.AddressGroups().ListForNode("nodeC"))
	atgs := tc.AppliedToGroups().ListForNode("nodeA")
	require.Len(t, atgs, 1)
	assert.Equal(t, []string{"ns/a1"}, memberNames(atgs[0].Members))

	// A pod of pc appears on nodeD: pc and the AddressGroup reach it; pb's
	// pod goes: pb and the AddressGroup leave nodeB.
	_, err := tc.client.CoreV1().Pods("ns").Create(ctx, makePod("ns", "none1", "nodeD", ip(4), map[string]string{"app": "none"}), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, tc.client.CoreV1().Pods("ns").Delete(ctx, "b1", metav1.DeleteOptions{}))
	eventually(t, func(c *assert.CollectT) {
		ag, _ := tc.AddressGroups().Get(agName)
		assert.Equal(c, []string{"nodeA", "nodeD"}, ag.Span)
		pc, _ := tc.NetworkPolicies().Get("ns/pc")
		assert.Equal(c, []string{"nodeD"}, pc.Span)
		assert.Empty(c, tc.NetworkPolicies().ListForNode("nodeB"))
	})
}

func TestControllerMetrics(t *testing.T) {
	c, err := New(informers.NewSharedInformerFactory(fake.NewClientset(), 0))
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c.Collector()))
	c.appliedToGroups.Watch("node-1", func(Event[controlplane.AppliedToGroup]) {})
	c.metrics.observeFlush(time.Now().Add(-time.Millisecond))
	var fams []*dto.MetricFamily
	fams, err = reg.Gather()
	require.NoError(t, err)
	got := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		got[f.GetName()] = f
	}
	for _, name := range []string{"antrea_controller_queue_depth", "antrea_controller_computed_objects_total", "antrea_controller_objects",
		"antrea_controller_watchers", "antrea_controller_computation_duration_seconds"} {
		assert.Contains(t, got, name)
	}
	assert.Len(t, got["antrea_controller_objects"].GetMetric(), 3, "one per kind")
	w := got["antrea_controller_watchers"].GetMetric()
	require.Len(t, w, 1)
	assert.Equal(t, 1.0, w[0].GetGauge().GetValue())
	assert.Equal(t, uint64(1), got["antrea_controller_computation_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
}
