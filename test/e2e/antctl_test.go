package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
	"github.com/ovs-cni/antrea/pkg/supportbundle"
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
	// A Service by name: its ClusterIP, DNATed to its one endpoint (web).
	svc := service(ns, "websvc", "web", corev1.ServiceTypeClusterIP)
	svc.Spec.Selector = map[string]string{"pod": "web"}
	_, err = l.Client.CoreV1().Services(ns).Create(c, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		out, _, code := l.Run("antctl", "--node", "node-1", "--", "trace-packet", "-S", ns+"/client", "-D", ns+"/websvc")
		return code == 0 && strings.Contains(out, "result: delivered to pod antctl/web")
	}, 30*time.Second, 300*time.Millisecond, "the Service's ClusterIP leads to web once its flows are in")
	out = antctl("--node", "node-1", "--", "trace-packet", "-S", ns+"/client", "-D", ns+"/websvc")
	t.Logf("trace through the Service:\n%s", out)
	assert.Contains(t, out, "service: antctl/websvc (its ClusterIP)")
	assert.Regexp(t, `40 DNAT\s+service\s`, out, "the Service's flow in table 40 decided the endpoint")

	out = antctl("--node", "node-1", "--", "version")
	assert.Regexp(t, `antctl version: \S+\nagent version: \S+`, out)

	_, errOut, code := l.Run("antctl", "--node", "node-1", "--", "get", "ovsflows", "-p", ns+"/nope")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "pod antctl/nope on this node: not found")
}

// TestAntctlSupportBundle collects support bundles from the lab: against
// the cluster (every node over the agents' HTTPS API, and the
// controller), and on node-1 over its agent's socket. Each archive's index
// lists every file; the agent's log, the flows by table, the OVS database,
// the effective configuration and the node's network are there; only the
// container logs through the API server fail (the lab kubelet serves no
// logs), and the controller's log is in the bundle of its node.
func TestAntctlSupportBundle(t *testing.T) {
	l := antreaLab
	dir := t.TempDir()
	out := l.mustRun(t, "antctl", "--", "supportbundle", "--dir", filepath.Join(dir, "cluster"), "--max-log-size", "4Mi")
	t.Logf("antctl supportbundle:\n%s", out)
	for _, n := range antreaNodes {
		assert.Regexp(t, `node/`+n+`\s+\S+/supportbundle-`+n+`-\d{8}T\d{6}Z\.tar\.gz\s`, out)
	}
	assert.Regexp(t, `controller\s+\S+/supportbundle-controller-\S+\.tar\.gz\s`, out)
	assert.NotContains(t, out, "ERROR")

	pods, err := l.Client.CoreV1().Pods(cluster.AntreaNamespace).List(ctx(t, 30*time.Second), metav1.ListOptions{LabelSelector: cluster.ControllerSelector})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	controllerNode := pods.Items[0].Spec.NodeName

	for _, n := range antreaNodes {
		files, idx := openBundle(t, filepath.Join(dir, "cluster"), "supportbundle-"+n+"-*.tar.gz")
		assert.Equal(t, "node/"+n, idx.Subject)
		checkNodeBundle(t, n, files, idx)
		for _, e := range idx.Failed() {
			assert.True(t, strings.HasPrefix(e.Path, "k8s/logs/"), "only the container logs through the API server fail in the lab: %s: %s", e.Path, e.Error)
		}
		assert.Contains(t, string(files["k8s/agent-pod.yaml"]), "nodeName: "+n)
		if n == controllerNode {
			assert.Contains(t, string(files["logs/antrea-controller.log"]), "Computed the initial state", "the controller's log on its node")
		}
	}
	files, idx := openBundle(t, filepath.Join(dir, "cluster"), "supportbundle-controller-*.tar.gz")
	assert.Equal(t, "controller", idx.Subject)
	assert.Contains(t, string(files["controller/controllerinfo.json"]), `"available": true`)
	assert.Contains(t, string(files["k8s/antrea-configmaps.yaml"]), "antrea-agent.conf")
	assert.Contains(t, string(files["k8s/antrea-pods.yaml"]), "antrea-agent-")
	checkIndex(t, files, idx)

	// On node-1, through its agent's socket: the same agent part.
	out = l.mustRun(t, "antctl", "--node", "node-1", "--", "supportbundle", "--dir", filepath.Join(dir, "local"))
	t.Logf("antctl supportbundle on node-1:\n%s", out)
	files, idx = openBundle(t, filepath.Join(dir, "local"), "supportbundle-node-1-*.tar.gz")
	checkNodeBundle(t, "node-1", files, idx)
	assert.Empty(t, idx.Failed(), "everything of the node is collected")

	_, errOut, code := l.Run("antctl", "--", "supportbundle", "--node", "node-9")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, `--node "node-9": no such node`)
	_, errOut, code = l.Run("antctl", "--", "supportbundle", "--max-log-size", "1Gi")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "--max-log-size 1Gi: must be between 1Ki and 128Mi")
}

func openBundle(t *testing.T, dir, pattern string) (map[string][]byte, *supportbundle.Index) {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(t, err)
	require.Len(t, m, 1, "%s in %s", pattern, dir)
	f, err := os.Open(m[0])
	require.NoError(t, err)
	defer f.Close()
	files, err := supportbundle.Files(f)
	require.NoError(t, err)
	var idx supportbundle.Index
	require.NoError(t, json.Unmarshal(files[supportbundle.IndexFile], &idx))
	return files, &idx
}

// checkIndex: every file of the bundle is in its index, with its size,
// and every item of the index has a status, and an error unless ok.
func checkIndex(t *testing.T, files map[string][]byte, idx *supportbundle.Index) {
	t.Helper()
	indexed := map[string]supportbundle.Entry{}
	for _, e := range idx.Items {
		indexed[e.Path] = e
		assert.Contains(t, []string{supportbundle.StatusOK, supportbundle.StatusFailed, supportbundle.StatusSkipped}, e.Status, e.Path)
		if e.Status != supportbundle.StatusOK {
			assert.NotEmpty(t, e.Error, "%s %s says why", e.Path, e.Status)
		}
	}
	for name, data := range files {
		if name == supportbundle.IndexFile {
			continue
		}
		e, ok := indexed[name]
		if assert.True(t, ok, "%s is in the index", name) {
			assert.Equal(t, int64(len(data)), e.Size, name)
		}
	}
}

func checkNodeBundle(t *testing.T, node string, files map[string][]byte, idx *supportbundle.Index) {
	t.Helper()
	checkIndex(t, files, idx)
	status := map[string]string{}
	for _, e := range idx.Items {
		status[e.Path] = e.Status
	}
	for _, p := range []string{"agent/agentinfo.json", "agent/podinterfaces.json", "agent/networkpolicies.json", "agent/ovsflows.json",
		"agent/config.yaml", "agent/antrea-agent.conf", "agent/metrics.txt", "logs/antrea-agent.log", "logs/ovs/ovs-vswitchd.log",
		"ovs/flows.txt", "ovs/groups.txt", "ovs/ports.txt", "ovs/vsctl-show.txt", "ovs/ovsdb-dump.txt", "ovs/dpif-show.txt",
		"node/ip-addr.txt", "node/ip-route.txt", "node/ip-rule.txt", "node/ip-neigh.txt", "node/nftables.txt", "node/uname.txt"} {
		assert.Equal(t, supportbundle.StatusOK, status[p], "%s of %s", p, node)
	}
	assert.Contains(t, string(files["logs/antrea-agent.log"]), `"Agent ready"`, "the agent's log")
	flows := string(files["ovs/flows.txt"])
	for _, table := range []string{"# table 0 Classification:", "# table 10 SpoofGuard:", "# table 70 L3Forwarding:", "# table 110 Output:"} {
		assert.Contains(t, flows, table, "flows by table, with our table names")
	}
	assert.Regexp(t, `table=70, n_packets=\d+`, flows, "with counters")
	assert.Contains(t, string(files["ovs/ovsdb-dump.txt"]), "br-int")
	assert.Contains(t, string(files["ovs/vsctl-show.txt"]), `Bridge br-int`)
	assert.Contains(t, string(files["agent/agentinfo.json"]), `"nodeName": "`+node+`"`)
	assert.Contains(t, string(files["agent/config.yaml"]), "nodeName: "+node)
	assert.Contains(t, string(files["agent/config.yaml"]), "ovsDatapathType: netdev")
	assert.Contains(t, string(files["node/ip-addr.txt"]), "gw0")
	assert.Contains(t, string(files["node/nftables.txt"]), "table ip antrea")
	assert.Contains(t, string(files["agent/metrics.txt"]), "antrea_agent_ovs_flows")
}
