package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

var antreaNodes = []string{"node-1", "node-2", "node-3"}

// servingPod is a lab pod on node that serves TCP and UDP 80.
func servingPod(ns, name, node string) *corev1.Pod {
	return labPod(ns, name, node,
		corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolTCP},
		corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolUDP})
}

// twoPodsPerNode creates pods <node>-a and <node>-b on every antrea node and
// waits for them.
func twoPodsPerNode(t *testing.T, l *Lab, ns string) map[string]corev1.Pod {
	t.Helper()
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	for _, n := range antreaNodes {
		for _, s := range []string{"a", "b"} {
			_, err := l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, n+"-"+s, n), metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}
	pods := waitPods(t, l, ns, "", 2*time.Minute, allRunningReady(2*len(antreaNodes)))
	byName := map[string]corev1.Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	return byName
}

func (l *Lab) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := l.Run(args...)
	require.Equal(t, 0, code, "antrea-lab %s:\n%s%s", strings.Join(args, " "), out, errOut)
	return out
}

// TestAntreaConnectivity covers the seed's data path on 3 nodes: pod to
// pod on one node and across nodes over TCP, UDP and ICMP, pod to its
// gateway, node to pod, and pod to the external host (masqueraded to the
// node's IP).
func TestAntreaConnectivity(t *testing.T) {
	l := antreaLab
	const ns = "connectivity"
	pods := twoPodsPerNode(t, l, ns)

	for _, proto := range []string{"tcp", "udp"} {
		out := l.mustRun(t, "matrix", "--namespaces", ns, "--port", "80", "--protocol", proto, "--attempts", "3")
		assert.NotContains(t, out, " X", "%s: every pod reaches every pod:\n%s", proto, out)
	}

	from := pods["node-1-a"]
	for _, to := range []string{"node-1-b", "node-2-a", "node-3-b"} {
		out := l.mustRun(t, "exec", ns+"/"+from.Name, "--", "ping", "-c", "2", "-W", "2", pods[to].Status.PodIP)
		assert.Contains(t, out, " 0% packet loss", "ICMP to %s", to)
	}
	gw := netipFirst(t, l, "node-1")
	out := l.mustRun(t, "exec", ns+"/"+from.Name, "--", "ping", "-c", "1", "-W", "2", gw)
	assert.Contains(t, out, " 0% packet loss", "ICMP to the gateway %s", gw)

	// Node to pod: node-1's kernel reaches a pod on node-3 through its
	// gateway and the tunnel; the pod sees node-1's gateway address.
	out = l.mustRun(t, "node-exec", "node-1", "--", "curl", "-s", "-m", "3", pods["node-3-a"].Status.PodIP+"/clientip")
	assert.True(t, strings.HasPrefix(out, gw+":"), "pod on node-3 saw %q, want node-1's gateway %s", out, gw)

	// Pod to the external host: masqueraded to the node's IP.
	stop := serveOnExternal(t, l, 8080)
	defer stop()
	for i, p := range []string{"node-1-a", "node-2-b"} {
		_ = i
		pod := pods[p]
		out := l.mustRun(t, "exec", ns+"/"+pod.Name, "--", "curl", "-s", "-m", "5", "--retry", "2", fmt.Sprintf("%s:8080/clientip", layout.ExternalIP))
		assert.True(t, strings.HasPrefix(out, pod.Status.HostIP+":"), "external host saw %q from %s, want its node IP %s", out, p, pod.Status.HostIP)
	}
}

// netipFirst is the gateway address of a node: the first of its podCIDR.
func netipFirst(t *testing.T, l *Lab, node string) string {
	t.Helper()
	n, err := l.Client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	require.NoError(t, err)
	ip, _, err := net.ParseCIDR(n.Spec.PodCIDR)
	require.NoError(t, err)
	ip = ip.To4()
	ip[3]++
	return ip.String()
}

// serveOnExternal runs lab-agnhost on the external host.
func serveOnExternal(t *testing.T, l *Lab, port int) func() {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.Layout.ExternalNetns(), labBinDir+"/lab-agnhost", "--name", "external", "--tcp", fmt.Sprint(port))
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := l.Run("node-exec", "external", "--", "curl", "-s", "-m", "1", fmt.Sprintf("127.0.0.1:%d/healthz", port)); code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// TestAntreaARP is the seed's walk-through: arping reaches a pod of the
// same node (the ARP responder answers with its MAC), and not a pod on
// another node (no L2 between nodes).
func TestAntreaARP(t *testing.T) {
	l := antreaLab
	const ns = "arp"
	pods := twoPodsPerNode(t, l, ns)
	from := ns + "/" + pods["node-2-a"].Name
	out := l.mustRun(t, "exec", from, "--", "arping", "-c", "2", "-w", "3", "-I", "eth0", pods["node-2-b"].Status.PodIP)
	assert.Contains(t, out, "2 packets received")
	out, _, code := l.Run("exec", from, "--", "arping", "-c", "2", "-w", "2", "-I", "eth0", pods["node-1-a"].Status.PodIP)
	assert.NotEqual(t, 0, code, "arping across nodes must fail:\n%s", out)
	assert.Contains(t, out, "0 packets received")
}

// TestAntreaBridgeLayout checks `ovs-vsctl show` on every node: br-int with
// tun0 (vxlan, key=flow, remote_ip=flow), gw0 (internal), one port per pod.
func TestAntreaBridgeLayout(t *testing.T) {
	l := antreaLab
	const ns = "layout"
	pods := twoPodsPerNode(t, l, ns)
	for _, n := range antreaNodes {
		out := l.mustRun(t, "node-exec", n, "--", "ovs-vsctl", "show")
		for _, want := range []string{"Bridge br-int", "Port tun0", "type: vxlan", "options: {key=flow, remote_ip=flow}", "Port gw0", "type: internal"} {
			assert.Contains(t, out, want, "node %s", n)
		}
		ports := l.mustRun(t, "node-exec", n, "--", "ovs-vsctl", "--columns=name,external_ids", "find", "Interface", "external_ids:antrea/pod-namespace="+ns)
		for _, s := range []string{"a", "b"} {
			assert.Contains(t, ports, fmt.Sprintf(`"antrea/pod-name"=%s-%s`, n, s), "node %s has the port of its pod %s-%s", n, n, s)
		}
		assert.Equal(t, 2, strings.Count(ports, "name  "), "node %s has exactly its two pods of %s:\n%s", n, ns, ports)
	}
	// The port's name follows the seed's shape: pod-name prefix, dash, hash.
	out := l.mustRun(t, "node-exec", "node-1", "--", "ovs-vsctl", "list-ports", "br-int")
	assert.Regexp(t, regexp.MustCompile(`(?m)^node1a-[0-9a-f]{6}$`), out)
	_ = pods
}

// TestAntreaSpoofGuard sends, through ofproto/trace, packets from a pod's
// port with a forged source IP and a forged source MAC: table 10 drops
// both, while the genuine packet passes it.
func TestAntreaSpoofGuard(t *testing.T) {
	l := antreaLab
	const ns = "spoof"
	pods := twoPodsPerNode(t, l, ns)
	p := pods["node-1-a"]
	dst := pods["node-1-b"]
	ofport := strings.TrimSpace(l.mustRun(t, "node-exec", "node-1", "--", "ovs-vsctl", "--bare", "--columns=ofport", "find", "Interface", "external_ids:antrea/pod-name=node-1-a", "external_ids:antrea/pod-namespace="+ns))
	mac := strings.TrimSpace(l.mustRun(t, "exec", ns+"/"+p.Name, "--", "cat", "/sys/class/net/eth0/address"))
	require.NotEmpty(t, ofport)
	trace := func(srcMAC, srcIP string) string {
		flow := fmt.Sprintf("in_port=%s,tcp,dl_src=%s,dl_dst=aa:bb:cc:dd:ee:01,nw_src=%s,nw_dst=%s,tcp_dst=80", ofport, srcMAC, srcIP, dst.Status.PodIP)
		return l.mustRun(t, "node-exec", "node-1", "--", "sh", "-c", `ovs-appctl -t "$OVS_RUNDIR/ovs-vswitchd.ctl" ofproto/trace br-int '`+flow+`'`)
	}
	genuine := trace(mac, p.Status.PodIP)
	assert.Contains(t, genuine, "resubmit(,30)", "the genuine packet passes spoofguard:\n%s", genuine)
	for name, out := range map[string]string{
		"forged IP":  trace(mac, "10.10.99.99"),
		"forged MAC": trace("02:de:ad:be:ef:00", p.Status.PodIP),
	} {
		assert.Contains(t, out, "10. priority 0", "%s: dropped by table 10's miss flow:\n%s", name, out)
		assert.Contains(t, out, "Datapath actions: drop", name)
	}
}

// httpStream keeps one TCP connection open from a pod's namespace and
// sends a request on it every 50 ms, counting failures: a reset or a stall
// of the data path breaks it.
type httpStream struct {
	stop     chan struct{}
	done     chan struct{}
	requests int
	err      error
}

func startHTTPStream(t *testing.T, netns, addr string) *httpStream {
	t.Helper()
	s := &httpStream{stop: make(chan struct{}), done: make(chan struct{})}
	var conn net.Conn
	require.NoError(t, netnsutil.Do(netns, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		conn = c
		return err
	}))
	go func() {
		defer close(s.done)
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				s.err = err
				return
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				s.err = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s.requests++
		}
	}()
	return s
}

func (s *httpStream) finish() (int, error) {
	close(s.stop)
	<-s.done
	return s.requests, s.err
}

// pingLoss runs ping in a pod and returns how many of count were lost.
func startPing(l *Lab, pod, dst string, count int) (*exec.Cmd, *bytes.Buffer) {
	var out bytes.Buffer
	cmd := exec.Command(labBin, "--name", l.Layout.Name, "--state-dir", l.Layout.StateDir, "exec", pod, "--",
		"ping", "-i", "0.1", "-c", fmt.Sprint(count), "-W", "1", dst)
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Start()
	return cmd, &out
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func pingLost(t *testing.T, out string) int {
	t.Helper()
	m := pingStats.FindStringSubmatch(out)
	require.Len(t, m, 3, "ping output:\n%s", out)
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	return sent - got
}

// flowRounds returns the distinct flow rounds (top 16 bits of the cookie)
// installed on a node's br-int.
func flowRounds(t *testing.T, l *Lab, node string) map[string]int {
	t.Helper()
	out := l.mustRun(t, "node-exec", node, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int")
	rounds := map[string]int{}
	for _, m := range regexp.MustCompile(`cookie=0x([0-9a-f]+)`).FindAllStringSubmatch(out, -1) {
		c, err := strconv.ParseUint(m[1], 16, 64)
		require.NoError(t, err)
		if round := c >> 48; round != 0 { // round 0: learned (session affinity) flows
			rounds[fmt.Sprintf("%d", round)]++
		}
	}
	return rounds
}

// waitOldRoundsSwept waits until every flow of node belongs to one round
// that is not among before's.
func waitOldRoundsSwept(t *testing.T, l *Lab, node string, before map[string]int, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		after := flowRounds(t, l, node)
		if len(after) != 1 {
			return false
		}
		for r := range after {
			if _, old := before[r]; old {
				return false
			}
		}
		return true
	}, 30*time.Second, 250*time.Millisecond, msg)
}

// TestAntreaAgentRestart restarts node-1's agent while a long TCP stream
// and a ping run across nodes: no reset, at most 1 s of loss, and
// afterwards every flow belongs to the new agent's round.
func TestAntreaAgentRestart(t *testing.T) {
	l := antreaLab
	const ns = "agent-restart"
	pods := twoPodsPerNode(t, l, ns)
	src, dst := pods["node-1-a"], pods["node-2-a"]
	before := flowRounds(t, l, "node-1")
	require.Len(t, before, 1)

	stream := startHTTPStream(t, l.Layout.PodNetns(src.UID), net.JoinHostPort(dst.Status.PodIP, "80"))
	ping, pingOut := startPing(l, ns+"/"+src.Name, dst.Status.PodIP, 60)
	time.Sleep(time.Second)
	restartAgent(t, l, "node-1", nil)
	_ = ping.Wait()
	n, err := stream.finish()
	require.NoError(t, err, "the TCP connection across the restart broke after %d requests", n)
	assert.Greater(t, n, 50)
	lost := pingLost(t, pingOut.String())
	assert.LessOrEqual(t, lost, 10, "at most 1 s of pings (0.1 s apart) may be lost:\n%s", pingOut)

	// The restarted agent re-asserted every flow with its own round and
	// swept the old round.
	waitOldRoundsSwept(t, l, "node-1", before, "flows of the old round remain")
	out := l.mustRun(t, "probe", "--from", ns+"/"+pods["node-1-b"].Name, "--to", net.JoinHostPort(pods["node-3-a"].Status.PodIP, "80"), "--timeout", "3s")
	assert.Contains(t, out, "node-3-a")
}

// TestAntreaVswitchdRestart kills and restarts ovs-vswitchd on node-2:
// traffic to and from its pods comes back within 5 s.
func TestAntreaVswitchdRestart(t *testing.T) {
	l := antreaLab
	const ns = "vswitchd-restart"
	pods := twoPodsPerNode(t, l, ns)
	l.mustRun(t, "restart-ovs", "node-2")
	start := time.Now()
	pairs := [][2]string{{"node-1-a", "node-2-a"}, {"node-2-b", "node-3-a"}, {"node-2-a", "node-2-b"}}
	for _, p := range pairs {
		for {
			_, _, code := l.Run("probe", "--from", ns+"/"+pods[p[0]].Name, "--to", net.JoinHostPort(pods[p[1]].Status.PodIP, "80"), "--timeout", "500ms")
			if code == 0 {
				break
			}
			require.Less(t, time.Since(start), 5*time.Second, "%s -> %s not back 5 s after ovs-vswitchd restarted", p[0], p[1])
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("connectivity back %.2fs after ovs-vswitchd restarted", time.Since(start).Seconds())
}

// podMAC is the MAC of a pod's eth0.
func podMAC(t *testing.T, l *Lab, ns, pod string) string {
	t.Helper()
	return strings.TrimSpace(l.mustRun(t, "exec", ns+"/"+pod, "--", "cat", "/sys/class/net/eth0/address"))
}

// gatewayMACOf is the MAC of a node's gw0.
func gatewayMACOf(t *testing.T, l *Lab, node string) string {
	t.Helper()
	return strings.TrimSpace(l.mustRun(t, "node-exec", node, "--", "cat", "/sys/class/net/gw0/address"))
}

// podOFPort is the OVS port number of a pod on node.
func podOFPort(t *testing.T, l *Lab, node, ns, pod string) string {
	t.Helper()
	return strings.TrimSpace(l.mustRun(t, "node-exec", node, "--", "ovs-vsctl", "--bare", "--columns=ofport", "find", "Interface",
		"external_ids:antrea/pod-name="+pod, "external_ids:antrea/pod-namespace="+ns))
}

// ofTrace runs ofproto/trace of flow on node's br-int.
func ofTrace(t *testing.T, l *Lab, node, flow string) string {
	t.Helper()
	return l.mustRun(t, "node-exec", node, "--", "sh", "-c", `ovs-appctl -t "$OVS_RUNDIR/ovs-vswitchd.ctl" ofproto/trace br-int '`+flow+`'`)
}

// createPods creates pods and fails the test on the first error.
func createPods(t *testing.T, l *Lab, c context.Context, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		_, err := l.Client.CoreV1().Pods(p.Namespace).Create(c, p, metav1.CreateOptions{})
		require.NoError(t, err)
	}
}

// TestAntreaSCTPTrace follows SCTP packets through the pipeline with
// ofproto/trace (this kernel has no SCTP sockets): to a pod on the same
// node they leave through that pod's port, to a pod on another node through
// the tunnel towards that node.
func TestAntreaSCTPTrace(t *testing.T) {
	l := antreaLab
	const ns = "sctp-trace"
	pods := twoPodsPerNode(t, l, ns)
	src := pods["node-1-a"]
	mac := podMAC(t, l, ns, src.Name)
	portOf := func(pod string) string { return podOFPort(t, l, "node-1", ns, pod) }
	gwMAC := gatewayMACOf(t, l, "node-1")
	trace := func(dstMAC, dstIP string) string {
		return ofTrace(t, l, "node-1", fmt.Sprintf("in_port=%s,sctp,dl_src=%s,dl_dst=%s,nw_src=%s,nw_dst=%s,sctp_dst=80,nw_ttl=64",
			portOf("node-1-a"), mac, dstMAC, src.Status.PodIP, dstIP))
	}
	local := pods["node-1-b"]
	localMAC := podMAC(t, l, ns, local.Name)
	out := trace(localMAC, local.Status.PodIP)
	assert.Contains(t, out, "-> output port is "+portOf("node-1-b"), "same node: out of the destination pod's port:\n%s", out)

	remote := pods["node-2-a"]
	out = trace(gwMAC, remote.Status.PodIP)
	assert.Contains(t, out, "tun_dst="+remote.Status.HostIP, "other node: into the tunnel to node-2:\n%s", out)
	assert.Contains(t, out, "-> output port is 1", "other node: out of tun0 (ofport 1):\n%s", out)
}

// TestAntreaNodeRoutes adds a Node object for a node that does not run,
// changes its IP and removes it: node-1's tunnel flow and host route to its
// podCIDR follow each change.
func TestAntreaNodeRoutes(t *testing.T) {
	l := antreaLab
	c := ctx(t, time.Minute)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-phantom"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.10.200.0/24"},
	}
	_, err := l.Client.CoreV1().Nodes().Create(c, node, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = l.Client.CoreV1().Nodes().Delete(context.Background(), "node-phantom", metav1.DeleteOptions{})
	})
	setIP := func(ip string) {
		// The controller manager updates the node too (taints): retry on
		// conflicts with the latest version.
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := l.Client.CoreV1().Nodes().Get(c, "node-phantom", metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
			_, err = l.Client.CoreV1().Nodes().UpdateStatus(c, n, metav1.UpdateOptions{})
			return err
		}))
	}
	state := func() (string, string) {
		flows := l.mustRun(t, "node-exec", "node-1", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=70")
		routes := l.mustRun(t, "node-exec", "node-1", "--", "ip", "route", "show", "10.10.200.0/24")
		return flows, routes
	}
	waitFor := func(what string, ok func(flows, routes string) bool) {
		t.Helper()
		var flows, routes string
		require.Eventually(t, func() bool { flows, routes = state(); return ok(flows, routes) }, 20*time.Second, 200*time.Millisecond,
			"%s\nflows:\n%s\nroutes:\n%s", what, flows, routes)
	}

	setIP("172.18.0.99")
	waitFor("tunnel flow and route to the new node", func(flows, routes string) bool {
		return strings.Contains(flows, "nw_dst=10.10.200.0/24") && strings.Contains(flows, "172.18.0.99->tun_dst") &&
			strings.Contains(routes, "10.10.200.0/24 via 10.10.200.1 dev gw0 onlink")
	})
	setIP("172.18.0.98")
	waitFor("tunnel flow follows the node's new IP", func(flows, _ string) bool {
		return strings.Contains(flows, "172.18.0.98->tun_dst") && !strings.Contains(flows, "172.18.0.99")
	})
	require.NoError(t, l.Client.CoreV1().Nodes().Delete(c, "node-phantom", metav1.DeleteOptions{}))
	waitFor("flow and route removed with the node", func(flows, routes string) bool {
		return !strings.Contains(flows, "10.10.200.0/24") && strings.TrimSpace(routes) == ""
	})
}

// TestAntreaClusterIP reaches a Service's ClusterIP from a pod on a third
// node over TCP and UDP: connections are spread over both endpoints (one
// per node) by the OVS select group, and replies come back un-NATed.
func TestAntreaClusterIP(t *testing.T) {
	l := antreaLab
	const ns = "clusterip"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	for _, n := range []string{"node-1", "node-2"} {
		p := servingPod(ns, "backend-"+n, n)
		p.Labels["app"] = "backend"
		_, err := l.Client.CoreV1().Pods(ns).Create(c, p, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, "client", "node-3"), metav1.CreateOptions{})
	require.NoError(t, err)
	svc, err := l.Client.CoreV1().Services(ns).Create(c, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "backend"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 5353, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolUDP},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(3))

	seen := map[string]bool{}
	require.Eventually(t, func() bool {
		out, _, code := l.Run("probe", "--from", ns+"/client", "--to", net.JoinHostPort(svc.Spec.ClusterIP, "8080"), "--timeout", "2s")
		if code == 0 {
			for _, b := range []string{"backend-node-1", "backend-node-2"} {
				if strings.Contains(out, `"`+b+`"`) {
					seen[b] = true
				}
			}
		}
		return len(seen) == 2
	}, 60*time.Second, 100*time.Millisecond, "TCP to the ClusterIP should reach both endpoints, saw %v", seen)

	out := l.mustRun(t, "probe", "--from", ns+"/client", "--to", net.JoinHostPort(svc.Spec.ClusterIP, "5353"), "--protocol", "udp", "--timeout", "3s")
	assert.Contains(t, out, `"backend-node-`, "UDP through the ClusterIP")

	// The flow and group in OVS have the expected shape.
	flows := l.mustRun(t, "node-exec", "node-3", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int", "table=40")
	assert.Contains(t, flows, "nw_dst="+svc.Spec.ClusterIP)
	groups := l.mustRun(t, "node-exec", "node-3", "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-groups", "br-int")
	assert.Contains(t, groups, "type=select")
	assert.Contains(t, groups, "nat(dst=")
}

// TestAntreaMatrixThroughServices probes every pod pair through each
// target pod's own Service (s-<namespace>-<pod>, as the upstream
// NetworkPolicy suite names them) with `matrix --to service`.
func TestAntreaMatrixThroughServices(t *testing.T) {
	l := antreaLab
	const ns = "svc-matrix"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		name := "p-" + n
		_, err := l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, name, n), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = l.Client.CoreV1().Services(ns).Create(c, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s-" + ns + "-" + name, Namespace: ns},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"pod": name},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	waitPods(t, l, ns, "", time.Minute, allRunningReady(3))
	// The diagonal is a pod reaching itself through its own Service
	// (hairpin): source-NATed to the hairpin address and sent back in.
	allConnected := func(out string) bool {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 {
			return false
		}
		for _, line := range lines[1:] {
			for _, cell := range strings.Fields(line)[1:] {
				if cell != "." {
					return false
				}
			}
		}
		return true
	}
	var out string
	require.Eventually(t, func() bool {
		o, _, code := l.Run("matrix", "--namespaces", ns, "--port", "80", "--to", "service", "--attempts", "3")
		out = o
		return code == 0 && allConnected(o)
	}, 60*time.Second, time.Second, "every pod reaches every pod, itself included, through its Service:\n%s", out)
}
