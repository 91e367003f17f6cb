package antctl

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
)

const tfPath = "/apis/crd.antrea.io/v1alpha1/traceflows"

// fakeAPI serves pods ns/client and ns/server, the Service ns/web-svc, and
// Traceflows that finish with status at their second read.
type fakeAPI struct {
	t       *testing.T
	status  v1alpha1.TraceflowStatus
	mu      sync.Mutex
	created *v1alpha1.Traceflow
	reads   int
	deleted bool
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	notFound := func() {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound})
	}
	switch {
	case r.Method == http.MethodGet && (r.URL.Path == "/api/v1/namespaces/ns/pods/client" || r.URL.Path == "/api/v1/namespaces/ns/pods/server"):
		_, _ = w.Write([]byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"server","namespace":"ns"}}`))
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/ns/services/web-svc":
		_, _ = w.Write([]byte(`{"kind":"Service","apiVersion":"v1","metadata":{"name":"web-svc","namespace":"ns"}}`))
	case r.Method == http.MethodPost && r.URL.Path == tfPath:
		tf := &v1alpha1.Traceflow{}
		require.NoError(f.t, json.NewDecoder(r.Body).Decode(tf))
		tf.Name = tf.GenerateName + "x1"
		f.created = tf
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(tf)
	case r.Method == http.MethodGet && f.created != nil && r.URL.Path == tfPath+"/"+f.created.Name:
		f.reads++
		tf := f.created.DeepCopy()
		if f.reads > 1 {
			tf.Status = f.status
		}
		_ = json.NewEncoder(w).Encode(tf)
	case r.Method == http.MethodDelete && f.created != nil && r.URL.Path == tfPath+"/"+f.created.Name:
		f.deleted = true
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Success"}`))
	default:
		notFound()
	}
}

func kubeconfigFor(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+url+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	return path
}

var acrossNodes = v1alpha1.TraceflowStatus{
	Phase: v1alpha1.PhaseSucceeded, DataplaneTag: 7, SenderNode: "node-1",
	Packet: &v1alpha1.InjectedPacket{SrcIP: "10.10.0.3", DstIP: "10.96.0.10", Protocol: v1alpha1.ProtocolTCP, SrcPort: 50000, DstPort: 80, Flags: 2},
	Results: []v1alpha1.NodeResult{
		{Node: "node-1", Role: v1alpha1.RoleSender, Timestamp: metav1.NewTime(time.Date(2026, 1, 1, 12, 0, 1, 0, time.UTC)),
			Observations: []v1alpha1.Observation{
				{Component: v1alpha1.ComponentSpoofGuard, ComponentInfo: "SpoofGuard", Action: v1alpha1.ActionForwarded},
				{Component: v1alpha1.ComponentLB, ComponentInfo: "DNAT", Action: v1alpha1.ActionForwarded, Service: "ns/web-svc",
					TranslatedDstIP: "10.10.1.2", TranslatedDstPort: 80},
				{Component: v1alpha1.ComponentForwarding, ComponentInfo: "L3Forwarding", Action: v1alpha1.ActionForwarded,
					TunnelDstIP: "172.18.0.12", TunnelDstNode: "node-2"},
			}},
		{Node: "node-2", Role: v1alpha1.RoleReceiver, Timestamp: metav1.NewTime(time.Date(2026, 1, 1, 12, 0, 1, 0, time.UTC)),
			Observations: []v1alpha1.Observation{
				{Component: v1alpha1.ComponentClassification, ComponentInfo: "Classification", Action: v1alpha1.ActionReceived, Detail: "from the tunnel"},
				{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "IngressRule", Action: v1alpha1.ActionForwarded,
					NetworkPolicy: "ns/allow", NetworkPolicyRule: "ingress rule 0"},
				{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered, Pod: "ns/server"},
			}},
	},
}

func TestTraceflowCommand(t *testing.T) {
	api := &fakeAPI{t: t, status: acrossNodes}
	srv := httptest.NewServer(api)
	defer srv.Close()
	kubeconfig := kubeconfigFor(t, srv.URL)

	out, err := run(t, "--kubeconfig", kubeconfig, "traceflow", "-S", "ns/client", "-D", "ns/web-svc", "--dport", "80", "--timeout", "5s")
	require.NoError(t, err)
	t.Log(out)
	require.NotNil(t, api.created)
	assert.Equal(t, "antctl-client-", api.created.GenerateName)
	assert.Equal(t, v1alpha1.TraceflowSpec{Source: v1alpha1.Source{Namespace: "ns", Pod: "client"},
		Destination: v1alpha1.Destination{Namespace: "ns", Service: "web-svc"},
		Packet:      v1alpha1.Packet{Protocol: v1alpha1.ProtocolTCP, DstPort: 80}, Timeout: 5}, api.created.Spec,
		"ns/web-svc is no pod: the Service")
	assert.True(t, api.deleted, "deleted without --keep")
	assert.Contains(t, out, "phase: Succeeded\n")
	assert.Contains(t, out, "packet: TCP 10.10.0.3:50000 -> 10.96.0.10:80 [SYN], tag 7, sent by node-1\n")
	assert.Regexp(t, `node-1 \(Sender, 12:00:01\)\nCOMPONENT\s+TABLE\s+ACTION\s+DETAIL\n`, out)
	assert.Regexp(t, `LB\s+DNAT\s+Forwarded\s+Service ns/web-svc -> endpoint 10.10.1.2:80\n`, out)
	assert.Regexp(t, `Forwarding\s+L3Forwarding\s+Forwarded\s+tunnel to node-2 \(172.18.0.12\)\n`, out)
	assert.Regexp(t, `NetworkPolicy\s+IngressRule\s+Forwarded\s+NetworkPolicy ns/allow, ingress rule 0\n`, out)
	assert.Contains(t, out, "result: delivered on node-2 (Output): pod ns/server\n")
}

func TestTraceflowCommandOutputsAndFailure(t *testing.T) {
	failed := v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseFailed, Reason: "destination.pod ns/server: has no IPv4 address yet"}
	api := &fakeAPI{t: t, status: failed}
	srv := httptest.NewServer(api)
	defer srv.Close()
	kubeconfig := kubeconfigFor(t, srv.URL)
	out, err := run(t, "--kubeconfig", kubeconfig, "-o", "yaml", "traceflow", "-S", "ns/client", "-D", "ns/server", "-p", "udp", "--keep")
	assert.EqualError(t, err, "traceflow antctl-client-x1 failed: destination.pod ns/server: has no IPv4 address yet")
	assert.False(t, api.deleted, "--keep")
	var tf v1alpha1.Traceflow
	require.NoError(t, yaml.Unmarshal([]byte(out), &tf))
	assert.Equal(t, "Traceflow", tf.Kind)
	assert.Equal(t, "crd.antrea.io/v1alpha1", tf.APIVersion)
	assert.Equal(t, v1alpha1.Destination{Namespace: "ns", Pod: "server"}, tf.Spec.Destination)
	assert.Equal(t, int32(v1alpha1.DefaultTimeoutSeconds), tf.Spec.Timeout, "20s unless --timeout")
	assert.Equal(t, v1alpha1.ProtocolUDP, tf.Spec.Packet.Protocol)
	assert.Equal(t, failed, tf.Status)
}

func TestTraceflowCommandBadInput(t *testing.T) {
	srv := httptest.NewServer(&fakeAPI{t: t})
	defer srv.Close()
	kubeconfig := kubeconfigFor(t, srv.URL)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-S", "ns/client"}, "--source and --destination are required"},
		{[]string{"-S", "client", "-D", "ns/server"}, `--source "client": want NAMESPACE/POD`},
		{[]string{"-S", "ns/client", "-D", "ns/nope"}, "--destination ns/nope: no pod or Service of that name"},
		{[]string{"-S", "ns/client", "-D", "web"}, `--destination "web": want NAMESPACE/NAME of a pod or Service, or an IPv4 address`},
		{[]string{"-S", "ns/client", "-D", "fd00::1"}, "--destination fd00::1: IPv4 only"},
		{[]string{"-S", "ns/client", "-D", "10.0.0.1", "-p", "sctp"}, `--protocol "sctp": must be tcp, udp or icmp`},
		{[]string{"-S", "ns/client", "-D", "10.0.0.1", "--flags", "syn,fun"}, `--flags "syn,fun": "fun" is not one of fin, syn, rst, psh, ack, urg, ece, cwr`},
		{[]string{"-S", "ns/client", "-D", "10.0.0.1", "-p", "icmp", "--dport", "80"}, "packet.srcPort, packet.dstPort: ICMP has no ports"},
		{[]string{"-S", "ns/client", "-D", "10.0.0.1", "--dport", "70000"}, "packet.dstPort 70000: must be between 0 (default) and 65535"},
		{[]string{"-S", "ns/client", "-D", "10.0.0.1", "--timeout", "10m"}, "--timeout 10m0s: must be between 1s and 300s"},
		{[]string{"-S", "ns/client", "-D", "10.0.0.1", "-o", "wide"}, `--output "wide": must be table, json or yaml`},
	} {
		_, err := run(t, append([]string{"--kubeconfig", kubeconfig, "traceflow"}, tc.args...)...)
		assert.EqualError(t, err, tc.want, "%v", tc.args)
	}
}

func TestParseTCPFlags(t *testing.T) {
	for in, want := range map[string]uint8{"syn": 0x02, "SYN,ACK": 0x12, "fin, psh": 0x09, "0x14": 0x14, "2": 2} {
		got, err := parseTCPFlags(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}
