package antctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
)

type fakeAgent struct{}

func (fakeAgent) PodInterfaces() []agentapi.PodInterface {
	return []agentapi.PodInterface{{Namespace: "x", Name: "a", InterfaceName: "a-1234", IP: "10.10.0.5", MAC: "02:00:00:00:00:05", OFPort: 7, ContainerID: "0123456789abcdef"}}
}

func (fakeAgent) Flows(q agentapi.FlowQuery) ([]agentapi.Flow, error) {
	return []agentapi.Flow{{Owner: "pod/0123", Table: 10, TableName: "SpoofGuard", Flow: "table=10,priority=200,in_port=7 actions=resubmit(,20)"}}, nil
}

func (fakeAgent) TracePacket(_ context.Context, q agentapi.TraceQuery) (*agentapi.TraceResult, error) {
	return &agentapi.TraceResult{Packet: "tcp,in_port=3", Outcome: "dropped in table 100 IngressDefaultRule",
		Decision: "dropped: x/b is isolated for ingress by NetworkPolicy x/deny, and no rule of them allows this packet",
		Steps: []agentapi.TraceStep{
			{Table: 0, TableName: "Classification", Kind: "base", Match: "in_port=3", Actions: []string{"resubmit(,10)"}},
			{Table: 90, TableName: "IngressRule", NoMatch: true},
			{Table: 100, TableName: "IngressDefaultRule", Kind: "networkpolicy", Match: "ip,reg1=0x4", Actions: []string{"drop"}},
		}}, nil
}

func (fakeAgent) Info() agentapi.AgentInfo {
	return agentapi.AgentInfo{NodeName: "node-1", Ready: true, Version: "v1", FlowsByTable: map[string]int{"70:L3Forwarding": 4, "10:SpoofGuard": 2}}
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestAgentCommands(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = agentapi.Serve(ctx, socket, agentapi.Sources{Inspector: fakeAgent{}}) }()
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 5*time.Second, 10*time.Millisecond)

	out, err := run(t, "--agent-socket", socket, "get", "podinterface", "-n", "x")
	require.NoError(t, err)
	assert.Regexp(t, `NAMESPACE\s+NAME\s+INTERFACE\s+IP\s+MAC\s+OFPORT\s+CONTAINER`, out)
	assert.Regexp(t, `x\s+a\s+a-1234\s+10.10.0.5\s+02:00:00:00:00:05\s+7\s+0123456789ab\n`, out)

	out, err = run(t, "--agent-socket", socket, "get", "ovsflows", "-p", "x/a")
	require.NoError(t, err)
	assert.Regexp(t, `10 SpoofGuard\s+pod/0123\s+table=10,priority=200,in_port=7`, out)

	out, err = run(t, "--agent-socket", socket, "get", "agentinfo")
	require.NoError(t, err)
	assert.Regexp(t, `READY\s+yes`, out)
	assert.Contains(t, out, "6 (10:SpoofGuard=2 70:L3Forwarding=4)", "flows per table in pipeline order")

	out, err = run(t, "--agent-socket", socket, "-o", "json", "get", "agentinfo")
	require.NoError(t, err)
	var info agentapi.AgentInfo
	require.NoError(t, json.Unmarshal([]byte(out), &info))
	assert.Equal(t, "node-1", info.NodeName)

	out, err = run(t, "--agent-socket", socket, "trace-packet", "-S", "x/a", "-D", "x/b")
	require.NoError(t, err)
	assert.Regexp(t, `0 Classification\s+base\s+in_port=3\s+-> resubmit\(,10\)`, out)
	assert.Regexp(t, `90 IngressRule\s+\(no match\)`, out)
	assert.Contains(t, out, "result: dropped in table 100 IngressDefaultRule")
	assert.Contains(t, out, "why: dropped: x/b is isolated for ingress by NetworkPolicy x/deny")
	_, err = run(t, "--agent-socket", socket, "trace-packet", "-S", "x/a")
	assert.ErrorContains(t, err, "--source and --destination are required")

	out, err = run(t, "--agent-socket", socket, "version")
	require.NoError(t, err)
	assert.Contains(t, out, "agent version: v1")

	_, err = run(t, "--agent-socket", filepath.Join(t.TempDir(), "none.sock"), "get", "agentinfo")
	assert.ErrorContains(t, err, "none.sock")
	_, err = run(t, "-o", "yaml", "version")
	assert.ErrorContains(t, err, `--output "yaml": must be table or json`)
}

func TestControlplaneTable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/apis/controlplane.antrea.io/v1beta1/networkpolicies", r.URL.Path)
		assert.Contains(t, r.Header.Get("Accept"), "as=Table")
		_ = json.NewEncoder(w).Encode(metav1.Table{
			ColumnDefinitions: []metav1.TableColumnDefinition{{Name: "Name"}, {Name: "Applied-To"}, {Name: "Rules"}},
			Rows: []metav1.TableRow{{Cells: []any{"uid-1", "atg-1", int64(2)},
				Object: runtime.RawExtension{Raw: []byte(`{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"uid-1","namespace":"x"}}`)}}},
		})
	}))
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+srv.URL+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	out, err := run(t, "--kubeconfig", kubeconfig, "get", "networkpolicy")
	require.NoError(t, err)
	assert.Regexp(t, `NAMESPACE\s+NAME\s+APPLIED-TO\s+RULES\nx\s+uid-1\s+atg-1\s+2\n`, out)
}

func TestShortOwner(t *testing.T) {
	id := "450974f1fbf6498179571eace11744426895f0541e3117e842842461e8cb553c"
	assert.Equal(t, "pod/450974f1fbf6", shortOwner("pod/"+id))
	assert.Equal(t, "networkpolicy/isolation/10.10.0.2", shortOwner("networkpolicy/isolation/10.10.0.2"))
}
