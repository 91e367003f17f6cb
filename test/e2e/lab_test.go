package e2e

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

// webDeployment is a Deployment of lab pods serving on TCP and UDP 80 with
// an HTTP readiness probe.
func webDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(2)),
					Containers: []corev1.Container{{
						Name:  "web",
						Image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
						Args:  []string{"serve-hostname"},
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP},
							{Name: "udp", ContainerPort: 80, Protocol: corev1.ProtocolUDP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}

// TestDeploymentOnBridgeCNI is the main scenario: 20 pods over both
// nodes, Running with IPs of their node's podCIDR, reachable from pods of
// the same node, listed by EndpointSlices, and gone without a trace after
// the Deployment is deleted.
func TestDeploymentOnBridgeCNI(t *testing.T) {
	l := shared
	const ns, replicas = "bridge-20", 20
	createNamespace(t, l, ns)
	c := ctx(t, 5*time.Minute)
	_, err := l.Client.AppsV1().Deployments(ns).Create(c, webDeployment(ns, "web", replicas), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = l.Client.CoreV1().Services(ns).Create(c, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	start := time.Now()
	pods := waitPods(t, l, ns, "app=web", 3*time.Minute, allRunningReady(replicas))
	t.Logf("%d pods Running and Ready in %.1fs", replicas, time.Since(start).Seconds())

	// Spread over both nodes, each pod's IP inside its node's podCIDR.
	byNode := map[string][]corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	require.Len(t, byNode, 2, "pods should be spread over both nodes:\n%s", describePods(pods))
	for node, ps := range byNode {
		n, err := l.Client.CoreV1().Nodes().Get(c, node, metav1.GetOptions{})
		require.NoError(t, err)
		cidr := netip.MustParsePrefix(n.Spec.PodCIDR)
		for _, p := range ps {
			assert.True(t, cidr.Contains(netip.MustParseAddr(p.Status.PodIP)), "pod %s IP %s not in %s's podCIDR %s", p.Name, p.Status.PodIP, node, cidr)
			assert.True(t, netnsutil.Exists(l.Layout.PodNetns(p.UID)), "pod %s has no netns", p.Name)
		}
	}

	// Same-node pods reach each other over TCP and UDP, through `probe`.
	for node, ps := range byNode {
		from := ps[0]
		for _, to := range ps[1:] {
			for _, proto := range []string{"tcp", "udp"} {
				out, errOut, code := l.Run("probe", "--from", ns+"/"+from.Name, "--to", net.JoinHostPort(to.Status.PodIP, "80"), "--protocol", proto, "--timeout", "2s")
				assert.Equal(t, 0, code, "%s: %s -> %s over %s: %s%s", node, from.Name, to.Name, proto, out, errOut)
				assert.Contains(t, out, to.Name, "the server answers with its pod name")
			}
		}
	}

	// EndpointSlices list every ready pod.
	err = wait.PollUntilContextTimeout(c, 250*time.Millisecond, time.Minute, true, func(c context.Context) (bool, error) {
		slices, err := l.Client.DiscoveryV1().EndpointSlices(ns).List(c, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == replicas, nil
	})
	require.NoError(t, err, "EndpointSlices of service web should list %d ready endpoints", replicas)

	// Delete: every pod namespace goes away.
	require.NoError(t, l.Client.AppsV1().Deployments(ns).Delete(c, "web", metav1.DeleteOptions{}))
	waitPods(t, l, ns, "app=web", 2*time.Minute, func(p []corev1.Pod) bool { return len(p) == 0 })
	for _, p := range pods {
		assert.False(t, netnsutil.Exists(l.Layout.PodNetns(p.UID)), "pod %s left its netns behind", p.Name)
	}
}

// TestBadInput checks that misuse gets a clear message and changes nothing.
func TestBadInput(t *testing.T) {
	l := shared
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"exec unknown pod", []string{"exec", "default/no-such-pod", "--", "true"}, 1, "pod default/no-such-pod not found"},
		{"probe unknown pod", []string{"probe", "--from", "default/no-such-pod", "--to", "10.10.0.1:80"}, 2, "pod default/no-such-pod not found"},
		{"probe bad address", []string{"probe", "--from", "default/x", "--to", "nonsense"}, 2, "not found"},
		{"node-exec unknown node", []string{"node-exec", "node-9", "--", "true"}, 1, `unknown node "node-9"`},
		{"up twice", []string{"up", "--nodes", "1"}, 1, "is already up"},
		{"bad node count", []string{"up", "--nodes", "0"}, 1, "--nodes 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := l.Run(tc.args...)
			assert.Equal(t, tc.wantCode, code, errOut)
			assert.Contains(t, errOut, tc.wantErr)
		})
	}
	// The shared lab is untouched by the failed `up`.
	out, errOut, code := l.Run("status")
	require.Equal(t, 0, code, out+errOut)
	assert.NotContains(t, out, "EXITED")

	t.Run("down with nothing up", func(t *testing.T) {
		other, err := NewLab("e2e-none")
		require.NoError(t, err)
		out, _, code := other.Run("down")
		assert.Equal(t, 0, code)
		assert.Contains(t, out, `nothing to do: no lab "e2e-none" is up`)
	})
}

// TestCNIAddFailure makes every CNI ADD on node-2 fail: the pod stays in
// ContainerCreating with a warning event, the kubelet retries, no pod
// namespace is leaked, and the pod starts once the plugin works again.
func TestCNIAddFailure(t *testing.T) {
	l := shared
	const ns = "cni-fail"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	broken := filepath.Join(l.Layout.CNIConfDir("node-2"), "00-broken.conflist")
	require.NoError(t, os.WriteFile(broken, []byte(`{"cniVersion":"1.0.0","name":"broken","plugins":[{"type":"no-such-plugin"}]}`), 0o644))
	t.Cleanup(func() { _ = os.Remove(broken) })

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "victim", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:   "node-2",
			Containers: []corev1.Container{{Name: "c", Image: "agnhost", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
		},
	}
	pod, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{})
	require.NoError(t, err)

	var events []corev1.Event
	err = wait.PollUntilContextTimeout(c, 250*time.Millisecond, time.Minute, true, func(c context.Context) (bool, error) {
		list, err := l.Client.CoreV1().Events(ns).List(c, metav1.ListOptions{FieldSelector: "involvedObject.name=victim,reason=FailedCreatePodSandBox"})
		if err != nil {
			return false, nil
		}
		events = list.Items
		total := int32(0)
		for _, e := range events {
			total += max(e.Count, 1)
			if e.Series != nil {
				total += e.Series.Count
			}
		}
		return total >= 2, nil // at least one retry
	})
	require.NoError(t, err, "expected repeated FailedCreatePodSandBox events, got %+v", events)
	assert.Equal(t, corev1.EventTypeWarning, events[0].Type)
	assert.Contains(t, events[0].Message, "no-such-plugin")

	got, err := l.Client.CoreV1().Pods(ns).Get(c, "victim", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodPending, got.Status.Phase)
	assert.Empty(t, got.Status.PodIP)
	for _, cs := range got.Status.ContainerStatuses {
		if assert.NotNil(t, cs.State.Waiting) {
			assert.Equal(t, "ContainerCreating", cs.State.Waiting.Reason)
		}
	}

	// Fix the node: the retry succeeds.
	require.NoError(t, os.Remove(broken))
	waitPods(t, l, ns, "", time.Minute, allRunningReady(1))

	require.NoError(t, l.Client.CoreV1().Pods(ns).Delete(c, "victim", metav1.DeleteOptions{}))
	waitPods(t, l, ns, "", time.Minute, func(p []corev1.Pod) bool { return len(p) == 0 })
	assert.False(t, netnsutil.Exists(l.Layout.PodNetns(pod.UID)), "the pod's netns leaked")
	ipamFiles, _ := filepath.Glob(filepath.Join(l.Layout.NodeDir("node-2"), "cni", "ipam", "lab-bridge", "10.*"))
	for _, f := range ipamFiles {
		data, _ := os.ReadFile(f)
		assert.NotContains(t, string(data), "victim", "IP reservation leaked: %s", f)
	}
}

// TestNodeExecShowsOVS checks that node-exec reaches the node's own OVS.
func TestNodeExecShowsOVS(t *testing.T) {
	l := shared
	for _, node := range []string{"node-1", "node-2"} {
		out, errOut, code := l.Run("node-exec", node, "--", "ovs-vsctl", "add-br", "br-probe", "--", "set", "bridge", "br-probe", "datapath_type=netdev")
		require.Equal(t, 0, code, out+errOut)
		out, errOut, code = l.Run("node-exec", node, "--", "ovs-vsctl", "show")
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "Bridge br-probe")
		out, errOut, code = l.Run("node-exec", node, "--", "ovs-ofctl", "dump-flows", "br-probe")
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "actions=NORMAL")
		_, _, code = l.Run("node-exec", node, "--", "ovs-vsctl", "del-br", "br-probe")
		require.Equal(t, 0, code)
	}
	out, _, code := l.Run("node-exec", "external", "--", "ip", "-4", "-o", "addr", "show", "eth0")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "172.18.0.200")
}

// TestMatrix prints the truth table for two pods on one node and one on the
// other: with the bridge CNI only same-node pairs connect.
func TestMatrix(t *testing.T) {
	l := shared
	const ns = "matrix"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	for _, p := range []struct{ name, node string }{{"a", "node-1"}, {"b", "node-1"}, {"c", "node-2"}} {
		_, err := l.Client.CoreV1().Pods(ns).Create(c, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns, Labels: map[string]string{"pod": p.name}},
			Spec: corev1.PodSpec{
				NodeName:   p.node,
				Containers: []corev1.Container{{Name: "c", Image: "agnhost", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(3))
	// probe's exit codes: 0 connected, 1 not connected.
	for _, p := range pods {
		if p.Name == "c" {
			out, _, code := l.Run("probe", "--from", ns+"/a", "--to", net.JoinHostPort(p.Status.PodIP, "80"), "--timeout", "500ms")
			assert.Equal(t, 1, code, "a -> c crosses nodes, which the bridge CNI cannot: %s", out)
			assert.Contains(t, out, "not connected")
		}
	}
	out, errOut, code := l.Run("matrix", "--namespaces", ns, "--port", "80", "--timeout", "1s")
	require.Equal(t, 0, code, errOut)
	want := [][]string{
		{"-", "matrix/a", "matrix/b", "matrix/c"},
		{"matrix/a", ".", ".", "X"},
		{"matrix/b", ".", ".", "X"},
		{"matrix/c", "X", "X", "."},
	}
	var got [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		got = append(got, strings.Fields(line))
	}
	assert.Equal(t, want, got, out)
}

// TestKubeletRestart kills node-1's kubelet and starts it again: running
// pods keep their processes and stay reachable, and a pod deleted while the
// kubelet was down is cleaned up when it comes back.
func TestKubeletRestart(t *testing.T) {
	l := shared
	const ns = "kubelet-restart"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	for _, name := range []string{"keep", "gone"} {
		_, err := l.Client.CoreV1().Pods(ns).Create(c, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName:   "node-1",
				Containers: []corev1.Container{{Name: "c", Image: "agnhost", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(2))
	var keep, gone corev1.Pod
	for _, p := range pods {
		if p.Name == "keep" {
			keep = p
		} else {
			gone = p
		}
	}
	// The pod's container processes carry its UID on their command line.
	serverPIDs := func() []int { return processesMentioning(string(keep.UID)) }
	before := serverPIDs()
	require.NotEmpty(t, before)

	restartKubelet(t, l, "node-1", func() {
		// While the kubelet is down, force-delete one pod.
		require.NoError(t, l.Client.CoreV1().Pods(ns).Delete(c, "gone", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}))
	})

	err := wait.PollUntilContextTimeout(c, 250*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return !netnsutil.Exists(l.Layout.PodNetns(gone.UID)), nil
	})
	assert.NoError(t, err, "the kubelet did not clean up the pod deleted while it was down")
	assert.Equal(t, before, serverPIDs(), "the running pod's processes must survive the kubelet restart")
	got, err := l.Client.CoreV1().Pods(ns).Get(c, "keep", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, podReady(got))
	assert.Equal(t, keep.Status.PodIP, got.Status.PodIP)
	out, errOut, code := l.Run("probe", "--from", ns+"/keep", "--to", net.JoinHostPort(keep.Status.PodIP, "80"))
	assert.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "keep")
}
