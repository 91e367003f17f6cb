package antctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/supportbundle"
)

// agentBundle writes a small agent bundle, as an agent would.
func agentBundle(node string) agentapi.BundleFunc {
	return func(_ context.Context, w io.Writer, opts agentapi.BundleOptions) error {
		bw := supportbundle.NewWriter(w, "supportbundle-"+node+"-x", "node/"+node, "antrea-agent v1 on "+node)
		if err := bw.Add(supportbundle.Entry{Path: "logs/antrea-agent.log", Status: supportbundle.StatusOK}, []byte("agent log, max "+strconv.FormatInt(opts.MaxLogBytes, 10)+"\n")); err != nil {
			return err
		}
		if err := bw.Add(supportbundle.Entry{Path: "node/nftables.txt", Status: supportbundle.StatusFailed, Error: "nft: not found"}, nil); err != nil {
			return err
		}
		return bw.Close()
	}
}

func bundleFiles(t *testing.T, path string) (map[string][]byte, *supportbundle.Index) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	files, err := supportbundle.Files(f)
	require.NoError(t, err)
	var idx supportbundle.Index
	require.NoError(t, json.Unmarshal(files[supportbundle.IndexFile], &idx))
	return files, &idx
}

func entries(idx *supportbundle.Index) map[string]supportbundle.Entry {
	out := map[string]supportbundle.Entry{}
	for _, e := range idx.Items {
		out[e.Path] = e
	}
	return out
}

func TestSupportBundleFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad size", []string{"supportbundle", "--max-log-size", "lots"}, `--max-log-size "lots": not a quantity such as 16Mi`},
		{"size too small", []string{"supportbundle", "--max-log-size", "100"}, "--max-log-size 100: must be between 1Ki and 128Mi"},
		{"size too large", []string{"supportbundle", "--max-log-size", "1Gi"}, "--max-log-size 1Gi: must be between 1Ki and 128Mi"},
		{"node with local", []string{"supportbundle", "--local", "--node", "n1"}, "--node: not with --local or --agent-socket"},
		{"node with a socket", []string{"--agent-socket", "/x.sock", "supportbundle", "--node", "n1"}, "--node: not with --local or --agent-socket"},
		{"empty node", []string{"supportbundle", "--node", "a,,b"}, "--node: empty node name"},
		{"unusable dir", []string{"supportbundle", "--local", "--dir", "/proc/no/such"}, `--dir "/proc/no/such"`},
		{"arguments", []string{"supportbundle", "node-1"}, `unknown command "node-1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestSupportBundleLocal(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = agentapi.Serve(ctx, socket, agentapi.Sources{Inspector: fakeAgent{}, SupportBundle: agentBundle("node-1")})
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 5*time.Second, 10*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "out")

	out, err := run(t, "--agent-socket", socket, "supportbundle", "--dir", dir, "--max-log-size", "2Ki")
	require.NoError(t, err)
	assert.Regexp(t, `BUNDLE\s+FILE\s+SIZE\s+ITEMS\s+FAILED\nnode/node-1\s+\S+supportbundle-node-1-\d{8}T\d{6}Z\.tar\.gz\s+\d+ B\s+2\s+1\n`, out)
	assert.Contains(t, out, "node/node-1: node/nftables.txt failed: nft: not found")
	matches, err := filepath.Glob(filepath.Join(dir, "supportbundle-node-1-*.tar.gz"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one archive, no partial file left")
	files, idx := bundleFiles(t, matches[0])
	assert.Equal(t, "agent log, max 2048\n", string(files["logs/antrea-agent.log"]))
	assert.Len(t, idx.Items, 2)

	out, err = run(t, "--agent-socket", socket, "-o", "json", "supportbundle", "--dir", dir)
	require.NoError(t, err)
	var results []BundleResult
	require.NoError(t, json.Unmarshal([]byte(out), &results))
	require.Len(t, results, 1)
	assert.Equal(t, "node/node-1", results[0].Subject)
	assert.Equal(t, "node/nftables.txt", results[0].Failed[0].Path)

	_, err = run(t, "--agent-socket", filepath.Join(t.TempDir(), "none.sock"), "supportbundle", "--dir", dir)
	assert.ErrorContains(t, err, "1 of 1 bundles are missing")
}

// fakeCluster is a kube-apiserver with two nodes; node-1's agent serves
// its bundle over HTTPS, node-2 has no agent pod; the controller's logs
// cannot be read (as in the lab, without a kubelet API).
func fakeCluster(t *testing.T) (kubeconfig string) {
	t.Helper()
	agent := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != agentapi.PathSupportBundle {
			http.NotFound(w, r)
			return
		}
		n, _ := strconv.ParseInt(r.URL.Query().Get("maxLogBytes"), 10, 64)
		_ = agentBundle("node-1")(r.Context(), w, agentapi.BundleOptions{MaxLogBytes: n})
	}))
	t.Cleanup(agent.Close)
	u, err := url.Parse(agent.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)

	node := func(name string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
	}
	agentPod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "antrea-agent-abcde", Namespace: "kube-system"},
		Spec: corev1.PodSpec{NodeName: "node-1", InitContainers: []corev1.Container{{Name: "install-cni"}},
			Containers: []corev1.Container{{Name: "antrea-agent", Ports: []corev1.ContainerPort{{Name: "api", ContainerPort: int32(port)}}}, {Name: "antrea-ovs"}}},
		Status: corev1.PodStatus{HostIP: "127.0.0.1", ContainerStatuses: []corev1.ContainerStatus{{Name: "antrea-ovs", RestartCount: 2}}},
	}
	controllerPod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "antrea-controller-xyz", Namespace: "kube-system"},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "antrea-controller"}}}}
	podList := func(pods ...corev1.Pod) any {
		return corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: pods}
	}
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		var v any
		switch p := r.URL.Path; {
		case p == "/api/v1/nodes":
			v = corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, Items: []corev1.Node{node("node-2"), node("node-1")}}
		case p == "/api/v1/namespaces/kube-system/pods" && q.Get("labelSelector") == agentSelector:
			if q.Get("fieldSelector") == "spec.nodeName=node-1" {
				v = podList(agentPod)
			} else {
				v = podList()
			}
		case p == "/api/v1/namespaces/kube-system/pods" && q.Get("labelSelector") == controllerSelector:
			v = podList(controllerPod)
		case p == "/api/v1/namespaces/kube-system/pods":
			v = podList(agentPod, controllerPod)
		case strings.HasPrefix(p, "/api/v1/namespaces/kube-system/pods/antrea-agent-abcde/log"):
			prev := ""
			if q.Get("previous") == "true" {
				prev = " (previous)"
			}
			_, _ = io.WriteString(w, "line 1 of "+q.Get("container")+prev+"\nline 2\n")
			return
		case strings.HasPrefix(p, "/api/v1/namespaces/kube-system/pods/antrea-controller-xyz/log"):
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Get \"https://node-1:10250/containerLogs\": connection refused","code":500}`, http.StatusInternalServerError)
			return
		case p == "/api/v1/namespaces/kube-system/events":
			v = corev1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "v1"}, Items: []corev1.Event{
				{ObjectMeta: metav1.ObjectMeta{Name: "e1"}, InvolvedObject: corev1.ObjectReference{Name: "antrea-agent-abcde"}, Message: "Started container"},
				{ObjectMeta: metav1.ObjectMeta{Name: "e2"}, InvolvedObject: corev1.ObjectReference{Name: "coredns-1"}, Message: "not ours"},
			}}
		case p == "/api/v1/namespaces/kube-system/configmaps":
			v = corev1.ConfigMapList{TypeMeta: metav1.TypeMeta{Kind: "ConfigMapList", APIVersion: "v1"}, Items: []corev1.ConfigMap{
				{ObjectMeta: metav1.ObjectMeta{Name: "antrea-config-abc"}, Data: map[string]string{"antrea-agent.conf": "tunnelType: geneve\n"}}}}
		case p == "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.controlplane.antrea.io":
			v = apiregistrationv1.APIService{TypeMeta: metav1.TypeMeta{Kind: "APIService", APIVersion: "apiregistration.k8s.io/v1"},
				ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.controlplane.antrea.io"},
				Status:     apiregistrationv1.APIServiceStatus{Conditions: []apiregistrationv1.APIServiceCondition{{Type: "Available", Status: "True"}}}}
		case strings.HasPrefix(p, "/apis/controlplane.antrea.io/v1beta1/"):
			v = map[string]any{"kind": "List", "items": []any{map[string]any{"metadata": map[string]string{"name": "np-1"}}}}
		case p == "/version":
			v = version.Info{GitVersion: "v1.33.0"}
		default:
			t.Logf("fake API server: no %s %s", r.Method, r.URL)
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(api.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+api.URL+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	return kubeconfig
}

func TestSupportBundleCluster(t *testing.T) {
	kubeconfig := fakeCluster(t)
	dir := t.TempDir()
	var out bytes.Buffer
	cmd := NewCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--kubeconfig", kubeconfig, "supportbundle", "--dir", dir, "--max-log-size", "4Ki"})
	err := cmd.ExecuteContext(context.Background())
	t.Logf("antctl supportbundle:\n%s", out.String())
	assert.EqualError(t, err, "1 of 3 bundles are missing or lack their agent's part (see ERROR)")
	assert.Regexp(t, `node/node-1\s+\S+/supportbundle-node-1-\S+\.tar\.gz\s+\S+ \S*B\s+\d+\s+1\n`, out.String())
	assert.Regexp(t, `node/node-2\s+\S+/supportbundle-node-2-\S+\.tar\.gz`, out.String(), "an archive with what the API server knows")
	assert.Regexp(t, `controller\s+\S+/supportbundle-controller-\S+\.tar\.gz`, out.String())
	assert.Contains(t, out.String(), "ERROR node/node-2: no agent part: node node-2 has 0 agent pods")
	assert.Contains(t, out.String(), "controller: k8s/logs/antrea-controller-xyz/antrea-controller.log failed: logs of antrea-controller-xyz/antrea-controller:")

	glob := func(pattern string) string {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		require.NoError(t, err)
		require.Len(t, m, 1, pattern)
		return m[0]
	}
	files, idx := bundleFiles(t, glob("supportbundle-node-1-*.tar.gz"))
	assert.Equal(t, "node/node-1", idx.Subject)
	require.Len(t, idx.Producers, 2)
	assert.True(t, strings.HasPrefix(idx.Producers[0], "antctl "), idx.Producers)
	assert.Equal(t, "antrea-agent v1 on node-1", idx.Producers[1])
	assert.Equal(t, "agent log, max 4096\n", string(files["logs/antrea-agent.log"]), "the agent's part, with --max-log-size")
	assert.Contains(t, string(files["k8s/logs/antrea-agent.log"]), "line 1 of antrea-agent")
	assert.Contains(t, string(files["k8s/logs/install-cni.log"]), "line 1 of install-cni")
	assert.Contains(t, string(files["k8s/logs/antrea-ovs-previous.log"]), "line 1 of antrea-ovs (previous)", "restarted containers' previous logs")
	assert.NotContains(t, files, "k8s/logs/antrea-agent-previous.log")
	assert.Contains(t, string(files["k8s/agent-pod.yaml"]), "antrea-agent-abcde")
	assert.Contains(t, string(files["k8s/node.yaml"]), "name: node-1")
	assert.NotContains(t, string(files["k8s/node.yaml"]), "managedFields")
	byPath := entries(idx)
	for _, p := range []string{"logs/antrea-agent.log", "node/nftables.txt", "k8s/node.yaml", "k8s/agent-pod.yaml", "k8s/agent-pod-events.yaml",
		"k8s/logs/install-cni.log", "k8s/logs/antrea-agent.log", "k8s/logs/antrea-ovs.log", "k8s/logs/antrea-ovs-previous.log"} {
		assert.Contains(t, byPath, p, "indexed")
	}
	assert.Equal(t, supportbundle.StatusFailed, byPath["node/nftables.txt"].Status, "the agent's failures are kept")

	_, idx = bundleFiles(t, glob("supportbundle-node-2-*.tar.gz"))
	byPath = entries(idx)
	assert.Equal(t, supportbundle.StatusFailed, byPath["agent"].Status)
	assert.Contains(t, byPath["agent"].Error, "node node-2 has 0 agent pods")
	assert.Equal(t, supportbundle.StatusOK, byPath["k8s/node.yaml"].Status)

	files, idx = bundleFiles(t, glob("supportbundle-controller-*.tar.gz"))
	assert.Equal(t, "controller", idx.Subject)
	assert.Contains(t, string(files["controller/controllerinfo.json"]), `"available": true`)
	assert.Contains(t, string(files["controller/networkpolicies.json"]), "np-1")
	assert.Contains(t, string(files["k8s/antrea-configmaps.yaml"]), "tunnelType: geneve")
	assert.Contains(t, string(files["k8s/antrea-events.yaml"]), "Started container")
	assert.NotContains(t, string(files["k8s/antrea-events.yaml"]), "not ours")
	assert.Contains(t, string(files["k8s/version.json"]), "v1.33.0")
	byPath = entries(idx)
	assert.Equal(t, supportbundle.StatusFailed, byPath["k8s/logs/antrea-controller-xyz/antrea-controller.log"].Status)

	leftovers, err := filepath.Glob(filepath.Join(dir, "*.partial"))
	require.NoError(t, err)
	assert.Empty(t, leftovers)

	_, err = run(t, "--kubeconfig", kubeconfig, "supportbundle", "--dir", dir, "--node", "node-3")
	assert.EqualError(t, err, `--node "node-3": no such node (the cluster's nodes: node-1, node-2)`)

	out.Reset()
	cmd = NewCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--kubeconfig", kubeconfig, "supportbundle", "--dir", dir, "--node", "node-1", "--controller=false"})
	require.NoError(t, cmd.ExecuteContext(context.Background()), "one node whose agent answers")
	assert.NotContains(t, out.String(), "controller")
}

func TestFreePath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		existing []string
		want     string
	}{
		{nil, "b.tar.gz"},
		{[]string{"b.tar.gz"}, "b-2.tar.gz"},
		{[]string{"b.tar.gz", "b-2.tar.gz"}, "b-3.tar.gz"},
	}
	for _, tc := range tests {
		for _, f := range tc.existing {
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
		}
		assert.Equal(t, filepath.Join(dir, tc.want), freePath(dir, "b"))
	}
}
