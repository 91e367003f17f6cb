package e2e

import (
	"context"
	"fmt"
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

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/test/netpol"
)

// tracerProber decides every sample with ofproto/trace.
type tracerProber struct{ c *labCluster }

func (p tracerProber) Probe(ctx context.Context, from, to netpol.PodID, ip string, proto corev1.Protocol, port int) (bool, error) {
	return p.c.Trace(ctx, from, to, ip, proto, port)
}

// TestNetworkPolicyDifferential applies random NetworkPolicy sets (seeded,
// reproducible: rerun a failing seed with the same number) to the model,
// and compares the verdict of the installed flows, read with ofproto/trace
// on the source and destination nodes, with the verdict of test/netpol's
// independent evaluator for sampled connections.
func TestNetworkPolicyDifferential(t *testing.T) {
	l := antreaLab
	m := netpol.NewModel(netpol.Env{Prefix: "np-"})
	cl := setupNetpolModel(t, l, m)
	opts := netpol.Options{Workers: 16, Attempts: 3, RetryDelay: time.Second}
	for seed := uint64(1); seed <= 10; seed++ {
		s := netpol.RandomScenario(m, seed, 6, 100)
		t.Run(s.Name, func(t *testing.T) {
			require.NoError(t, netpol.RunScenario(ctx(t, 3*time.Minute), t, m, cl, tracerProber{cl}, s, opts))
		})
	}
}

func tcpPort(n int32) []networkingv1.NetworkPolicyPort {
	tcp := corev1.ProtocolTCP
	return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(n))}}
}

func podSel(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

// aFromB is the model with one policy: x/a (node-1) accepts TCP 80 only
// from x/b (node-2); x/c (node-3) is denied.
type aFromB struct {
	cl       *labCluster
	c        context.Context
	x        string
	a, b, cc netpol.PodID
	aAddr    string
	probe    func(from netpol.PodID) bool
}

// isolateAFromB applies that policy, waits until x/c is denied, and
// removes the policies when the test ends.
func isolateAFromB(t *testing.T, l *Lab) aFromB {
	m := netpol.NewModel(netpol.Env{Prefix: "np-"})
	cl := setupNetpolModel(t, l, m)
	c := ctx(t, 3*time.Minute)
	t.Cleanup(func() { _ = netpol.Cleanup(context.Background(), m, cl) })
	x := m.NS("x")
	require.NoError(t, cl.ApplyPolicy(c, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "a-from-b", Namespace: x},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *podSel("pod", "a"),
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: podSel("pod", "b")}}, Ports: tcpPort(80)}},
		},
	}))
	require.NoError(t, cl.WaitRealized(c))
	f := aFromB{cl: cl, c: c, x: x, a: m.Pod("x", "a"), b: m.Pod("x", "b"), cc: m.Pod("x", "c")}
	f.aAddr = cl.pods[f.a].Status.PodIP + ":80"
	f.probe = func(from netpol.PodID) bool { return l.connected(x, from.Name, f.aAddr) }
	require.Eventually(t, func() bool { return !f.probe(f.cc) }, 10*time.Second, 200*time.Millisecond, "x/c is denied")
	return f
}

// TestNetworkPolicyControllerRestart stops antrea-controller while
// traffic runs: policy stays enforced on every node (allowed connections
// continue, denied ones stay denied) and agents resync when it is back
// (a change made after its return is realized).
func TestNetworkPolicyControllerRestart(t *testing.T) {
	l := antreaLab
	f := isolateAFromB(t, l)
	cl, c, x, b, cc, aAddr, probe := f.cl, f.c, f.x, f.b, f.cc, f.aAddr, f.probe
	require.True(t, probe(b), "x/b is allowed")

	stream := startHTTPStream(t, layout.PodNetns(l.Layout.Name, cl.pods[b].UID), aAddr)
	l.mustRun(t, "controller", "stop")
	stopped := time.Now()
	// The policy stays enforced without the controller.
	for i := 0; i < 3; i++ {
		assert.False(t, probe(cc), "x/c stays denied while the controller is down")
		assert.True(t, probe(b), "x/b stays allowed while the controller is down")
		time.Sleep(300 * time.Millisecond)
	}
	out := l.mustRun(t, "controller", "start")
	t.Logf("controller down for %s; %s", time.Since(stopped).Round(time.Millisecond), strings.TrimSpace(out))
	require.NoError(t, waitAgentsInSync(ctx(t, time.Minute), l, antreaNodes), "agents reconnect, relist and realize the new controller's state")
	assert.False(t, probe(cc), "x/c is denied after the agents resynced")
	requests, err := stream.finish()
	require.NoError(t, err, "the allowed connection x/b -> x/a never broke")
	assert.Greater(t, requests, 20, "the allowed connection carried traffic throughout")

	// The agents watch the new controller: a change is realized.
	require.NoError(t, cl.DeletePolicy(c, x, "a-from-b"))
	require.Eventually(t, func() bool { return probe(cc) }, 15*time.Second, 200*time.Millisecond,
		"deleting the policy after the restart opens x/a: the agents follow the new controller")
	for _, n := range antreaNodes {
		assert.NotContains(t, agentLog(t, l, n), "Realizing NetworkPolicies failed", "%s realized every state it received", n)
	}
}

// TestNetworkPolicyOddInput applies policies the apiserver accepts but
// that are odd: empty selectors everywhere, an ipBlock 0.0.0.0/0 with many
// excepts, a named port no pod has, and 1000 rules in one policy. Nothing
// fails or crashes, and each does what the spec says.
func TestNetworkPolicyOddInput(t *testing.T) {
	l := antreaLab
	m := netpol.NewModel(netpol.Env{Prefix: "np-"})
	cl := setupNetpolModel(t, l, m)
	c := ctx(t, 3*time.Minute)
	defer func() { _ = netpol.Cleanup(context.Background(), m, cl) }()
	y := m.NS("y")
	containersBefore := antreaContainers(t, l)

	var excepts []string
	for i := 0; i < 200; i++ {
		excepts = append(excepts, fmt.Sprintf("10.%d.%d.0/24", 100+i/50, i%50))
	}
	excepts = append(excepts, cl.pods[m.Pod("z", "c")].Status.PodIP+"/32")
	var many []networkingv1.NetworkPolicyIngressRule
	for i := 0; i < 1000; i++ {
		many = append(many, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("192.168.%d.%d/32", i/250, i%250)}}},
			Ports: tcpPort(int32(2000 + i)),
		})
	}
	policies := []*networkingv1.NetworkPolicy{
		{ // empty selectors: every pod of y accepts from every pod of every namespace
			ObjectMeta: metav1.ObjectMeta{Name: "empty-selectors", Namespace: y},
			Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{}}, {NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{}},
			}}}},
		},
		{ // y/b sends only to 0.0.0.0/0 minus 201 excepts, one of them z/c
			ObjectMeta: metav1.ObjectMeta{Name: "wide-except", Namespace: y},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *podSel("pod", "b"), PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: excepts}}}}},
			},
		},
		{ // a named port no pod has: y/c accepts nothing more than the other policies allow
			ObjectMeta: metav1.ObjectMeta{Name: "no-such-port", Namespace: y},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *podSel("pod", "c"),
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("no-such-port"))}}}},
			},
		},
		{ // 1000 rules on y/a
			ObjectMeta: metav1.ObjectMeta{Name: "thousand-rules", Namespace: y},
			Spec:       networkingv1.NetworkPolicySpec{PodSelector: *podSel("pod", "a"), Ingress: many},
		},
	}
	for _, p := range policies {
		require.NoError(t, cl.ApplyPolicy(c, p), p.Name)
	}
	require.NoError(t, cl.WaitRealized(c))

	to := func(ns, pod string) string { return cl.pods[m.Pod(ns, pod)].Status.PodIP + ":80" }
	require.Eventually(t, func() bool { return !l.connected(y, "b", to("z", "c")) }, 20*time.Second, 300*time.Millisecond,
		"y/b -> z/c: z/c's IP is one of the excepts")
	assert.True(t, l.connected(y, "b", to("z", "a")), "y/b -> z/a: inside 0.0.0.0/0 and no except")
	assert.True(t, l.connected(m.NS("z"), "b", to("y", "c")), "z/b -> y/c: the empty selectors allow every pod in")
	assert.True(t, l.connected(m.NS("x"), "a", to("y", "a")), "x/a -> y/a: the empty selectors allow every pod in")

	flows := l.mustRun(t, "node-exec", "node-1", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=90", "--no-stats")
	n := strings.Count(flows, "\n")
	assert.Greater(t, n, 2000, "node-1 (y/a) has the thousand rules: one peer and one port clause each")

	assert.Equal(t, containersBefore, antreaContainers(t, l), "no antrea container restarted")
	logs := map[string]string{"antrea-controller": controllerLog(t, l)}
	for _, n := range antreaNodes {
		logs[n+" antrea-agent"] = agentLog(t, l, n)
	}
	for name, log := range logs {
		for _, bad := range []string{"panic", "Realizing NetworkPolicies failed", "Observed a panic"} {
			assert.NotContains(t, log, bad, name)
		}
	}
}

// TestNetworkPolicyAgentRestart restarts the agent of the node of an
// isolated pod while an allowed connection runs: the policy is enforced
// while the agent is down and after it is back, the connection survives,
// and the new agent's round replaces the old one's flows (resync without
// removing what is still wanted).
func TestNetworkPolicyAgentRestart(t *testing.T) {
	l := antreaLab
	f := isolateAFromB(t, l)
	cl, a, b, cc, aAddr, probe := f.cl, f.a, f.b, f.cc, f.aAddr, f.probe
	node := cl.pods[a].Spec.NodeName
	before := flowRounds(t, l, node)
	require.Len(t, before, 1)

	stream := startHTTPStream(t, layout.PodNetns(l.Layout.Name, cl.pods[b].UID), aAddr)
	restartAgent(t, l, node, func() {
		assert.False(t, probe(cc), "x/c stays denied while the agent is down")
		assert.True(t, probe(b), "x/b stays allowed while the agent is down")
	})
	waitOldRoundsSwept(t, l, node, before, "the new agent's round replaced the old one's flows")
	flows := l.mustRun(t, "node-exec", node, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=90", "--no-stats")
	assert.Contains(t, flows, "conj_id=", "the rule is installed by the new agent")
	assert.False(t, probe(cc), "x/c is denied after the restart")
	assert.True(t, probe(b), "x/b is allowed after the restart")
	requests, err := stream.finish()
	require.NoError(t, err, "the allowed connection x/b -> x/a never broke")
	assert.Greater(t, requests, 20)
}

// TestNetworkPolicyNewPodHeld creates a pod that a policy selects while
// the controller is down: its port is held (no traffic in or out, not even
// what the policy allows) until the controller is back and the policy is
// realized for it; then the policy applies. Traffic from the pod's own
// node (kubelet probes) is allowed once it is released.
func TestNetworkPolicyNewPodHeld(t *testing.T) {
	l := antreaLab
	const ns = "np-hold"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	mk := func(name, app, node string) {
		pod := labPod(ns, name, node, corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolTCP})
		pod.Labels["app"] = app
		_, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	mk("client", "client", "node-1")
	mk("other", "other", "node-3")
	waitPods(t, l, ns, "app in (client,other)", time.Minute, allRunningReady(2))
	_, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "held-from-client", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *podSel("app", "held"),
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: podSel("app", "client")}}, Ports: tcpPort(80)}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	served := func() bool {
		_, _, code := l.Run("kubectl", "--", "get", "networkpolicies.controlplane.antrea.io", "-n", ns, "held-from-client")
		return code == 0
	}
	require.Eventually(t, served, 20*time.Second, 200*time.Millisecond, "the controller serves the policy")
	// The namespace goes asynchronously: remove the policy now, so that
	// no later test sees its flows.
	defer func() {
		_ = l.Client.NetworkingV1().NetworkPolicies(ns).Delete(context.Background(), "held-from-client", metav1.DeleteOptions{})
		assert.Eventually(t, func() bool { return !served() }, 20*time.Second, 200*time.Millisecond, "the policy is gone")
		time.Sleep(500 * time.Millisecond)
	}()

	l.mustRun(t, "controller", "stop")
	restarted := false
	defer func() {
		if !restarted {
			_, _, _ = l.Run("controller", "start")
		}
	}()
	mk("held", "held", "node-2")
	held := waitPods(t, l, ns, "app=held", time.Minute, allRunningReady(1))[0]
	addr := held.Status.PodIP + ":80"
	port := strings.TrimSpace(l.mustRun(t, "node-exec", "node-2", "--", "ovs-vsctl", "--bare", "--columns=ofport", "find", "Interface",
		"external_ids:antrea/pod-name=held", "external_ids:antrea/pod-namespace="+ns))
	holdFlows := func() string {
		out := l.mustRun(t, "node-exec", "node-2", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "--no-stats")
		var hold []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "priority=250") && (strings.Contains(line, "in_port="+port+" ") || strings.Contains(line, fmt.Sprintf("reg1=0x%x ", mustAtoi(t, port)))) {
				hold = append(hold, strings.TrimSpace(line))
			}
		}
		return strings.Join(hold, "\n")
	}
	h := holdFlows()
	assert.Contains(t, h, "table=10", "the held pod's IP packets are dropped in SpoofGuard:\n%s", h)
	assert.Contains(t, h, "table=110", "packets to the held pod are dropped in Output:\n%s", h)
	assert.False(t, l.connected(ns, "client", addr), "client -> held: held, although the policy allows it")
	assert.False(t, l.connected(ns, "held", podIPOf(l, ns, "other")+":80"), "held -> other: held")

	l.mustRun(t, "controller", "start")
	restarted = true
	require.Eventually(t, func() bool { return holdFlows() == "" }, 20*time.Second, 200*time.Millisecond, "the hold is released once the policy is realized")
	assert.True(t, l.connected(ns, "client", addr), "client -> held: allowed by the policy")
	assert.False(t, l.connected(ns, "other", addr), "other -> held: denied by the policy")
	out := l.mustRun(t, "node-exec", "node-2", "--", "curl", "-s", "-m", "3", held.Status.PodIP+"/")
	assert.NotEmpty(t, out, "the node itself (kubelet probes) reaches the isolated pod through the gateway")
}

// podIPOf returns the IP of pod ns/name.
func podIPOf(l *Lab, ns, name string) string {
	p, err := l.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return p.Status.PodIP
}
