package e2e

import (
	"context"
	"encoding/json"
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
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/crdclient"
	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
)

// traceflows runs Traceflows in a lab: create, wait for the end, delete.
type traceflows struct {
	t      *testing.T
	client *crdclient.Traceflows
}

func newTraceflows(t *testing.T, l *Lab) traceflows {
	t.Helper()
	_, cfg, err := controlplane.Client(l.Layout, controlplane.Admin)
	require.NoError(t, err)
	c, err := crdclient.NewTraceflows(cfg)
	require.NoError(t, err)
	return traceflows{t: t, client: c}
}

// run creates a Traceflow from spec and returns it once its phase is
// final (it fails the test if that takes more than the trace's timeout
// and a margin).
func (tfs traceflows) run(spec v1alpha1.TraceflowSpec) *v1alpha1.Traceflow {
	t := tfs.t
	t.Helper()
	c := ctx(t, time.Minute)
	tf, err := tfs.client.Create(c, &v1alpha1.Traceflow{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}, Spec: spec})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tfs.client.Delete(context.Background(), tf.Name) })
	var last *v1alpha1.Traceflow
	err = wait.PollUntilContextTimeout(c, 200*time.Millisecond, spec.TimeoutDuration()+15*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := tfs.client.Get(ctx, tf.Name)
		if err != nil {
			return false, nil
		}
		last = got
		return got.Status.Phase.Terminal(), nil
	})
	require.NoError(t, err, "Traceflow %s did not end: %+v", tf.Name, last)
	js, _ := json.MarshalIndent(last.Status, "", "  ")
	t.Logf("Traceflow %s: %s", last.Name, js)
	return last
}

// runUntil runs Traceflows from spec until ok accepts one (the data path
// converges on a new policy or endpoint asynchronously), and returns it.
func (tfs traceflows) runUntil(spec v1alpha1.TraceflowSpec, what string, ok func(*v1alpha1.Traceflow) bool) *v1alpha1.Traceflow {
	tfs.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		tf := tfs.run(spec)
		if ok(tf) {
			return tf
		}
		if time.Now().After(deadline) {
			tfs.t.Fatalf("no Traceflow showed %s within 45s; the last: %+v", what, tf.Status)
		}
		time.Sleep(time.Second)
	}
}

func lastObservation(tf *v1alpha1.Traceflow) v1alpha1.Observation {
	rs := tf.Status.Results
	if len(rs) == 0 || len(rs[len(rs)-1].Observations) == 0 {
		return v1alpha1.Observation{}
	}
	obs := rs[len(rs)-1].Observations
	return obs[len(obs)-1]
}

func findObservation(r v1alpha1.NodeResult, c v1alpha1.Component) (v1alpha1.Observation, bool) {
	for _, o := range r.Observations {
		if o.Component == c {
			return o, true
		}
	}
	return v1alpha1.Observation{}, false
}

// TestTraceflow injects packets from a pod and checks what every node
// reports: across nodes (sender and receiver, delivered), through a
// ClusterIP (the endpoint chosen), dropped by a NetworkPolicy (named, and
// the rule of the allowed case), antctl traceflow, and bad input failing
// with the field named. The Traceflows leave no flow behind.
func TestTraceflow(t *testing.T) {
	l := antreaLab
	const ns = "traceflow"
	createNamespace(t, l, ns)
	c := ctx(t, 5*time.Minute)
	client, allowed := servingPod(ns, "client", "node-1"), servingPod(ns, "allowed", "node-1")
	createPods(t, l, c, client, allowed, backendPod(ns, "server", "node-2", "web"), backendPod(ns, "server2", "node-3", "web"))
	_, err := l.Client.CoreV1().Services(ns).Create(c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pods := map[string]corev1.Pod{}
	for _, p := range waitPods(t, l, ns, "", 2*time.Minute, allRunningReady(4)) {
		pods[p.Name] = p
	}
	nodeIP := nodeIPs(t, l)
	tfs := newTraceflows(t, l)
	from := func(pod string) v1alpha1.Source { return v1alpha1.Source{Namespace: ns, Pod: pod} }
	toPod := func(pod string) v1alpha1.Destination { return v1alpha1.Destination{Namespace: ns, Pod: pod} }

	t.Run("pod to pod across nodes reports every hop", func(t *testing.T) {
		tf := tfs.run(v1alpha1.TraceflowSpec{Source: from("client"), Destination: toPod("server")})
		require.Equal(t, v1alpha1.PhaseSucceeded, tf.Status.Phase, tf.Status.Reason)
		assert.Equal(t, "node-1", tf.Status.SenderNode)
		assert.True(t, tf.Status.DataplaneTag&3 == 3, "a DSCP pool 2 tag: %d", tf.Status.DataplaneTag)
		require.NotNil(t, tf.Status.Packet)
		assert.Equal(t, pods["client"].Status.PodIP, tf.Status.Packet.SrcIP)
		assert.Equal(t, pods["server"].Status.PodIP, tf.Status.Packet.DstIP)
		require.Len(t, tf.Status.Results, 2)

		sender := tf.Status.Results[0]
		assert.Equal(t, "node-1", sender.Node)
		assert.Equal(t, v1alpha1.RoleSender, sender.Role)
		require.Len(t, sender.Observations, 2)
		assert.Equal(t, v1alpha1.Observation{Component: v1alpha1.ComponentSpoofGuard, ComponentInfo: "SpoofGuard", Action: v1alpha1.ActionForwarded},
			sender.Observations[0])
		assert.Equal(t, v1alpha1.Observation{Component: v1alpha1.ComponentForwarding, ComponentInfo: "L3Forwarding", Action: v1alpha1.ActionForwarded,
			TunnelDstIP: nodeIP["node-2"], TunnelDstNode: "node-2"}, sender.Observations[1])

		receiver := tf.Status.Results[1]
		assert.Equal(t, "node-2", receiver.Node)
		assert.Equal(t, v1alpha1.RoleReceiver, receiver.Role)
		require.Len(t, receiver.Observations, 2)
		assert.Equal(t, v1alpha1.ComponentClassification, receiver.Observations[0].Component)
		assert.Equal(t, v1alpha1.ActionReceived, receiver.Observations[0].Action)
		assert.Contains(t, receiver.Observations[0].Detail, "node-1")
		assert.Equal(t, v1alpha1.Observation{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered,
			Pod: ns + "/server"}, receiver.Observations[1])
	})

	t.Run("pod to pod on one node, ICMP", func(t *testing.T) {
		tf := tfs.run(v1alpha1.TraceflowSpec{Source: from("client"), Destination: toPod("allowed"), Packet: v1alpha1.Packet{Protocol: v1alpha1.ProtocolICMP}})
		require.Equal(t, v1alpha1.PhaseSucceeded, tf.Status.Phase, tf.Status.Reason)
		require.Len(t, tf.Status.Results, 1, "one node only")
		assert.Equal(t, v1alpha1.Observation{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered,
			Pod: ns + "/allowed"}, lastObservation(tf))
	})

	t.Run("through a ClusterIP names the chosen endpoint", func(t *testing.T) {
		endpoints := map[string]string{pods["server"].Status.PodIP: "server", pods["server2"].Status.PodIP: "server2"}
		tf := tfs.runUntil(v1alpha1.TraceflowSpec{Source: from("client"), Destination: v1alpha1.Destination{Namespace: ns, Service: "web"}},
			"the Service balanced", func(tf *v1alpha1.Traceflow) bool { return tf.Status.Phase == v1alpha1.PhaseSucceeded })
		assert.Equal(t, int32(8080), tf.Status.Packet.DstPort, "the Service's port")
		require.Len(t, tf.Status.Results, 2)
		lb, ok := findObservation(tf.Status.Results[0], v1alpha1.ComponentLB)
		require.True(t, ok, "the sender saw the DNAT")
		assert.Equal(t, v1alpha1.ActionForwarded, lb.Action)
		assert.Equal(t, ns+"/web", lb.Service)
		assert.Equal(t, int32(80), lb.TranslatedDstPort, "the target port")
		endpoint, ok := endpoints[lb.TranslatedDstIP]
		require.True(t, ok, "the endpoint %s is one of the Service's", lb.TranslatedDstIP)
		node := pods[endpoint].Spec.NodeName
		fwd, ok := findObservation(tf.Status.Results[0], v1alpha1.ComponentForwarding)
		require.True(t, ok)
		assert.Equal(t, node, fwd.TunnelDstNode, "into the tunnel to the endpoint's node")
		assert.Equal(t, node, tf.Status.Results[1].Node)
		assert.Equal(t, ns+"/"+endpoint, lastObservation(tf).Pod, "delivered to the chosen endpoint")
	})

	t.Run("antctl traceflow", func(t *testing.T) {
		out := l.mustRun(t, "antctl", "--", "traceflow", "-S", ns+"/client", "-D", ns+"/server")
		t.Logf("antctl traceflow:\n%s", out)
		assert.Contains(t, out, "phase: Succeeded")
		assert.Regexp(t, `node-1 \(Sender, [0-9:]+\)\nCOMPONENT\s+TABLE\s+ACTION\s+DETAIL\nSpoofGuard\s+SpoofGuard\s+Forwarded`, out)
		assert.Regexp(t, `Forwarding\s+L3Forwarding\s+Forwarded\s+tunnel to node-2 \(`+strings.ReplaceAll(nodeIP["node-2"], ".", `\.`)+`\)`, out)
		assert.Regexp(t, `node-2 \(Receiver, [0-9:]+\)`, out)
		assert.Contains(t, out, "result: delivered on node-2 (Output): pod "+ns+"/server")

		out = l.mustRun(t, "antctl", "--", "-o", "json", "traceflow", "-S", ns+"/client", "-D", ns+"/web", "--dport", "8080")
		var tf v1alpha1.Traceflow
		require.NoError(t, json.Unmarshal([]byte(out), &tf))
		assert.Equal(t, v1alpha1.PhaseSucceeded, tf.Status.Phase)
		assert.Equal(t, v1alpha1.Destination{Namespace: ns, Service: "web"}, tf.Spec.Destination, "-D names a Service when no pod has that name")

		_, errOut, code := l.Run("antctl", "--", "traceflow", "-S", ns+"/client", "-D", ns+"/nope")
		assert.NotEqual(t, 0, code)
		assert.Contains(t, errOut, "--destination "+ns+"/nope: no pod or Service of that name")
		list, err := tfs.client.List(ctx(t, 10*time.Second), metav1.ListOptions{})
		require.NoError(t, err)
		for _, tf := range list.Items {
			assert.False(t, strings.HasPrefix(tf.Name, "antctl-"), "antctl deletes its Traceflows: %s", tf.Name)
		}
	})

	t.Run("a NetworkPolicy drops it and is named; the allowing rule is named", func(t *testing.T) {
		port := intstr.FromInt32(80)
		policy := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "server-from-allowed", Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pod": "server"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pod": "allowed"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
				}},
			},
		}
		_, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, policy, metav1.CreateOptions{})
		require.NoError(t, err)
		defer func() {
			_ = l.Client.NetworkingV1().NetworkPolicies(ns).Delete(context.Background(), policy.Name, metav1.DeleteOptions{})
		}()

		tf := tfs.runUntil(v1alpha1.TraceflowSpec{Source: from("client"), Destination: toPod("server")}, "the drop",
			func(tf *v1alpha1.Traceflow) bool { return lastObservation(tf).Action == v1alpha1.ActionDropped })
		assert.Equal(t, v1alpha1.PhaseSucceeded, tf.Status.Phase, "a drop is a result")
		require.Len(t, tf.Status.Results, 2)
		assert.Equal(t, "node-2", tf.Status.Results[1].Node)
		drop := lastObservation(tf)
		assert.Equal(t, v1alpha1.ComponentNetworkPolicy, drop.Component)
		assert.Equal(t, "IngressDefaultRule", drop.ComponentInfo)
		assert.Equal(t, []string{ns + "/server-from-allowed"}, drop.IsolatedBy)

		tf = tfs.runUntil(v1alpha1.TraceflowSpec{Source: from("allowed"), Destination: toPod("server")}, "the allowed packet delivered",
			func(tf *v1alpha1.Traceflow) bool { return lastObservation(tf).Action == v1alpha1.ActionDelivered })
		rule, ok := findObservation(tf.Status.Results[1], v1alpha1.ComponentNetworkPolicy)
		require.True(t, ok, "node-2 names the rule that allowed it")
		assert.Equal(t, v1alpha1.Observation{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "IngressRule", Action: v1alpha1.ActionForwarded,
			NetworkPolicy: ns + "/server-from-allowed", NetworkPolicyRule: "ingress rule 0"}, rule)

		out := l.mustRun(t, "antctl", "--", "traceflow", "-S", ns+"/client", "-D", ns+"/server")
		assert.Contains(t, out, "isolated by NetworkPolicy "+ns+"/server-from-allowed")
		assert.Contains(t, out, "result: dropped on node-2 (NetworkPolicy IngressDefaultRule)")
	})

	t.Run("bad input fails naming the field", func(t *testing.T) {
		for _, tc := range []struct {
			spec v1alpha1.TraceflowSpec
			want string
		}{
			{v1alpha1.TraceflowSpec{Source: from("nope"), Destination: toPod("server")}, "source.pod " + ns + "/nope: not found"},
			{v1alpha1.TraceflowSpec{Source: from("client"), Destination: toPod("nope")}, "destination.pod " + ns + "/nope: not found"},
			{v1alpha1.TraceflowSpec{Source: from("client"), Destination: v1alpha1.Destination{Namespace: ns, Service: "nope"}},
				"destination.service " + ns + "/nope: not found"},
		} {
			tf := tfs.run(tc.spec)
			assert.Equal(t, v1alpha1.PhaseFailed, tf.Status.Phase)
			assert.Equal(t, tc.want, tf.Status.Reason)
		}
		for _, tc := range []struct {
			spec v1alpha1.TraceflowSpec
			want string
		}{
			{v1alpha1.TraceflowSpec{Source: from("client"), Destination: v1alpha1.Destination{IP: "10.0.0.300"}}, "spec.destination.ip"},
			{v1alpha1.TraceflowSpec{Source: from("client"), Destination: v1alpha1.Destination{IP: "10.0.0.3"}, Packet: v1alpha1.Packet{Protocol: "SCTP"}},
				"spec.packet.protocol"},
			{v1alpha1.TraceflowSpec{Source: from("client"), Destination: v1alpha1.Destination{IP: "10.0.0.3", Namespace: ns, Pod: "server"}},
				"exactly one of pod, service and ip"},
		} {
			_, err := tfs.client.Create(ctx(t, 10*time.Second), &v1alpha1.Traceflow{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-bad-"}, Spec: tc.spec})
			assert.ErrorContains(t, err, tc.want, "the API server refuses it")
		}
	})

	t.Run("no Traceflow flow is left", func(t *testing.T) {
		for _, node := range antreaNodes {
			assert.Eventually(t, func() bool {
				out := l.mustRun(t, "node-exec", node, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int",
					fmt.Sprintf("cookie=%#x/0xff0000000000", uint64(6)<<40), "--no-stats")
				return !strings.Contains(out, "cookie=")
			}, 30*time.Second, 500*time.Millisecond, "node %s still has receive flows", node)
		}
	})
}
