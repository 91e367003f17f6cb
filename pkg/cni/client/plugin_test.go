package client_test

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver/cniservertest"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1"

// config returns a network config for the plugin.
func config(t testing.TB, cniVersion, socket string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": cniVersion, "name": "antrea", "type": "antrea-cni", "cniSocket": socket,
		"ipam": map[string]any{"type": "host-local", "subnet": "10.10.0.0/16"}}
	for k, v := range extra {
		m[k] = v
	}
	data, err := json.Marshal(m)
	require.NoError(t, err)
	return data
}

func podInvocation(command, containerID string, conf []byte) invocation {
	return invocation{command: command, containerID: containerID, netns: "/var/run/netns/" + containerID,
		ifName: "eth0", args: podArgs, stdin: conf}
}

// TestConformance drives the plugin through a pod's life with every spec
// version it claims, against the real server and a fake configurator.
func TestConformance(t *testing.T) {
	fake := &cniservertest.Fake{UnknownOnDel: true}
	sock := cniservertest.Serve(t, fake, cniserver.Config{})
	for _, v := range cniv1.SupportedVersions {
		t.Run(v, func(t *testing.T) {
			id := "pod-" + v
			attachment := cniserver.Attachment{ContainerID: id, IfName: "eth0"}
			conf := config(t, v, sock, nil)

			add := execPlugin(t, podInvocation("ADD", id, conf))
			require.Zero(t, add.exitCode, "ADD: %+v", add.cniErr)
			res, err := version.NewResult(v, add.stdout)
			require.NoError(t, err, "ADD result %s", add.stdout)
			assert.Equal(t, v, res.Version())
			cur, err := current.NewResultFromResult(res)
			require.NoError(t, err)
			require.Len(t, cur.IPs, 1)
			assert.Equal(t, "eth0", cur.Interfaces[0].Name)
			assert.True(t, fake.Attached(attachment))

			// CHECK with the ADD result as prevResult, as libcni does.
			var prev map[string]any
			require.NoError(t, json.Unmarshal(add.stdout, &prev))
			check := execPlugin(t, podInvocation("CHECK", id, config(t, v, sock, map[string]any{"prevResult": prev})))
			if ok, _ := version.GreaterThanOrEqualTo(v, "0.4.0"); ok {
				assert.Zero(t, check.exitCode, "CHECK: %+v", check.cniErr)
				assert.Empty(t, check.stdout)
			} else {
				assert.Equal(t, 1, check.exitCode)
				assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, check.cniErr.Code)
			}

			gcConf := config(t, v, sock, map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": id, "ifname": "eth0"}}})
			gc := execPlugin(t, invocation{command: "GC", stdin: gcConf})
			status := execPlugin(t, invocation{command: "STATUS", stdin: conf})
			if v == "1.1.0" {
				assert.Zero(t, gc.exitCode, "GC: %+v", gc.cniErr)
				assert.Zero(t, status.exitCode, "STATUS: %+v", status.cniErr)
				assert.True(t, fake.Attached(attachment), "GC kept the valid attachment")
			} else {
				assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, gc.cniErr.Code)
				assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, status.cniErr.Code)
			}

			del := execPlugin(t, podInvocation("DEL", id, conf))
			assert.Zero(t, del.exitCode, "DEL: %+v", del.cniErr)
			assert.Empty(t, del.stdout)
			assert.False(t, fake.Attached(attachment))
			// The agent no longer knows the container: DEL still succeeds.
			del = execPlugin(t, podInvocation("DEL", id, conf))
			assert.Zero(t, del.exitCode, "second DEL: %+v", del.cniErr)
		})
	}
}

// TestAgentErrors checks that the agent's codes reach the runtime.
func TestAgentErrors(t *testing.T) {
	tests := []struct {
		name     string
		fake     *cniservertest.Fake
		inv      func(sock string) invocation
		wantCode uint
		wantMsg  string
	}{
		{"ADD IPAM failure", &cniservertest.Fake{Err: map[string]error{"ADD": cniserver.NewError(cniv1.CodeIPAMFailure, "pool exhausted", "")}},
			func(sock string) invocation { return podInvocation("ADD", "c1", config(t, "1.0.0", sock, nil)) },
			cniv1.CodeIPAMFailure, "pool exhausted"},
		{"ADD without pod name", &cniservertest.Fake{},
			func(sock string) invocation {
				inv := podInvocation("ADD", "c1", config(t, "1.0.0", sock, nil))
				inv.args = "K8S_POD_NAMESPACE=default"
				return inv
			},
			cniv1.CodeInvalidEnvironmentVariables, "CNI_ARGS: K8S_POD_NAME is required for ADD"},
		{"CHECK unknown container", &cniservertest.Fake{},
			func(sock string) invocation {
				return podInvocation("CHECK", "c1", config(t, "1.0.0", sock, map[string]any{"prevResult": map[string]any{"cniVersion": "1.0.0"}}))
			},
			cniv1.CodeUnknownContainer, `unknown container "c1"`},
		{"DEL agent failure", &cniservertest.Fake{Err: map[string]error{"DEL": fmt.Errorf("ovsdb: connection refused")}},
			func(sock string) invocation { return podInvocation("DEL", "c1", config(t, "1.0.0", sock, nil)) },
			cniv1.CodeAgentInternal, "DEL failed in the agent"},
		{"STATUS agent not ready", &cniservertest.Fake{StatusErr: fmt.Errorf("OVS bridge missing")},
			func(sock string) invocation {
				return invocation{command: "STATUS", stdin: config(t, "1.1.0", sock, nil)}
			},
			cniv1.CodePluginNotAvailable, "STATUS failed in the agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := cniservertest.Serve(t, tt.fake, cniserver.Config{})
			out := execPlugin(t, tt.inv(sock))
			require.Equal(t, 1, out.exitCode)
			assert.Equal(t, tt.wantCode, out.cniErr.Code)
			assert.Contains(t, out.cniErr.Msg, tt.wantMsg)
		})
	}
}

// TestAgentDown checks that the plugin fails fast and retryably when the
// agent is not there, and within cniTimeout when it does not answer.
func TestAgentDown(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	hung := filepath.Join(dir, "hung.sock")
	// A socket that accepts connections but never speaks gRPC.
	lis, err := net.Listen("unix", hung)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()

	const timeout = time.Second
	tests := []struct {
		name     string
		socket   string
		command  string
		wantCode uint
		wantMsg  string
	}{
		{"ADD no agent", missing, "ADD", cniv1.CodeTryAgainLater, "antrea agent is not reachable on " + missing},
		{"CHECK no agent", missing, "CHECK", cniv1.CodeTryAgainLater, "antrea agent is not reachable"},
		{"DEL no agent", missing, "DEL", cniv1.CodeTryAgainLater, "antrea agent is not reachable"},
		{"GC no agent", missing, "GC", cniv1.CodeTryAgainLater, "antrea agent is not reachable"},
		{"STATUS no agent", missing, "STATUS", cniv1.CodePluginNotAvailable, "antrea agent is not reachable"},
		{"ADD hung agent", hung, "ADD", cniv1.CodeTryAgainLater, "antrea agent did not answer ADD within 1s"},
		{"DEL hung agent", hung, "DEL", cniv1.CodeTryAgainLater, "antrea agent did not answer DEL within 1s"},
		{"STATUS hung agent", hung, "STATUS", cniv1.CodePluginNotAvailable, "antrea agent did not answer STATUS within 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := config(t, "1.1.0", tt.socket, map[string]any{"cniTimeout": timeout.String(),
				"prevResult": map[string]any{"cniVersion": "1.1.0"}})
			out := execPlugin(t, podInvocation(tt.command, "c1", conf))
			require.Equal(t, 1, out.exitCode, "stdout %s", out.stdout)
			assert.Equal(t, tt.wantCode, out.cniErr.Code)
			assert.Contains(t, out.cniErr.Msg, tt.wantMsg)
			assert.Less(t, out.elapsed, timeout+time.Second)
		})
	}
}

// TestDefaultTimeout checks the 5 s default against a hung agent.
func TestDefaultTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hung.sock")
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	out := execPlugin(t, podInvocation("ADD", "c1", config(t, "1.0.0", sock, nil)))
	assert.Equal(t, cniv1.CodeTryAgainLater, out.cniErr.Code)
	assert.GreaterOrEqual(t, out.elapsed, 5*time.Second)
	assert.Less(t, out.elapsed, 6*time.Second)
}

func TestVersion(t *testing.T) {
	out := execPlugin(t, invocation{command: "VERSION"})
	require.Zero(t, out.exitCode)
	var got struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	require.NoError(t, json.Unmarshal(out.stdout, &got))
	assert.Equal(t, []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}, got.SupportedVersions)
}

// TestBadInput checks errors the plugin detects before calling the agent.
func TestBadInput(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "unused.sock")
	tests := []struct {
		name     string
		inv      invocation
		wantCode uint
		wantMsg  string
	}{
		{"malformed JSON", podInvocation("ADD", "c1", []byte(`{"cniVersion": "1.0.0", "name": `)), cniv1.CodeDecodingFailure, "error unmarshall network config"},
		{"not an object", podInvocation("ADD", "c1", []byte(`[1,2]`)), cniv1.CodeDecodingFailure, "error unmarshall network config"},
		{"empty stdin", podInvocation("DEL", "c1", nil), cniv1.CodeDecodingFailure, "error unmarshall network config"},
		{"missing name", podInvocation("ADD", "c1", []byte(`{"cniVersion": "1.0.0"}`)), cniv1.CodeInvalidNetworkConfig, "missing network name"},
		{"unsupported version", podInvocation("ADD", "c1", config(t, "9.9.9", sock, nil)), cniv1.CodeIncompatibleCNIVersion, "incompatible CNI versions"},
		{"bad cniTimeout", podInvocation("ADD", "c1", config(t, "1.0.0", sock, map[string]any{"cniTimeout": "soon"})),
			cniv1.CodeInvalidNetworkConfig, "network config: invalid cniTimeout"},
		{"relative cniSocket", podInvocation("ADD", "c1", config(t, "1.0.0", "run/cni.sock", nil)),
			cniv1.CodeInvalidNetworkConfig, `network config: cniSocket "run/cni.sock" must be an absolute path`},
		{"missing netns", invocation{command: "ADD", containerID: "c1", ifName: "eth0", stdin: config(t, "1.0.0", sock, nil)},
			cniv1.CodeInvalidEnvironmentVariables, "required env variables [CNI_NETNS] missing"},
		{"unknown command", invocation{command: "FROB", stdin: config(t, "1.0.0", sock, nil)},
			cniv1.CodeInvalidEnvironmentVariables, "unknown CNI_COMMAND: FROB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := execPlugin(t, tt.inv)
			require.Equal(t, 1, out.exitCode)
			assert.Equal(t, tt.wantCode, out.cniErr.Code)
			assert.Contains(t, out.cniErr.Msg, tt.wantMsg)
		})
	}
}
