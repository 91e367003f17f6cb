package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
)

// TestNetworkPolicyStats counts, through the agents' summaries and the
// controller's sums, the connections a policy's rule allowed and those its
// isolation dropped, read back with kubectl and antctl.
func TestNetworkPolicyStats(t *testing.T) {
	l := antreaLab
	const ns = "np-stats"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	pods := []struct{ name, app, node string }{
		{"server", "server", "node-1"}, {"client", "client", "node-2"}, {"other", "other", "node-2"},
	}
	for _, p := range pods {
		pod := labPod(ns, p.name, p.node, corev1.ContainerPort{ContainerPort: 8080, Protocol: corev1.ProtocolTCP})
		pod.Labels["app"] = p.app
		_, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	ready := waitPods(t, l, ns, "", 2*time.Minute, allRunningReady(len(pods)))
	var server string
	for _, p := range ready {
		if p.Name == "server" {
			server = p.Status.PodIP + ":8080"
		}
	}
	tcp := corev1.ProtocolTCP
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "server-allow-client", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(8080))}},
			}},
		},
	}
	_, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, policy, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !l.connected(ns, "other", server) }, 20*time.Second, 200*time.Millisecond,
		"other is denied once the policy is realized")

	// The stats object exists from the start (zero until counted).
	out := l.mustRun(t, "kubectl", "--", "get", "networkpolicystats.stats.antrea.io", "-n", ns)
	assert.Contains(t, out, "server-allow-client")

	const allowed, denied = 5, 3
	for range allowed {
		require.True(t, l.connected(ns, "client", server), "client reaches server")
	}
	for range denied - 1 { // one more was denied above
		require.False(t, l.connected(ns, "other", server))
	}

	var st statsv1alpha1.NetworkPolicyStats
	require.Eventually(t, func() bool {
		raw, _, code := l.Run("kubectl", "--", "get", "networkpolicystats.stats.antrea.io", "-n", ns, policy.Name, "-o", "json")
		if code != 0 || json.Unmarshal([]byte(raw), &st) != nil {
			return false
		}
		return st.Allowed.Sessions >= allowed && st.Dropped.Sessions >= denied
	}, 45*time.Second, time.Second, "the agents' summaries reach the controller (every 10s)")
	require.Len(t, st.Rules, 1)
	assert.Equal(t, "Ingress", st.Rules[0].Direction)
	assert.Equal(t, int32(0), st.Rules[0].Index)
	assert.Equal(t, st.Allowed, st.Rules[0].Allowed)
	// Each connection is its first packet (allowed by the rule) and the
	// rest, counted by the rule's id in the connection's label: the
	// handshake's end and the close at least, both ways.
	assert.GreaterOrEqual(t, st.Allowed.Packets, 3*st.Allowed.Sessions)
	assert.GreaterOrEqual(t, st.Allowed.Bytes, 40*st.Allowed.Packets)
	// A dropped SYN is at least a 40-byte IP packet.
	assert.GreaterOrEqual(t, st.Dropped.Bytes, st.Dropped.Packets*40)
	// The lab's probe does not retry within its timeout, but the client's
	// kernel may resend a SYN: no more drops than tries times two.
	assert.LessOrEqual(t, st.Dropped.Sessions, int64(2*denied))
	assert.LessOrEqual(t, st.Allowed.Sessions, int64(allowed+1), "one session per connection")

	// The node that enforces the policy counts the same in its metrics.
	m := agentMetrics(t, l, "node-1")
	labels := map[string]string{"namespace": ns, "policy": policy.Name}
	assert.GreaterOrEqual(t, counterValue(m, "antrea_agent_networkpolicy_denied_connections_total", labels), float64(denied))
	assert.GreaterOrEqual(t, counterValue(m, "antrea_agent_networkpolicy_allowed_connections_total", labels), float64(allowed))

	// antctl shows the same, from the controller.
	out = l.mustRun(t, "antctl", "--", "get", "networkpolicystats", "-n", ns)
	assert.Regexp(t, `(?m)^`+ns+`\s+server-allow-client\s+\d+`, out)

	// Deleting the policy deletes its stats.
	require.NoError(t, l.Client.NetworkingV1().NetworkPolicies(ns).Delete(c, policy.Name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, _, code := l.Run("kubectl", "--", "get", "networkpolicystats.stats.antrea.io", "-n", ns, policy.Name)
		return code != 0
	}, 20*time.Second, 200*time.Millisecond, "the stats go with the policy")
}
