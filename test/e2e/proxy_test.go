package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	labprobe "github.com/ovs-cni/antrea/pkg/lab/probe"
)

// backendPod is a serving pod labelled app=<app>.
func backendPod(ns, name, node, app string) *corev1.Pod {
	p := servingPod(ns, name, node)
	p.Labels["app"] = app
	return p
}

// service is a Service for app=<app> with TCP and UDP port 80.
func service(ns, name, app string, typ corev1.ServiceType) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

// nodeIPs are the underlay addresses of the antrea nodes.
func nodeIPs(t *testing.T, l *Lab) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range antreaNodes {
		node, err := l.Client.CoreV1().Nodes().Get(ctx(t, 10*time.Second), n, metav1.GetOptions{})
		require.NoError(t, err)
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				out[n] = a.Address
			}
		}
		require.NotEmpty(t, out[n], "node %s has no InternalIP", n)
	}
	return out
}

// probeReply runs `antrea-lab probe` and returns whether it connected and
// the server's reply.
func probeReply(l *Lab, from, to, protocol, request string) (bool, string) {
	out, _, code := l.Run("probe", "--from", from, "--to", to, "--protocol", protocol, "--request", request, "--timeout", "2s")
	if code != 0 {
		return false, out
	}
	_, reply, _ := strings.Cut(out, "reply ")
	return true, strings.Trim(strings.TrimSpace(reply), `"`)
}

// TestProxyNodePort reaches NodePort Services on every node's address from
// the external host, from other nodes, from the node itself and from pods;
// with externalTrafficPolicy Local only nodes with a local endpoint answer
// and the endpoint sees the client's own address.
func TestProxyNodePort(t *testing.T) {
	l := antreaLab
	const ns = "svc-nodeport"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	createPods(t, l, c, backendPod(ns, "be-node-1", "node-1", "be"), backendPod(ns, "be-node-2", "node-2", "be"),
		servingPod(ns, "client", "node-3"))
	cluster, err := l.Client.CoreV1().Services(ns).Create(c, service(ns, "np-cluster", "be", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	require.NoError(t, err)
	localSvc := service(ns, "np-local", "be", corev1.ServiceTypeNodePort)
	localSvc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	local, err := l.Client.CoreV1().Services(ns).Create(c, localSvc, metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(3))
	ips := nodeIPs(t, l)
	clusterTCP := func(node string) string {
		return net.JoinHostPort(ips[node], fmt.Sprint(cluster.Spec.Ports[0].NodePort))
	}
	clusterUDP := net.JoinHostPort(ips["node-1"], fmt.Sprint(cluster.Spec.Ports[1].NodePort))
	localTCP := func(node string) string { return net.JoinHostPort(ips[node], fmt.Sprint(local.Spec.Ports[0].NodePort)) }

	reaches := func(from, to, protocol string) {
		t.Helper()
		var reply string
		assert.Eventually(t, func() bool {
			ok, r := probeReply(l, from, to, protocol, "hostname")
			reply = r
			return ok && strings.HasPrefix(r, "be-node-")
		}, 30*time.Second, 200*time.Millisecond, "%s -> %s/%s should reach a backend (last: %q)", from, to, protocol, reply)
	}
	// Cluster policy: every node answers, whoever asks.
	for _, node := range antreaNodes {
		reaches("external", clusterTCP(node), "tcp")
	}
	reaches("external", clusterUDP, "udp")
	reaches("node/node-2", clusterTCP("node-1"), "tcp")
	reaches("node/node-1", clusterTCP("node-1"), "tcp")
	reaches(ns+"/client", clusterTCP("node-1"), "tcp")
	reaches(ns+"/client", clusterTCP("node-3"), "tcp")

	// Local policy: node-1 answers with its own endpoint and the
	// endpoint sees the external host's address; node-3 has no endpoint.
	var reply string
	assert.Eventually(t, func() bool {
		ok, r := probeReply(l, "external", localTCP("node-1"), "tcp", "clientip")
		reply = r
		return ok && strings.HasPrefix(r, layout.ExternalIP.String()+":")
	}, 30*time.Second, 200*time.Millisecond, "the endpoint should see the external host's address, saw %q", reply)
	for i := 0; i < 5; i++ {
		ok, r := probeReply(l, "external", localTCP("node-1"), "tcp", "hostname")
		assert.True(t, ok && r == "be-node-1", "Local policy on node-1 must use node-1's endpoint, got %v %q", ok, r)
	}
	ok, r := probeReply(l, "external", localTCP("node-3"), "tcp", "hostname")
	assert.False(t, ok, "Local policy on node-3 (no endpoint there) must not connect, got %q", r)

	// Through the Cluster policy the endpoint sees the node it came in by
	// (its gateway address): replies must return through that node.
	ok, r = probeReply(l, "external", clusterTCP("node-3"), "tcp", "clientip")
	assert.True(t, ok && strings.HasPrefix(r, netipFirst(t, l, "node-3")+":"), "Cluster policy: the endpoint should see node-3's gateway, saw %v %q", ok, r)

	// The rules are in the node's nftables and the flows in table 40.
	nft := l.mustRun(t, "node-exec", "node-1", "--", "nft", "list", "set", "ip", "antrea", "nodeports-local")
	assert.Contains(t, nft, fmt.Sprintf("tcp . %d", local.Spec.Ports[0].NodePort))
	flows := l.mustRun(t, "node-exec", "node-1", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=40")
	assert.Contains(t, flows, fmt.Sprintf("nw_dst=169.254.169.110,tp_dst=%d", cluster.Spec.Ports[0].NodePort))

	// Deleting the Service closes its node port everywhere.
	require.NoError(t, l.Client.CoreV1().Services(ns).Delete(c, "np-cluster", metav1.DeleteOptions{}))
	assert.Eventually(t, func() bool {
		ok, _ := probeReply(l, "external", clusterTCP("node-2"), "tcp", "hostname")
		return !ok
	}, 30*time.Second, 200*time.Millisecond, "the node port of a deleted Service must close")
}

// TestProxySessionAffinity: with ClientIP affinity a client keeps its
// endpoint; switching affinity off spreads it again, switching it on
// sticks again; after the timeout without connections the client is
// balanced anew.
func TestProxySessionAffinity(t *testing.T) {
	l := antreaLab
	const ns = "svc-affinity"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	for i, node := range []string{"node-1", "node-2", "node-3", "node-1"} {
		_, err := l.Client.CoreV1().Pods(ns).Create(c, backendPod(ns, fmt.Sprintf("be-%d", i), node, "be"), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, "client", "node-2"), metav1.CreateOptions{})
	require.NoError(t, err)
	svc := service(ns, "sticky", "be", corev1.ServiceTypeClusterIP)
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(3))}}
	svc, err = l.Client.CoreV1().Services(ns).Create(c, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(5))
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")

	// hosts makes n connections in a row and returns the endpoints seen.
	hosts := func(protocol string, n int) map[string]int {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			if ok, r := probeReply(l, ns+"/client", addr, protocol, "hostname"); ok {
				seen[r]++
			}
		}
		return seen
	}
	sticky := func(protocol string) {
		t.Helper()
		var seen map[string]int
		assert.Eventually(t, func() bool {
			seen = hosts(protocol, 12)
			return len(seen) == 1 && seen[firstKey(seen)] == 12
		}, 30*time.Second, time.Second, "%s: every connection should go to one endpoint, saw %v", protocol, seen)
	}
	spread := func() {
		t.Helper()
		var seen map[string]int
		assert.Eventually(t, func() bool {
			seen = hosts("tcp", 16)
			return len(seen) >= 2
		}, 30*time.Second, time.Second, "without affinity connections should spread, saw %v", seen)
	}
	sticky("tcp")
	sticky("udp")

	// The bucket learns a flow per client in table 35.
	learned := ""
	for _, node := range antreaNodes {
		learned += l.mustRun(t, "node-exec", node, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=35")
	}
	assert.Contains(t, learned, "nw_dst="+svc.Spec.ClusterIP, "learned affinity flows")

	// Off, then on again.
	setAffinity := func(a corev1.ServiceAffinity) {
		t.Helper()
		s, err := l.Client.CoreV1().Services(ns).Get(c, "sticky", metav1.GetOptions{})
		require.NoError(t, err)
		s.Spec.SessionAffinity = a
		if a == corev1.ServiceAffinityNone {
			s.Spec.SessionAffinityConfig = nil
		} else {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(3))}}
		}
		_, err = l.Client.CoreV1().Services(ns).Update(c, s, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	setAffinity(corev1.ServiceAffinityNone)
	spread()
	setAffinity(corev1.ServiceAffinityClientIP)
	sticky("tcp")

	// Timeout: after 3 s without a new connection the choice is made
	// again. With 4 endpoints, 6 rounds all landing on the same one by
	// chance has a probability of 1/4^5.
	seen := map[string]bool{}
	for i := 0; i < 6 && len(seen) < 2; i++ {
		if ok, r := probeReply(l, ns+"/client", addr, "tcp", "hostname"); ok {
			seen[r] = true
		}
		time.Sleep(4500 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, len(seen), 2, "after the affinity timeout the client should be balanced anew, saw %v", seen)
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// TestProxyNoEndpointsRejects: a Service without endpoints answers a TCP
// connection with a reset and a UDP datagram with an ICMP port
// unreachable, through its ClusterIP and its node port; once a backend
// exists, connections go through.
func TestProxyNoEndpointsRejects(t *testing.T) {
	l := antreaLab
	const ns = "svc-reject"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	_, err := l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, "client", "node-2"), metav1.CreateOptions{})
	require.NoError(t, err)
	svc, err := l.Client.CoreV1().Services(ns).Create(c, service(ns, "empty", "be", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(1))
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	nodePort := net.JoinHostPort(nodeIPs(t, l)["node-1"], fmt.Sprint(svc.Spec.Ports[0].NodePort))

	refused := func(from, to, protocol, want string) {
		t.Helper()
		var out string
		assert.Eventually(t, func() bool {
			o, _, code := l.Run("probe", "--from", from, "--to", to, "--protocol", protocol, "--timeout", "2s")
			out = o
			return code == 1 && strings.Contains(o, want)
		}, 30*time.Second, 200*time.Millisecond, "%s -> %s/%s should be refused (%s), got: %s", from, to, protocol, want, out)
	}
	refused(ns+"/client", vip, "tcp", "connection refused")
	refused(ns+"/client", vip, "udp", "ICMP port unreachable")
	refused("external", nodePort, "tcp", "connection refused")

	_, err = l.Client.CoreV1().Pods(ns).Create(c, backendPod(ns, "be-1", "node-3", "be"), metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(2))
	assert.Eventually(t, func() bool {
		ok, r := probeReply(l, ns+"/client", vip, "tcp", "hostname")
		return ok && r == "be-1"
	}, 30*time.Second, 200*time.Millisecond, "with an endpoint the Service answers")
}

// TestProxyInternalTrafficPolicyLocal: with internalTrafficPolicy Local a
// client only reaches endpoints on its own node (none: no answer, not a
// reject); through a ClusterIP the endpoint sees the client pod's own
// address.
func TestProxyInternalTrafficPolicyLocal(t *testing.T) {
	l := antreaLab
	const ns = "svc-itp"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	createPods(t, l, c, backendPod(ns, "be-node-1", "node-1", "be"),
		servingPod(ns, "client-1", "node-1"), servingPod(ns, "client-2", "node-2"))
	s := service(ns, "local", "be", corev1.ServiceTypeClusterIP)
	s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	svc, err := l.Client.CoreV1().Services(ns).Create(c, s, metav1.CreateOptions{})
	require.NoError(t, err)
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(3))
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	var client1IP string
	for _, p := range pods {
		if p.Name == "client-1" {
			client1IP = p.Status.PodIP
		}
	}
	var reply string
	assert.Eventually(t, func() bool {
		ok, r := probeReply(l, ns+"/client-1", vip, "tcp", "clientip")
		reply = r
		return ok && strings.HasPrefix(r, client1IP+":")
	}, 30*time.Second, 200*time.Millisecond, "client-1 reaches its node's endpoint, which sees its address %s (saw %q)", client1IP, reply)
	out, _, code := l.Run("probe", "--from", ns+"/client-2", "--to", vip, "--timeout", "2s")
	assert.Equal(t, 1, code, "client-2's node has no endpoint: %s", out)
	assert.NotContains(t, out, "refused", "no local endpoint drops, it does not reject")
}

// TestProxyEndpointChurn scales a Deployment behind a Service between 1
// and 30 replicas while a client keeps opening connections to the
// ClusterIP and one long connection streams requests. The pods sleep 5 s
// in a preStop hook before they stop serving, as well-behaved servers do,
// so a connection that fails means the proxy still sent it to an
// endpoint seconds after the EndpointSlice said it was going; and the
// long connection to the surviving replica must never break. (With 2 s a
// make test run failed one connection: under this churn the EndpointSlice
// controller itself retried "informer cache is out of date" for 2.5 s
// before it published the terminating endpoints, while they had already
// stopped.)
func TestProxyEndpointChurn(t *testing.T) {
	l := antreaLab
	const ns = "svc-churn"
	createNamespace(t, l, ns)
	c := ctx(t, 8*time.Minute)
	dep := webDeployment(ns, "web", 1)
	dep.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To(int64(10))
	dep.Spec.Template.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}
	_, err := l.Client.AppsV1().Deployments(ns).Create(c, dep, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, "client", "node-1"), metav1.CreateOptions{})
	require.NoError(t, err)
	// Named target ports, resolved per pod by the EndpointSlice controller.
	web := service(ns, "web", "web", corev1.ServiceTypeClusterIP)
	web.Spec.Ports[0].TargetPort, web.Spec.Ports[1].TargetPort = intstr.FromString("http"), intstr.FromString("udp")
	svc, err := l.Client.CoreV1().Services(ns).Create(c, web, metav1.CreateOptions{})
	require.NoError(t, err)
	webPods := func(ok func([]corev1.Pod) bool, timeout time.Duration) []corev1.Pod {
		t.Helper()
		return waitPods(t, l, ns, "app=web", timeout, ok)
	}
	first := webPods(allRunningReady(1), time.Minute)[0]
	client := waitPods(t, l, ns, "pod=client", time.Minute, allRunningReady(1))[0]
	// The first replica is the one to keep through every scale-down.
	first.Annotations = map[string]string{"controller.kubernetes.io/pod-deletion-cost": "1000"}
	_, err = l.Client.CoreV1().Pods(ns).Update(c, &first, metav1.UpdateOptions{})
	require.NoError(t, err)

	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	netns := layout.PodNetns(l.Layout.Name, client.UID)
	var stream *httpStream
	require.Eventually(t, func() bool {
		ok, r := probeReply(l, ns+"/client", vip, "tcp", "hostname")
		return ok && r == first.Name
	}, 30*time.Second, 200*time.Millisecond, "the Service answers")
	stream = startHTTPStream(t, netns, vip)

	// Clients: short connections from 3 workers, each paced to about 200
	// a second. Faster, the client would cycle through its ephemeral
	// ports within the 30 s that the userspace datapath's conntrack keeps
	// closed connections in TIME_WAIT, and a reused source port collides
	// with its old entry (docs/troubleshooting.md): connections then fail
	// whatever the endpoints do. Each connection has 5 s, three SYNs:
	// the userspace datapath stops forwarding for a second or so while
	// it removes a batch of ports (ten pods of a node going at once; seen
	// as every worker timing out at the same instant with 2 s), and a
	// connection sent to a deleted endpoint fails however long it waits.
	type result struct {
		ok     int
		failed []string
	}
	stop := make(chan struct{})
	results := make(chan result, 3)
	for w := 0; w < 3; w++ {
		go func() {
			var r result
			defer func() { results <- r }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(5 * time.Millisecond)
				res, err := labprobe.Probe(c, netns, "tcp", vip, 5*time.Second)
				switch {
				case err != nil:
					r.failed = append(r.failed, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
				case !res.Connected || res.Reply == "":
					r.failed = append(r.failed, fmt.Sprintf("%s: %s", time.Now().Format("15:04:05.000"), res.Detail))
				default:
					r.ok++
				}
			}
		}()
	}
	scale := func(n int32) {
		t.Helper()
		// A patch: the deployment controller keeps changing the object,
		// which would make a read-modify-write conflict.
		_, err := l.Client.AppsV1().Deployments(ns).Patch(c, "web", types.MergePatchType,
			[]byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)), metav1.PatchOptions{})
		require.NoError(t, err)
		// Up: every replica ready. Down: the others gone altogether
		// (preStop, stop, teardown).
		webPods(func(ps []corev1.Pod) bool { return len(ps) == int(n) && allRunningReady(int(n))(ps) }, 3*time.Minute)
		t.Logf("%s: %d replicas", time.Now().Format("15:04:05.000"), n)
	}
	for round := 0; round < 2; round++ {
		scale(30)
		scale(1)
	}
	close(stop)
	total := result{}
	for w := 0; w < 3; w++ {
		r := <-results
		total.ok += r.ok
		total.failed = append(total.failed, r.failed...)
	}
	requests, streamErr := stream.finish()
	t.Logf("short connections: %d ok, %d failed; long connection: %d requests", total.ok, len(total.failed), requests)
	assert.Empty(t, total.failed, "no connection may fail while endpoints come and go")
	assert.Greater(t, total.ok, 100, "the clients kept connecting")
	assert.NoError(t, streamErr, "the long connection to the surviving replica must not break")
	assert.Greater(t, requests, 20)
	kept, err := l.Client.CoreV1().Pods(ns).Get(c, first.Name, metav1.GetOptions{})
	require.NoError(t, err, "the first replica survived")
	assert.Nil(t, kept.DeletionTimestamp)
}

// TestProxyServiceLifecycle follows one Service through deletion,
// re-creation with the same ClusterIP, a change to ExternalName and back;
// checks the kubernetes Service from a pod; and traces an SCTP Service
// port (no SCTP sockets in this kernel) to its group and endpoint.
func TestProxyServiceLifecycle(t *testing.T) {
	l := antreaLab
	const ns = "svc-life"
	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	createPods(t, l, c, backendPod(ns, "be", "node-2", "be"), servingPod(ns, "client", "node-1"))
	svc, err := l.Client.CoreV1().Services(ns).Create(c, service(ns, "life", "be", corev1.ServiceTypeClusterIP), metav1.CreateOptions{})
	require.NoError(t, err)
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(2))
	reachable := func(ip string, want bool) {
		t.Helper()
		addr := net.JoinHostPort(ip, "80")
		assert.Eventually(t, func() bool {
			ok, r := probeReply(l, ns+"/client", addr, "tcp", "hostname")
			return ok == want && (!want || r == "be")
		}, 30*time.Second, 200*time.Millisecond, "%s reachable: want %v", addr, want)
	}
	ip := svc.Spec.ClusterIP
	reachable(ip, true)

	// Down, and up again with the same address.
	require.NoError(t, l.Client.CoreV1().Services(ns).Delete(c, "life", metav1.DeleteOptions{}))
	reachable(ip, false)
	again := service(ns, "life", "be", corev1.ServiceTypeClusterIP)
	again.Spec.ClusterIP = ip
	_, err = l.Client.CoreV1().Services(ns).Create(c, again, metav1.CreateOptions{})
	require.NoError(t, err)
	reachable(ip, true)

	// To ExternalName: the ClusterIP goes away; back to ClusterIP: a new
	// one works.
	s, err := l.Client.CoreV1().Services(ns).Get(c, "life", metav1.GetOptions{})
	require.NoError(t, err)
	s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
	s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Selector, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy, s.Spec.InternalTrafficPolicy = "", nil, nil, nil, nil, nil
	s, err = l.Client.CoreV1().Services(ns).Update(c, s, metav1.UpdateOptions{})
	require.NoError(t, err)
	reachable(ip, false)
	s.Spec.Type, s.Spec.ExternalName, s.Spec.Selector = corev1.ServiceTypeClusterIP, "", map[string]string{"app": "be"}
	s, err = l.Client.CoreV1().Services(ns).Update(c, s, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, s.Spec.ClusterIP)
	reachable(s.Spec.ClusterIP, true)

	// The API server through the kubernetes Service, from a pod.
	k8s, err := l.Client.CoreV1().Services("default").Get(c, "kubernetes", metav1.GetOptions{})
	require.NoError(t, err)
	out := l.mustRun(t, "probe", "--from", ns+"/client", "--to", net.JoinHostPort(k8s.Spec.ClusterIP, "443"), "--timeout", "3s")
	assert.Contains(t, out, "connected", "the kubernetes Service from a pod")

	// SCTP: traced from the client to the ClusterIP, the packet goes to
	// the port's group, whose bucket DNATs to the pod.
	sctp := service(ns, "sctp", "be", corev1.ServiceTypeClusterIP)
	sctp.Spec.Ports = []corev1.ServicePort{{Name: "sctp", Port: 9999, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolSCTP}}
	sctp, err = l.Client.CoreV1().Services(ns).Create(c, sctp, metav1.CreateOptions{})
	require.NoError(t, err)
	var client, be corev1.Pod
	for _, p := range pods {
		if p.Name == "client" {
			client = p
		} else {
			be = p
		}
	}
	flow := fmt.Sprintf("in_port=%s,sctp,dl_src=%s,dl_dst=%s,nw_src=%s,nw_dst=%s,sctp_src=40000,sctp_dst=9999,nw_ttl=64",
		podOFPort(t, l, "node-1", ns, "client"), podMAC(t, l, ns, "client"), gatewayMACOf(t, l, "node-1"), client.Status.PodIP, sctp.Spec.ClusterIP)
	var trace, groups string
	assert.Eventually(t, func() bool {
		trace = ofTrace(t, l, "node-1", flow)
		groups = l.mustRun(t, "node-exec", "node-1", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-groups", "br-int")
		return strings.Contains(trace, "sctp,nw_dst="+sctp.Spec.ClusterIP+",tp_dst=9999") && strings.Contains(groups, "nat(dst="+be.Status.PodIP+":80)")
	}, 30*time.Second, 500*time.Millisecond, "SCTP to the ClusterIP goes to its group:\n%s\n%s", trace, groups)
}

// TestProxyTerminatingFallback: when a Service's only endpoint is
// terminating but still serving (its preStop hook runs), connections
// still go to it, as kube-proxy does, instead of being rejected.
func TestProxyTerminatingFallback(t *testing.T) {
	l := antreaLab
	const ns = "svc-terminating"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	be := backendPod(ns, "be", "node-3", "be")
	be.Spec.TerminationGracePeriodSeconds = ptr.To(int64(20))
	be.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 12}}}
	createPods(t, l, c, be, servingPod(ns, "client", "node-1"))
	svc, err := l.Client.CoreV1().Services(ns).Create(c, service(ns, "fallback", "be", corev1.ServiceTypeClusterIP), metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(2))
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	require.Eventually(t, func() bool {
		ok, r := probeReply(l, ns+"/client", vip, "tcp", "hostname")
		return ok && r == "be"
	}, 30*time.Second, 200*time.Millisecond, "the Service answers")

	require.NoError(t, l.Client.CoreV1().Pods(ns).Delete(c, "be", metav1.DeleteOptions{}))
	// Wait until the EndpointSlice says terminating, then keep probing.
	require.Eventually(t, func() bool {
		slices, err := l.Client.DiscoveryV1().EndpointSlices(ns).List(c, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=fallback"})
		if err != nil || len(slices.Items) == 0 || len(slices.Items[0].Endpoints) == 0 {
			return false
		}
		cond := slices.Items[0].Endpoints[0].Conditions
		return cond.Terminating != nil && *cond.Terminating && cond.Serving != nil && *cond.Serving
	}, 10*time.Second, 100*time.Millisecond, "the endpoint is terminating and serving")
	for i := 0; i < 10; i++ {
		ok, r := probeReply(l, ns+"/client", vip, "tcp", "hostname")
		assert.True(t, ok && r == "be", "connection %d while the only endpoint terminates: %v %q", i, ok, r)
		time.Sleep(300 * time.Millisecond)
	}
}

// TestProxyServiceWith5000Endpoints balances one Service over 5,000
// endpoints (five EndpointSlices of 1,000): far more buckets than one
// OpenFlow group message holds. The endpoints are 5,000 addresses of the
// external host (172.19.0.0/16 is local there and routed to it from the
// nodes), so every one of them answers, with the address it was reached
// at. The client's agent realizes every endpoint, and 400 new
// connections from a pod land on addresses from every slice.
func TestProxyServiceWith5000Endpoints(t *testing.T) {
	l := antreaLab
	const ns, endpoints, perSlice = "svc-5000", 5000, 1000
	const extRange = "172.19.0.0/16"
	createNamespace(t, l, ns)
	c := ctx(t, 5*time.Minute)

	// The external host answers on every address of extRange.
	l.mustRun(t, "node-exec", "external", "--", "ip", "route", "add", "local", extRange, "dev", "lo")
	t.Cleanup(func() {
		_, _, _ = l.Run("node-exec", "external", "--", "ip", "route", "del", "local", extRange, "dev", "lo")
	})
	stop := serveOnExternal(t, l, 8080)
	t.Cleanup(stop)
	for _, n := range antreaNodes {
		l.mustRun(t, "node-exec", n, "--", "ip", "route", "add", extRange, "via", layout.ExternalIP.String())
		t.Cleanup(func() {
			_, _, _ = l.Run("node-exec", n, "--", "ip", "route", "del", extRange, "via", layout.ExternalIP.String())
		})
	}

	createPods(t, l, c, servingPod(ns, "client", "node-1"))
	svc, err := l.Client.CoreV1().Services(ns).Create(c, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "many", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	addr := func(i int) string { return fmt.Sprintf("172.19.%d.%d", i/250, i%250+1) }
	for s := 0; s < endpoints/perSlice; s++ {
		ips := make([]string, perSlice)
		for i := range ips {
			ips[i] = addr(s*perSlice + i)
		}
		slice := endpointSlice(ns, "many", ips)
		slice.Name = fmt.Sprintf("many-%d", s)
		slice.Ports[0].Port = ptr.To[int32](8080)
		_, err := l.Client.DiscoveryV1().EndpointSlices(ns).Create(c, slice, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	// node-1's agent has realized every endpoint. (ovs-ofctl cannot show
	// the group: a group description is one OpenFlow message of at most
	// 64 KiB, about 900 buckets; the connections below are the proof.)
	agent := agentMetricsSource(l, "node-1")
	var realized float64
	require.Eventually(t, func() bool {
		fams, err := scrape(c, agent)
		if err != nil {
			return false
		}
		realized = gaugeValue(fams, "antrea_agent_proxy_endpoints")
		return realized >= endpoints
	}, 2*time.Minute, 200*time.Millisecond, "node-1's agent should realize %d endpoints", endpoints)
	flows := l.mustRun(t, "node-exec", "node-1", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=40")
	assert.Regexp(t, `nw_dst=`+regexp.QuoteMeta(svc.Spec.ClusterIP)+`,tp_dst=80 actions=group:\d+`, flows)

	// New connections land all over the 5,000 endpoints.
	netns := layout.PodNetns(l.Layout.Name, podUID(t, l, ns, "client"))
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	seen, slicesHit := map[string]bool{}, map[int]bool{}
	for i := 0; i < 400; i++ {
		res, err := labprobe.ProbeRequest(c, netns, "tcp", vip, 3*time.Second, labprobe.RequestServerIP)
		require.NoError(t, err)
		require.True(t, res.Connected, "connection %d: %s", i, res.Detail)
		host, port, err := net.SplitHostPort(res.Reply)
		require.NoError(t, err, "reply %q", res.Reply)
		require.Equal(t, "8080", port)
		var a, b int
		_, err = fmt.Sscanf(host, "172.19.%d.%d", &a, &b)
		require.NoError(t, err, "connection %d reached %s, not an endpoint", i, host)
		idx := a*250 + b - 1
		require.Less(t, idx, endpoints, "connection %d reached %s, not an endpoint", i, host)
		seen[host] = true
		slicesHit[idx/perSlice] = true
	}
	t.Logf("400 connections reached %d distinct endpoints, in %d of %d slices", len(seen), len(slicesHit), endpoints/perSlice)
	assert.Len(t, slicesHit, endpoints/perSlice, "every slice's endpoints get connections")
	assert.Greater(t, len(seen), 300, "connections spread over the endpoints (about 385 distinct of 400 expected)")
}

// podUID is the UID of a pod.
func podUID(t *testing.T, l *Lab, ns, name string) types.UID {
	t.Helper()
	p, err := l.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return p.UID
}

// TestProxyClusterIPFromNodes reaches ClusterIPs from the nodes' own
// network stacks (what host-network pods, the kubelet and the agents
// do): a Service of pods on two nodes over TCP and UDP, from every node,
// reaching both endpoints, the endpoint seeing the client node's gateway
// address; and the kubernetes Service, whose endpoint (the API server)
// is outside the pod network, from every node.
func TestProxyClusterIPFromNodes(t *testing.T) {
	l := antreaLab
	const ns = "svc-from-nodes"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	createPods(t, l, c, backendPod(ns, "web-1", "node-1", "web"), backendPod(ns, "web-2", "node-2", "web"))
	svc, err := l.Client.CoreV1().Services(ns).Create(c, service(ns, "web", "web", corev1.ServiceTypeClusterIP), metav1.CreateOptions{})
	require.NoError(t, err)
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	for _, n := range antreaNodes {
		seen := map[string]bool{}
		require.Eventually(t, func() bool {
			if ok, reply := probeReply(l, "node/"+n, vip, "tcp", "hostname"); ok {
				seen[reply] = true
			}
			return seen["web-1"] && seen["web-2"]
		}, time.Minute, 100*time.Millisecond, "TCP from %s to the ClusterIP should reach both endpoints, saw %v", n, seen)
		ok, reply := probeReply(l, "node/"+n, vip, "udp", "hostname")
		assert.True(t, ok, "UDP from %s: %s", n, reply)
		assert.Contains(t, []string{"web-1", "web-2"}, reply, "UDP from %s", n)
		ok, reply = probeReply(l, "node/"+n, vip, "tcp", "clientip")
		require.True(t, ok, "from %s: %s", n, reply)
		host, _, err := net.SplitHostPort(reply)
		require.NoError(t, err, reply)
		assert.Equal(t, netipFirst(t, l, n), host, "the endpoint sees %s's gateway address", n)

		ok, reply = probeReply(l, "node/"+n, net.JoinHostPort(layout.KubernetesSvcIP.String(), "443"), "tcp", "hostname")
		assert.True(t, ok, "the kubernetes Service from %s: %s", n, reply)
		assert.Contains(t, reply, "HTTP request to an HTTPS server", "the API server answered %s", n)
	}
}

// agentMetrics scrapes a node's agent /metrics (on its API socket).
func agentMetrics(t *testing.T, l *Lab, node string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := scrape(context.Background(), agentMetricsSource(l, node))
	require.NoError(t, err, "the agent's /metrics parses as Prometheus text")
	return fams
}

// counterValue sums the counter series of a family whose labels include
// every one of labels.
func counterValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if match {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestAgentMetrics scrapes an agent's /metrics: it parses, the Go runtime
// and the proxy report, and the CNI counters and latency move when a pod
// is created and deleted on the node.
func TestAgentMetrics(t *testing.T) {
	l := antreaLab
	const ns = "agent-metrics"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	before := agentMetrics(t, l, "node-1")
	assert.Contains(t, before, "go_goroutines")
	assert.GreaterOrEqual(t, gaugeValue(before, "antrea_agent_proxy_service_ports"), 1.0, "the kubernetes Service at least")
	adds := counterValue(before, "antrea_agent_cni_requests_total", map[string]string{"command": "ADD", "code": "0"})
	dels := counterValue(before, "antrea_agent_cni_requests_total", map[string]string{"command": "DEL"})

	createPods(t, l, c, servingPod(ns, "counted", "node-1"))
	require.NoError(t, l.Client.CoreV1().Pods(ns).Delete(c, "counted", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}))
	require.Eventually(t, func() bool {
		after := agentMetrics(t, l, "node-1")
		return counterValue(after, "antrea_agent_cni_requests_total", map[string]string{"command": "ADD", "code": "0"}) >= adds+1 &&
			counterValue(after, "antrea_agent_cni_requests_total", map[string]string{"command": "DEL"}) >= dels+1
	}, time.Minute, 200*time.Millisecond, "the pod's ADD and DEL are counted")
	after := agentMetrics(t, l, "node-1")
	var count uint64
	for _, m := range after["antrea_agent_cni_request_duration_seconds"].GetMetric() {
		count += m.GetHistogram().GetSampleCount()
	}
	assert.GreaterOrEqual(t, count, uint64(2), "their latency is observed")

	// Flows per table, OpenFlow bundles, conntrack entries: the pod's
	// flows came and went in bundles.
	assert.Greater(t, labelledGauge(after, "antrea_agent_ovs_flows", "table", "SpoofGuard"), 0.0)
	assert.Greater(t, labelledGauge(after, "antrea_agent_ovs_flows", "table", "Output"), 0.0)
	var bundles uint64
	for _, m := range after["antrea_agent_openflow_bundle_duration_seconds"].GetMetric() {
		bundles += m.GetHistogram().GetSampleCount()
	}
	var beforeBundles uint64
	for _, m := range before["antrea_agent_openflow_bundle_duration_seconds"].GetMetric() {
		beforeBundles += m.GetHistogram().GetSampleCount()
	}
	assert.Greater(t, bundles, beforeBundles, "the pod's flows were bundles")
	require.Contains(t, after, "antrea_agent_conntrack_entries")
	assert.GreaterOrEqual(t, gaugeValue(after, "antrea_agent_conntrack_entries"), 0.0)

	// The pod's coming and going are local changes the policy flows are
	// realized for: the realization latency is observed.
	assert.Greater(t, histogramSamples(after, "antrea_agent_networkpolicy_realization_duration_seconds"),
		histogramSamples(before, "antrea_agent_networkpolicy_realization_duration_seconds"))
	assert.GreaterOrEqual(t, counterValue(after, "antrea_agent_networkpolicy_realizations_total", map[string]string{"result": "ok"}), 1.0)
	require.Contains(t, after, "antrea_agent_networkpolicies")
}

// histogramSamples is the sample count of a histogram family, all series.
func histogramSamples(fams map[string]*dto.MetricFamily, name string) uint64 {
	var n uint64
	for _, m := range fams[name].GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// labelledGauge is the value of the series of a gauge family with label=value.
func labelledGauge(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	for _, m := range fams[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == value {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// TestControllerMetrics scrapes antrea-controller's /metrics over HTTPS
// with the admin's client certificate (delegated authentication): it
// parses, carries the controller's own families, and its object count and
// computation rounds move when a NetworkPolicy is created.
func TestControllerMetrics(t *testing.T) {
	l := antreaLab
	const ns = "controller-metrics"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	pods, err := l.Client.CoreV1().Pods("kube-system").List(c, metav1.ListOptions{LabelSelector: cluster.ControllerSelector})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	_, cfg, err := controlplane.Client(l.Layout, controlplane.Admin)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData)
	require.NoError(t, err)
	src := proxyUnderTest{name: "antrea-controller", metricsURL: "https://" + net.JoinHostPort(pods.Items[0].Status.PodIP, "10349") + "/metrics",
		metrics: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext:     netnsutil.Dialer(l.Layout.ControlPlaneNetns()),
			TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}, //nolint:gosec // self-signed, as the aggregator trusts it through the APIService
		}}}
	before, err := scrape(c, src)
	require.NoError(t, err, "the controller's /metrics parses as Prometheus text")
	for _, name := range []string{"antrea_controller_queue_depth", "antrea_controller_computed_objects_total", "antrea_controller_objects",
		"antrea_controller_watchers", "antrea_controller_computation_duration_seconds"} {
		assert.Contains(t, before, name)
	}
	assert.GreaterOrEqual(t, labelledGauge(before, "antrea_controller_watchers", "kind", "NetworkPolicy"), 1.0, "the agents watch")
	policies := labelledGauge(before, "antrea_controller_objects", "kind", "NetworkPolicy")
	computed := counterValue(before, "antrea_controller_computed_objects_total", nil)

	_, err = l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		after, err := scrape(c, src)
		return err == nil && labelledGauge(after, "antrea_controller_objects", "kind", "NetworkPolicy") == policies+1 &&
			counterValue(after, "antrea_controller_computed_objects_total", nil) > computed
	}, 30*time.Second, 300*time.Millisecond, "the new policy is counted and computed")
}
