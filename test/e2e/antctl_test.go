package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAntctl asks antctl about a pod isolated by a NetworkPolicy: the
// agent of its node shows its interface, its flows by pod, by policy and
// by table with the tables' names, and its own state; the controller's
// view shows the policy and the controller's health.
func TestAntctl(t *testing.T) {
	l := antreaLab
	const ns = "antctl"
	const other = "antctl-other"
	createNamespace(t, l, ns)
	createNamespace(t, l, other)
	c := ctx(t, 2*time.Minute)
	createPods(t, l, c, servingPod(ns, "web", "node-1"), servingPod(ns, "client", "node-1"), servingPod(ns, "remote", "node-2"),
		servingPod(other, "outsider", "node-1"))
	var ip string
	for _, p := range waitPods(t, l, ns, "", time.Minute, allRunningReady(3)) {
		if p.Name == "web" {
			ip = p.Status.PodIP
		}
	}
	waitPods(t, l, other, "", time.Minute, allRunningReady(1))
	_, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web-only-from-same-ns", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pod": "web"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	antctl := func(args ...string) string {
		t.Helper()
		return l.mustRun(t, append([]string{"antctl"}, args...)...)
	}
	out := antctl("--node", "node-1", "--", "get", "podinterface", "-n", ns)
	assert.Regexp(t, `antctl\s+web\s+web-[0-9a-f]+\s+`+strings.ReplaceAll(ip, ".", `\.`)+`\s`, out)

	out = antctl("--node", "node-1", "--", "get", "ovsflows", "-p", ns+"/web")
	for _, table := range []string{"10 SpoofGuard", "20 ARPResponder", "70 L3Forwarding", "80 L2ForwardingCalc"} {
		assert.Contains(t, out, table, "the pod's flows name their tables")
	}
	assert.Contains(t, out, ip)

	require.Eventually(t, func() bool {
		out, _, code := l.Run("antctl", "--node", "node-1", "--", "get", "ovsflows", "--policy", ns+"/web-only-from-same-ns")
		return code == 0 && strings.Contains(out, "90 IngressRule") && strings.Contains(out, "conj")
	}, 30*time.Second, 300*time.Millisecond, "the policy's rule flows, once realized on node-1")
	out = antctl("--node", "node-1", "--", "get", "ovsflows", "-p", ns+"/web", "-T", "IngressDefaultRule")
	assert.Contains(t, out, "100 IngressDefaultRule", "the pod is isolated")
	assert.NotContains(t, out, "10 SpoofGuard", "one table only")

	out = antctl("--node", "node-1", "--", "get", "agentinfo")
	assert.Regexp(t, `READY\s+yes`, out)
	assert.Regexp(t, `NODE\s+node-1`, out)
	assert.Regexp(t, `DATAPATH\s+netdev`, out)
	assert.Regexp(t, `OVS VERSION\s+\d+\.\d+`, out)

	out = antctl("--", "get", "networkpolicy")
	assert.Contains(t, out, ns, "the controller's internal policy, with its namespace")
	out = antctl("--", "get", "controllerinfo")
	assert.Regexp(t, `API\s+v1beta1.controlplane.antrea.io \(available: yes\)`, out)
	assert.Regexp(t, `POD\s+antrea-controller-\S+ on node-\d, ready true`, out)

	// trace-packet: allowed by the policy's rule, dropped by the isolation,
	// and across nodes into the tunnel.
	out = antctl("--node", "node-1", "--", "trace-packet", "-S", ns+"/client", "-D", ns+"/web")
	t.Logf("trace allowed:\n%s", out)
	assert.Contains(t, out, "result: delivered to pod antctl/web")
	assert.Contains(t, out, "why: allowed by NetworkPolicy antctl/web-only-from-same-ns, ingress rule 0")
	assert.Regexp(t, `10 SpoofGuard\s+pod\s`, out)
	out = antctl("--node", "node-1", "--", "trace-packet", "-S", other+"/outsider", "-D", ns+"/web")
	t.Logf("trace dropped:\n%s", out)
	assert.Contains(t, out, "result: dropped in table 100 IngressDefaultRule")
	assert.Contains(t, out, "why: dropped: antctl/web is isolated for ingress by NetworkPolicy antctl/web-only-from-same-ns, and no rule of them allows this packet")
	out = antctl("--node", "node-1", "--", "trace-packet", "-S", ns+"/client", "-D", ns+"/remote", "-p", "udp", "--dport", "53")
	t.Logf("trace to node-2:\n%s", out)
	assert.Contains(t, out, "result: sent into the tunnel to node 172.18.0.12")

	out = antctl("--node", "node-1", "--", "version")
	assert.Regexp(t, `antctl version: \S+\nagent version: \S+`, out)

	_, errOut, code := l.Run("antctl", "--node", "node-1", "--", "get", "ovsflows", "-p", ns+"/nope")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "pod antctl/nope on this node: not found")
}
