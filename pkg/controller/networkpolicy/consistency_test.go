package networkpolicy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// TestIncrementalMatchesFresh applies random changes to pods, namespaces
// and policies, then checks that the controller that followed them holds
// exactly what a controller started on the final state computes. The
// sizes make groups, namespaces and selector indexes cross from their
// small forms (slices) to their large ones (maps, label indexes) and
// back.
func TestIncrementalMatchesFresh(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			testIncremental(t, seed)
		})
	}
}

func testIncremental(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	ctx := context.Background()
	namespaces := []string{"a", "b", "c"}
	apps := []string{"web", "db", "cache"}
	envs := []string{"prod", "dev"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	podLabels := func() map[string]string {
		l := map[string]string{"app": pick(apps)}
		if rng.IntN(2) == 0 {
			l["tier"] = pick([]string{"front", "back"})
		}
		return l
	}
	nsLabels := func() map[string]string { return map[string]string{"env": pick(envs)} }
	peer := func() networkingv1.NetworkPolicyPeer {
		switch rng.IntN(6) {
		case 4:
			return podPeer(map[string]string{"tier": pick([]string{"front", "back"}), "app": pick(apps)})
		case 0:
			return nsPeer(map[string]string{"env": pick(envs)})
		case 1:
			return networkingv1.NetworkPolicyPeer{
				NamespaceSelector: sel(map[string]string{"env": pick(envs)}),
				PodSelector:       sel(map[string]string{"app": pick(apps)}),
			}
		case 2:
			return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{pick(apps), pick(apps)}}}}}
		default:
			return podPeer(map[string]string{"app": pick(apps)})
		}
	}
	policy := func(ns, name string) *networkingv1.NetworkPolicy {
		var podSel map[string]string
		switch rng.IntN(4) {
		case 0:
		case 1:
			podSel = map[string]string{"tier": pick([]string{"front", "back"})}
		default:
			podSel = map[string]string{"app": pick(apps)}
		}
		tweaks := []func(*networkingv1.NetworkPolicy){withPodSelector(podSel)}
		for range rng.IntN(3) {
			tweaks = append(tweaks, withIngress([]networkingv1.NetworkPolicyPeer{peer()}))
		}
		if rng.IntN(2) == 0 {
			tweaks = append(tweaks, withEgress([]networkingv1.NetworkPolicyPeer{peer(), peer()}))
		}
		return makePolicy(ns, name, tweaks...)
	}
	pod := func(ns, name string) *corev1.Pod {
		p := makePod(ns, name, fmt.Sprint("n", rng.IntN(6)), fmt.Sprintf("10.1.%d.%d", rng.IntN(250), rng.IntN(250)), podLabels())
		if rng.IntN(10) == 0 {
			p.Status.PodIP = ""
		}
		return p
	}

	var objs []runtime.Object
	for _, ns := range namespaces {
		objs = append(objs, makeNamespace(ns, nsLabels()))
		for i := range 30 {
			objs = append(objs, pod(ns, fmt.Sprint("p", i)))
		}
		for i := range 12 {
			objs = append(objs, policy(ns, fmt.Sprint("np", i)))
		}
	}
	tc := startController(t, objs...)
	client := tc.client

	for range 300 {
		ns := pick(namespaces)
		var err error
		switch op := rng.IntN(10); {
		case op < 5: // pod create, update or delete
			p := pod(ns, fmt.Sprint("p", rng.IntN(40)))
			if rng.IntN(4) == 0 {
				err = client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
			} else if _, err = client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
				_, err = client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			}
		case op < 6: // namespace relabel
			_, err = client.CoreV1().Namespaces().Update(ctx, makeNamespace(ns, nsLabels()), metav1.UpdateOptions{})
		default: // policy create, update or delete
			np := policy(ns, fmt.Sprint("np", rng.IntN(16)))
			if rng.IntN(4) == 0 {
				err = client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, np.Name, metav1.DeleteOptions{})
			} else if _, err = client.NetworkingV1().NetworkPolicies(ns).Update(ctx, np, metav1.UpdateOptions{}); err != nil {
				_, err = client.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{})
			}
		}
		_ = err // deleting a missing object fails, which is fine
	}

	// The final state, as a fresh controller sees it.
	var final []runtime.Object
	nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for i := range nss.Items {
		final = append(final, &nss.Items[i])
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for i := range pods.Items {
		final = append(final, &pods.Items[i])
	}
	nps, err := client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for i := range nps.Items {
		final = append(final, &nps.Items[i])
	}
	fresh := startController(t, final...)

	eventually(t, func(c *assert.CollectT) {
		assert.Equal(c, snapshot(fresh.Controller), snapshot(tc.Controller))
	})
	tc.waitIdle(t)
	assert.Equal(t, snapshot(fresh.Controller), snapshot(tc.Controller))
	// Per node too, as agents see them.
	for n := range 7 {
		node := fmt.Sprint("n", n)
		assert.Equal(t, fresh.NetworkPolicies().ListForNode(node), tc.NetworkPolicies().ListForNode(node), node)
		assert.Equal(t, fresh.AppliedToGroups().ListForNode(node), tc.AppliedToGroups().ListForNode(node), node)
		assert.Equal(t, fresh.AddressGroups().ListForNode(node), tc.AddressGroups().ListForNode(node), node)
	}
}

type storeSnapshot struct {
	atgs []*controlplane.AppliedToGroup
	ags  []*controlplane.AddressGroup
	nps  []*controlplane.NetworkPolicy
}

func snapshot(c *Controller) storeSnapshot {
	return storeSnapshot{must(c.AppliedToGroups().List()), must(c.AddressGroups().List()), must(c.NetworkPolicies().List())}
}
