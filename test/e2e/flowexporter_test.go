package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

// nfacctdPrimitives maps the IPFIX elements the test reads to pmacct
// primitives: Antrea's enterprise elements (PEN 56506), the IANA total
// counters and the RFC 5103 reverse ones (PEN 29305).
const nfacctdPrimitives = `name=src_pod_ns	field_type=56506:100	len=vlen	semantics=str
name=src_pod	field_type=56506:101	len=vlen	semantics=str
name=dst_pod_ns	field_type=56506:102	len=vlen	semantics=str
name=dst_pod	field_type=56506:103	len=vlen	semantics=str
name=src_node	field_type=56506:104	len=vlen	semantics=str
name=dst_node	field_type=56506:105	len=vlen	semantics=str
name=svc_ip	field_type=56506:106	len=4	semantics=ip
name=svc_port	field_type=56506:108	len=2	semantics=u_int
name=svc_name	field_type=56506:109	len=vlen	semantics=str
name=ing_np	field_type=56506:110	len=vlen	semantics=str
name=ing_np_ns	field_type=56506:111	len=vlen	semantics=str
name=ing_rule	field_type=56506:141	len=vlen	semantics=str
name=egr_np	field_type=56506:112	len=vlen	semantics=str
name=egr_np_ns	field_type=56506:113	len=vlen	semantics=str
name=egr_rule	field_type=56506:142	len=vlen	semantics=str
name=flow_type	field_type=56506:137	len=1	semantics=u_int
name=pkt_total	field_type=86	len=8	semantics=u_int
name=oct_total	field_type=85	len=8	semantics=u_int
name=rev_pkt_total	field_type=29305:86	len=8	semantics=u_int
name=rev_oct_total	field_type=29305:85	len=8	semantics=u_int
name=end_reason	field_type=136	len=1	semantics=u_int
`

// collectorRecord is one line of nfacctd's JSON output.
type collectorRecord map[string]any

func (r collectorRecord) str(k string) string {
	switch v := r[k].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	}
	return ""
}

func (r collectorRecord) num(k string) uint64 {
	var n uint64
	_, _ = fmt.Sscan(r.str(k), &n)
	return n
}

// startNfacctd runs pmacct's IPFIX collector on the lab's external host,
// printing every record it receives, with our primitives, as JSON lines
// into the returned file.
func startNfacctd(t *testing.T, l *Lab, port int) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.json")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "primitives.lst"), []byte(nfacctdPrimitives), 0o644))
	conf := fmt.Sprintf(`daemonize: false
nfacctd_ip: %s
nfacctd_port: %d
aggregate_primitives: %s
plugins: print[flows]
aggregate[flows]: peer_src_ip, src_host, dst_host, src_port, dst_port, proto, src_pod_ns, src_pod, dst_pod_ns, dst_pod, src_node, dst_node, svc_ip, svc_port, svc_name, ing_np, ing_np_ns, ing_rule, egr_np, egr_np_ns, egr_rule, flow_type, pkt_total, oct_total, rev_pkt_total, rev_oct_total, end_reason
print_output[flows]: json
print_output_file[flows]: %s
print_output_file_append[flows]: true
print_refresh_time[flows]: 1
`, layout.ExternalIP, port, filepath.Join(dir, "primitives.lst"), out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nfacctd.conf"), []byte(conf), 0o644))
	logf, err := os.Create(filepath.Join(dir, "nfacctd.log"))
	require.NoError(t, err)
	cmd := exec.Command("ip", "netns", "exec", l.Layout.ExternalNetns(), "nfacctd", "-f", filepath.Join(dir, "nfacctd.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// nfacctd forks its print plugin: end the whole group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "nfacctd.log"))
			t.Logf("nfacctd log:\n%s", data)
		}
	})
	require.Eventually(t, func() bool {
		out, _, code := l.Run("node-exec", "external", "--", "ss", "-Hlun", fmt.Sprintf("sport = :%d", port))
		return code == 0 && strings.Contains(out, fmt.Sprintf(":%d", port))
	}, 10*time.Second, 100*time.Millisecond, "nfacctd listens on UDP %d", port)
	return out
}

// readCollector parses what nfacctd printed so far.
func readCollector(t *testing.T, path string) []collectorRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []collectorRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r collectorRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// TestFlowExporter turns the agents' flow exporter on, makes connections
// between pods of one node, across nodes and through a ClusterIP under
// NetworkPolicies, and reads the records back from pmacct's nfacctd
// (IPFIX over UDP) on the external host: addresses, ports, counters,
// pods, nodes, the Service and the rules that allowed each connection.
func TestFlowExporter(t *testing.T) {
	l := antreaLab
	const ns = "flowexp"
	const port = 4739
	flows := startNfacctd(t, l, port)

	l.mustRun(t, "antrea", "apply", "--set", fmt.Sprintf(
		"agent.flowExporter={enable: true, collectorAddress: %q, pollInterval: 1s, activeFlowExportTimeout: 5s, idleFlowExportTimeout: 2s}",
		fmt.Sprintf("%s:%d:udp", layout.ExternalIP, port)))
	t.Cleanup(func() { l.mustRun(t, "antrea", "apply", "--set", "agent.flowExporter=null") })

	createNamespace(t, l, ns)
	c := ctx(t, 3*time.Minute)
	client := labPod(ns, "client", "node-1")
	client.Labels["app"] = "client"
	web1, web2 := servingPod(ns, "web1", "node-1"), servingPod(ns, "web2", "node-2")
	web1.Labels["app"], web2.Labels["app"] = "web", "web"
	createPods(t, l, c, client, web1, web2)
	ips := map[string]string{}
	for _, p := range waitPods(t, l, ns, "", 2*time.Minute, allRunningReady(3)) {
		ips[p.Name] = p.Status.PodIP
	}
	svc, err := l.Client.CoreV1().Services(ns).Create(c, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	tcp80 := intstr.FromInt32(80)
	for _, np := range []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "web-from-client", Namespace: ns}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &tcp80}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "client-to-web", Namespace: ns}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}}}},
	} {
		_, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, np, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	// Traffic only once the policies are realized where they apply, so
	// that the commits record their rules.
	for node, policies := range map[string][]string{"node-1": {"client-to-web", "web-from-client"}, "node-2": {"web-from-client"}} {
		for _, p := range policies {
			require.Eventually(t, func() bool {
				out, _, code := l.Run("antctl", "--node", node, "--", "get", "ovsflows", "--policy", ns+"/"+p)
				return code == 0 && strings.Contains(out, "conj")
			}, time.Minute, 300*time.Millisecond, "%s realized on %s", p, node)
		}
	}

	// 100 kB up each connection, from a source port of our choice.
	const upload = 100000
	send := func(dst string, sport int) {
		t.Helper()
		require.Eventually(t, func() bool {
			_, _, code := l.Run("exec", ns+"/client", "--", "sh", "-c", fmt.Sprintf(
				"head -c %d /dev/zero | curl -s -m 5 --local-port %d --data-binary @- -o /dev/null http://%s/", upload, sport, dst))
			return code == 0
		}, time.Minute, time.Second, "client reaches %s", dst)
	}
	send(ips["web1"]+":80", 41001)
	send(ips["web2"]+":80", 41002)
	send(svc.Spec.ClusterIP+":8080", 41003)

	node1, node2 := nodeIP(t, l, "node-1"), nodeIP(t, l, "node-2")
	find := func(exporter string, sport int) collectorRecord {
		for _, r := range readCollector(t, flows) {
			if r.str("peer_ip_src") == exporter && r.num("port_src") == uint64(sport) && r.num("oct_total") >= upload {
				return r
			}
		}
		return nil
	}
	var intra, interSrc, interDst, viaSvc collectorRecord
	defer func() {
		if t.Failed() {
			for _, n := range []string{"node-1", "node-2"} {
				fams := agentMetrics(t, l, n)
				t.Logf("%s: records exported %v, export errors %v", n, counterValue(fams, "antrea_agent_flow_exporter_records_exported_total", nil),
					counterValue(fams, "antrea_agent_flow_exporter_export_errors_total", nil))
			}
			data, _ := os.ReadFile(flows)
			t.Logf("nfacctd printed:\n%s", data)
			for _, n := range []string{"node-1", "node-2"} {
				for _, line := range strings.Split(agentLog(t, l, n), "\n") {
					if strings.Contains(line, "low exporter") || strings.Contains(line, "IPFIX") {
						t.Logf("%s agent: %s", n, line)
					}
				}
			}
		}
	}()
	require.Eventually(t, func() bool {
		intra, interSrc, interDst, viaSvc = find(node1, 41001), find(node1, 41002), find(node2, 41002), find(node1, 41003)
		return intra != nil && interSrc != nil && interDst != nil && viaSvc != nil
	}, time.Minute, time.Second, "nfacctd got each connection's record (from node-1 at %s, node-2 at %s)", node1, node2)

	common := func(t *testing.T, r collectorRecord, dstPod string) {
		t.Helper()
		assert.Equal(t, ips["client"], r.str("ip_src"))
		assert.Equal(t, ips[dstPod], r.str("ip_dst"), "the destination is the endpoint")
		assert.Equal(t, uint64(80), r.num("port_dst"))
		assert.Equal(t, "tcp", r.str("ip_proto"))
		assert.Equal(t, ns, r.str("dst_pod_ns"))
		assert.Equal(t, dstPod, r.str("dst_pod"))
		assert.Equal(t, "client", r.str("src_pod"))
		assert.Equal(t, ns, r.str("src_pod_ns"))
		assert.Equal(t, "node-1", r.str("src_node"))
		// The upload and the headers of its packets; the reply is small.
		assert.Less(t, r.num("oct_total"), uint64(upload*11/10))
		assert.GreaterOrEqual(t, r.num("pkt_total"), uint64(upload/1500))
		assert.Greater(t, r.num("rev_pkt_total"), uint64(0))
		assert.Greater(t, r.num("rev_oct_total"), uint64(0))
		assert.Less(t, r.num("rev_oct_total"), uint64(upload/10))
	}
	egress := func(t *testing.T, r collectorRecord) {
		t.Helper()
		assert.Equal(t, "client-to-web", r.str("egr_np"))
		assert.Equal(t, ns, r.str("egr_np_ns"))
		assert.Equal(t, "egress-0", r.str("egr_rule"))
	}
	ingress := func(t *testing.T, r collectorRecord) {
		t.Helper()
		assert.Equal(t, "web-from-client", r.str("ing_np"))
		assert.Equal(t, ns, r.str("ing_np_ns"))
		assert.Equal(t, "ingress-0", r.str("ing_rule"))
	}

	t.Run("same node", func(t *testing.T) {
		common(t, intra, "web1")
		assert.Equal(t, "node-1", intra.str("dst_node"))
		assert.Equal(t, uint64(1), intra.num("flow_type"), "intra-node")
		egress(t, intra)
		ingress(t, intra)
	})
	t.Run("across nodes, from the client's node", func(t *testing.T) {
		common(t, interSrc, "web2")
		assert.Equal(t, "node-2", interSrc.str("dst_node"))
		assert.Equal(t, uint64(2), interSrc.num("flow_type"), "inter-node")
		egress(t, interSrc)
		assert.Empty(t, interSrc.str("ing_np"), "ingress is enforced on node-2")
	})
	t.Run("across nodes, from the server's node", func(t *testing.T) {
		common(t, interDst, "web2")
		ingress(t, interDst)
		assert.Empty(t, interDst.str("egr_np"), "egress was enforced on node-1")
		// Both ends counted the same packets.
		assert.Equal(t, interSrc.num("pkt_total"), interDst.num("pkt_total"))
		assert.Equal(t, interSrc.num("oct_total"), interDst.num("oct_total"))
	})
	t.Run("through the ClusterIP", func(t *testing.T) {
		dst := viaSvc.str("dst_pod")
		require.Contains(t, []string{"web1", "web2"}, dst)
		common(t, viaSvc, dst)
		assert.Equal(t, svc.Spec.ClusterIP, viaSvc.str("svc_ip"))
		assert.Equal(t, uint64(8080), viaSvc.num("svc_port"))
		assert.Equal(t, ns+"/web:http", viaSvc.str("svc_name"))
		egress(t, viaSvc)
	})
	t.Run("end of flow and metrics", func(t *testing.T) {
		for _, r := range []collectorRecord{intra, interSrc, interDst, viaSvc} {
			assert.Equal(t, uint64(3), r.num("end_reason"), "closed TCP connections end with endOfFlow")
		}
		for _, node := range []string{"node-1", "node-2"} {
			fams := agentMetrics(t, l, node)
			assert.Greater(t, counterValue(fams, "antrea_agent_flow_exporter_records_exported_total", nil), 0.0, node)
			assert.Zero(t, counterValue(fams, "antrea_agent_flow_exporter_export_errors_total", nil), node)
		}
	})
}

// nodeIP is a node's InternalIP.
func nodeIP(t *testing.T, l *Lab, node string) string {
	t.Helper()
	n, err := l.Client.CoreV1().Nodes().Get(ctx(t, 10*time.Second), node, metav1.GetOptions{})
	require.NoError(t, err)
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	t.Fatalf("node %s has no InternalIP", node)
	return ""
}
