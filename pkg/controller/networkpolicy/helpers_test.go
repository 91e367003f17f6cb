package networkpolicy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// makePod returns a running pod on node with ip; tweaks adjust it.
func makePod(ns, name, node, ip string, lbls map[string]string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls, UID: types.UID(ns + "-" + name)},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	for _, t := range tweaks {
		t(pod)
	}
	return pod
}

func makeNamespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

// makePolicy returns a policy with an empty podSelector and no rule;
// tweaks adjust it.
func makePolicy(ns, name string, tweaks ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)},
	}
	for _, t := range tweaks {
		t(np)
	}
	return np
}

func withPodSelector(lbls map[string]string) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: lbls} }
}

func withTypes(types ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = types }
}

func withIngress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
	}
}

func withEgress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
	}
}

func podPeer(lbls map[string]string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: lbls}}
}

func nsPeer(nsLbls map[string]string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: nsLbls}}
}

// testController runs a controller against a fake clientset.
type testController struct {
	*Controller
	client *fake.Clientset
}

func startController(t *testing.T, objs ...runtime.Object) *testController {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(factory)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	factory.Start(ctx.Done())
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	tc := &testController{Controller: c, client: client}
	tc.waitIdle(t)
	return tc
}

// waitIdle waits until the controller has been idle, with nothing
// processed, for a few polls in a row.
func (c *testController) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last uint64
	stable := 0
	for stable < 5 {
		require.True(t, time.Now().Before(deadline), "controller not idle")
		time.Sleep(10 * time.Millisecond)
		idle, n := c.idle()
		if idle && n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
	}
}

// eventually waits for check to pass.
func eventually(t *testing.T, check func(c *assert.CollectT)) {
	t.Helper()
	require.EventuallyWithT(t, check, 5*time.Second, 10*time.Millisecond)
}

// memberNames returns the "ns/name" of the members of a group.
func memberNames(members []controlplane.GroupMember) []string {
	out := []string{}
	for _, m := range members {
		out = append(out, m.Pod.Namespace+"/"+m.Pod.Name)
	}
	return out
}

// addressMembers returns the members of the AddressGroup of sel, nil when
// it is not stored.
func (c *testController) addressMembers(sel groupSelector) []string {
	g, ok := c.AddressGroups().Get(groupName(addressKind, sel))
	if !ok {
		return nil
	}
	return memberNames(g.Members)
}

func (c *testController) appliedToMembers(sel groupSelector) []string {
	g, ok := c.AppliedToGroups().Get(groupName(appliedToKind, sel))
	if !ok {
		return nil
	}
	return memberNames(g.Members)
}

func sel(lbls map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: lbls}
}

func ip(i int) string { return fmt.Sprintf("10.0.%d.%d", i/250, i%250+1) }
