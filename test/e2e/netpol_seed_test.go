package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// connected reports whether a TCP connection from pod ns/from to addr
// succeeds, through antrea-lab probe.
func (l *Lab) connected(ns, from, addr string) bool {
	_, _, code := l.Run("probe", "--from", ns+"/"+from, "--to", addr, "--timeout", "500ms")
	return code == 0
}

// TestNetworkPolicySeedExample is the seed's walk-through: pods app=web
// accept TCP 8080 only from pods app=app. The web pod's node shows the
// rule as a conjunction in table 90, the controller's objects are listed
// by kubectl, and deleting the policy opens the web pod again.
func TestNetworkPolicySeedExample(t *testing.T) {
	l := antreaLab
	const ns = "np-seed"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	pods := []struct{ name, app, node string }{
		{"web", "web", "node-2"}, {"app", "app", "node-1"}, {"app-local", "app", "node-2"}, {"other", "other", "node-3"},
	}
	for _, p := range pods {
		pod := labPod(ns, p.name, p.node, corev1.ContainerPort{ContainerPort: 8080, Protocol: corev1.ProtocolTCP})
		pod.Labels["app"] = p.app
		_, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	ready := waitPods(t, l, ns, "", 2*time.Minute, allRunningReady(len(pods)))
	ips := map[string]string{}
	for _, p := range ready {
		ips[p.Name] = p.Status.PodIP
	}
	web := ips["web"] + ":8080"
	require.True(t, l.connected(ns, "other", web), "before the policy, other reaches web")

	tcp := corev1.ProtocolTCP
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web-allow-app", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(8080))}},
			}},
		},
	}
	_, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, policy, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !l.connected(ns, "other", web) }, 20*time.Second, 200*time.Millisecond,
		"other (app=other, node-3) is denied once the policy is realized")
	assert.True(t, l.connected(ns, "app", web), "app (node-1) reaches web across nodes")
	assert.True(t, l.connected(ns, "app-local", web), "app-local reaches web on the same node")
	assert.False(t, l.connected(ns, "app", ips["web"]+":8081"), "app is allowed port 8080 only")
	assert.True(t, l.connected(ns, "web", ips["other"]+":8080"), "web's egress is not isolated")

	// The seed's shape in table 90 on node-2: the peers, the applied-to
	// port and the port are clauses of one conjunction, its conj_id flow
	// allows, and established traffic bypasses.
	webPort := strings.TrimSpace(l.mustRun(t, "node-exec", "node-2", "--", "ovs-vsctl", "--bare", "--columns=ofport", "find", "Interface",
		"external_ids:antrea/pod-name=web", "external_ids:antrea/pod-namespace="+ns))
	flows := l.mustRun(t, "node-exec", "node-2", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=90", "--no-stats")
	m := regexp.MustCompile(`nw_src=` + regexp.QuoteMeta(ips["app"]) + ` actions=.*conjunction\((\d+),1/3\)`).FindStringSubmatch(flows)
	require.NotNil(t, m, "a peer clause for app's IP in table 90:\n%s", flows)
	id := m[1]
	for _, want := range []string{
		`priority=210,ct_state=-new\+est,ip actions=resubmit\(,105\)`,
		`nw_src=` + regexp.QuoteMeta(ips["app-local"]) + ` actions=.*conjunction\(` + id + `,1/3\)`,
		fmt.Sprintf(`reg1=0x%x actions=.*conjunction\(%s,2/3\)`, mustAtoi(t, webPort), id),
		`tcp,tp_dst=8080 actions=.*conjunction\(` + id + `,3/3\)`,
		// The allow flow names its rule in reg6, for the connection's
		// label; the rule's other established packets are counted apart.
		fmt.Sprintf(`priority=90,conj_id=%s,ip actions=set_field:0x%x->reg6,resubmit\(,105\)`, id, mustAtoi(t, id)),
		fmt.Sprintf(`priority=211,ct_state=-new\+est,ct_label=0x%x00000000/0xffffffff00000000,ip actions=resubmit\(,105\)`, mustAtoi(t, id)),
	} {
		assert.Regexp(t, want, flows, "table 90 on node-2")
	}
	assert.NotContains(t, flows, ips["other"], "no flow for a pod the policy does not allow")
	isolation := l.mustRun(t, "node-exec", "node-2", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=100", "--no-stats")
	assert.Regexp(t, fmt.Sprintf(`priority=100,ip,reg1=0x%x actions=drop`, mustAtoi(t, webPort)), isolation, "web is isolated in table 100")
	assert.Regexp(t, fmt.Sprintf(`priority=101,ip,reg0=0x40000/0x40000,reg1=0x%x actions=CONTROLLER:65535`, mustAtoi(t, webPort)), isolation,
		"the isolation's Traceflow companion")
	// Only node-2 runs an applied-to pod: the other nodes get no rule (no
	// peer clause of this policy; other tests' policies may be there).
	for _, n := range []string{"node-1", "node-3"} {
		other := l.mustRun(t, "node-exec", n, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=90", "--no-stats")
		assert.NotContains(t, other, "nw_src="+ips["app"]+" ", "%s has no applied-to pod, hence no rule", n)
	}

	// kubectl lists the controller's objects, and nodeName narrows them.
	out := l.mustRun(t, "kubectl", "--", "get", "networkpolicies.controlplane.antrea.io", "-n", ns)
	assert.Contains(t, out, "web-allow-app")
	out = l.mustRun(t, "kubectl", "--", "get", "appliedtogroups.controlplane.antrea.io", "--field-selector", "nodeName=node-2", "-o", "yaml")
	assert.Contains(t, out, "name: web")
	out = l.mustRun(t, "kubectl", "--", "get", "appliedtogroups.controlplane.antrea.io", "--field-selector", "nodeName=node-1", "-o", "yaml")
	assert.NotContains(t, out, "namespace: "+ns)

	require.NoError(t, l.Client.NetworkingV1().NetworkPolicies(ns).Delete(c, policy.Name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return l.connected(ns, "other", web) }, 20*time.Second, 200*time.Millisecond,
		"other reaches web again once the policy is deleted")
	flows = l.mustRun(t, "node-exec", "node-2", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=90", "--no-stats")
	assert.NotContains(t, flows, "conj_id", "the rule's flows are gone")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	require.NoError(t, err, "not a number: %q", s)
	return n
}
