package nodebundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/supportbundle"
)

type fakeInspector struct{}

func (fakeInspector) PodInterfaces() []agentapi.PodInterface {
	return []agentapi.PodInterface{{Namespace: "x", Name: "web", OFPort: 3, IP: "10.10.0.2"}}
}

func (fakeInspector) Flows(agentapi.FlowQuery) ([]agentapi.Flow, error) {
	return []agentapi.Flow{{Owner: "pod/c1", Table: 10, TableName: "SpoofGuard", Flow: "table=10,in_port=3 actions=resubmit(,20)"}}, nil
}

func (fakeInspector) Info() agentapi.AgentInfo {
	return agentapi.AgentInfo{NodeName: "node-1", Ready: true}
}

func (fakeInspector) TracePacket(context.Context, agentapi.TraceQuery) (*agentapi.TraceResult, error) {
	return nil, errors.New("not in bundles")
}

// fakeRunner answers the commands it knows, by command line.
type fakeRunner struct {
	answers map[string]string
	failing map[string]error
	ran     []string
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.ran = append(f.ran, line)
	if err, ok := f.failing[line]; ok {
		return nil, err
	}
	out, ok := f.answers[line]
	if !ok {
		return nil, fmt.Errorf("%s: no such command in the test", line)
	}
	return []byte(out), nil
}

const dumpFlows = ` cookie=0x1000000000000, duration=5.1s, table=10, n_packets=0, n_bytes=0, priority=0 actions=drop
 cookie=0x1000000000000, duration=5.1s, table=0, n_packets=4, n_bytes=280, priority=0 actions=drop
 cookie=0x1020000000000, duration=5.1s, table=10, n_packets=2, n_bytes=84, priority=200,arp,in_port=3 actions=resubmit(,20)
 cookie=0x1000000000000, duration=5.1s, table=250, n_packets=0, n_bytes=0, priority=0 actions=drop
`

func TestBundle(t *testing.T) {
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	logDir := filepath.Join(dir, "log")
	hostOVSLogs := filepath.Join(dir, "ovslog")
	for _, d := range []string{runDir, logDir, hostOVSLogs} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	write := func(path, content string) {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	write(filepath.Join(runDir, "ovs-vswitchd.ctl"), "")
	write(filepath.Join(hostOVSLogs, "ovs-vswitchd.log"), "bridge|INFO|bridge br-int: added interface gw0\n")
	write(filepath.Join(logDir, "antrea-agent.log"), strings.Repeat("I1122 agent line\n", 200))
	write(filepath.Join(logDir, "antrea-controller.log"), "I1122 controller line\n")
	confFile := filepath.Join(dir, "antrea-agent.conf")
	write(confFile, "ovsDatapathType: netdev\n")

	cfg := config.Default()
	cfg.NodeName, cfg.OVSRunDir, cfg.OVSDatapathType = "node-1", runDir, config.DatapathNetdev
	mgmt := "unix:" + runDir + "/br-int.mgmt"
	db := "unix:" + runDir + "/db.sock"
	runner := &fakeRunner{
		answers: map[string]string{
			"ovs-ofctl -O OpenFlow15 dump-flows " + mgmt:              dumpFlows,
			"ovs-ofctl -O OpenFlow15 dump-groups " + mgmt:             "group_id=3,type=select,bucket=bucket_id:0,actions=ct(commit)\n",
			"ovs-ofctl -O OpenFlow15 show " + mgmt:                    " 1(tun0): addr:aa:bb\n",
			"ovs-vsctl --db=" + db + " --timeout=10 show":             "    Bridge br-int\n        Port tun0\n            Interface tun0\n                options: {key=flow, psk=swordfish, remote_ip=flow}\n",
			"ovsdb-client --timeout=10 dump " + db + " Open_vSwitch":  "Interface table\n_uuid name options\n---- ---- ----\nab12 tun0 {key=flow, psk=\"sword fish\", remote_ip=flow}\nBridge table\nbr-int\n",
			"ovs-appctl -t " + runDir + "/ovs-vswitchd.ctl dpif/show": "netdev@ovs-netdev: hit:10 missed:2\n",
			"ip -d addr show":         "1: lo: <LOOPBACK,UP>\n",
			"ip route show table all": "10.10.1.0/24 via 10.10.1.1 dev gw0 onlink\n",
			"ip rule show":            "0: from all lookup local\n",
			"ip neigh show":           "10.10.1.1 dev gw0 lladdr 0e:00:0a:0a:01:01 PERMANENT\n",
			"uname -a":                "Linux node-1 6.1.0\n",
		},
		failing: map[string]error{"nft list ruleset": errors.New("nft list ruleset: exit status 1: Operation not permitted")},
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "antrea_agent_test_gauge", Help: "A gauge."})
	g.Set(7)
	reg.MustRegister(g)
	src := Sources{
		Config: cfg, ConfigFile: confFile, LogFile: filepath.Join(logDir, "antrea-agent.log"), Version: "v9",
		Runner: runner, Inspector: fakeInspector{}, Metrics: reg,
		NetworkPolicies: func() *policysync.RealizedState { return nil },
		OVSLogDirs:      []string{runDir, hostOVSLogs},
		Now:             func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) },
	}
	opts := agentapi.BundleOptions{MaxLogBytes: 1024}
	var buf bytes.Buffer
	require.NoError(t, src.Write(context.Background(), &buf, opts))

	files, err := supportbundle.Files(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	var idx supportbundle.Index
	require.NoError(t, json.Unmarshal(files[supportbundle.IndexFile], &idx))
	assert.Equal(t, "node/node-1", idx.Subject)
	assert.Equal(t, []string{"antrea-agent v9 on node-1"}, idx.Producers)

	status := map[string]supportbundle.Entry{}
	for _, e := range idx.Items {
		status[e.Path] = e
	}
	var want []string
	for _, it := range src.Items(opts) {
		want = append(want, it.Path)
	}
	var got []string
	for _, e := range idx.Items {
		got = append(got, e.Path)
	}
	assert.Equal(t, want, got, "the index lists every item, in order")
	for _, p := range []string{"logs/antrea-agent.log", "logs/antrea-controller.log"} {
		assert.Contains(t, got, p)
	}

	tests := []struct {
		path       string
		wantStatus string
		contains   []string
		lacks      []string
		wantError  string
	}{
		{"agent/agentinfo.json", supportbundle.StatusOK, []string{`"nodeName": "node-1"`}, nil, ""},
		{"agent/podinterfaces.json", supportbundle.StatusOK, []string{`"name": "web"`}, nil, ""},
		{"agent/ovsflows.json", supportbundle.StatusOK, []string{`"tableName": "SpoofGuard"`, `"owner": "pod/c1"`}, nil, ""},
		{"agent/networkpolicies.json", supportbundle.StatusSkipped, nil, nil, "not collected: no NetworkPolicy state realized yet"},
		{"agent/config.yaml", supportbundle.StatusOK, []string{"ovsBridge: br-int", "ovsDatapathType: netdev", "nodeName: node-1", "apiPort: 10350", "antreaProxy:\n  enable: true"}, nil, ""},
		{"agent/antrea-agent.conf", supportbundle.StatusOK, []string{"ovsDatapathType: netdev"}, nil, ""},
		{"agent/metrics.txt", supportbundle.StatusOK, []string{"antrea_agent_test_gauge 7"}, nil, ""},
		{"logs/antrea-agent.log", supportbundle.StatusOK, []string{"I1122 agent line\n"}, nil, ""},
		{"logs/antrea-controller.log", supportbundle.StatusOK, []string{"controller line"}, nil, ""},
		{"logs/ovs/ovs-vswitchd.log", supportbundle.StatusOK, []string{"added interface gw0"}, nil, ""},
		{"logs/ovs/ovsdb-server.log", supportbundle.StatusSkipped, nil, nil,
			"not collected: none of " + runDir + "/ovsdb-server.log, " + hostOVSLogs + "/ovsdb-server.log (with ovsManagedBy: container the daemons log to the antrea-ovs container's log)"},
		{"ovs/flows.txt", supportbundle.StatusOK, []string{
			"# table 0 Classification: 1 flows\n cookie=0x1000000000000, duration=5.1s, table=0,",
			"# table 10 SpoofGuard: 2 flows\n cookie=0x1000000000000, duration=5.1s, table=10, n_packets=0, n_bytes=0, priority=0 actions=drop\n cookie=0x1020000000000",
			"# table 250 (not a table of the pipeline): 1 flows",
		}, nil, ""},
		{"ovs/groups.txt", supportbundle.StatusOK, []string{"group_id=3"}, nil, ""},
		{"ovs/ports.txt", supportbundle.StatusOK, []string{"1(tun0)"}, nil, ""},
		{"ovs/vsctl-show.txt", supportbundle.StatusOK, []string{`psk="<redacted>", remote_ip=flow`}, []string{"swordfish"}, ""},
		{"ovs/ovsdb-dump.txt", supportbundle.StatusOK, []string{`psk="<redacted>", remote_ip=flow`, "br-int"}, []string{"sword fish"}, ""},
		{"ovs/dpif-show.txt", supportbundle.StatusOK, []string{"netdev@ovs-netdev"}, nil, ""},
		{"node/ip-addr.txt", supportbundle.StatusOK, []string{"LOOPBACK"}, nil, ""},
		{"node/ip-route.txt", supportbundle.StatusOK, []string{"10.10.1.0/24 via 10.10.1.1 dev gw0"}, nil, ""},
		{"node/ip-rule.txt", supportbundle.StatusOK, []string{"lookup local"}, nil, ""},
		{"node/ip-neigh.txt", supportbundle.StatusOK, []string{"PERMANENT"}, nil, ""},
		{"node/nftables.txt", supportbundle.StatusFailed, nil, nil, "nft list ruleset: exit status 1: Operation not permitted"},
		{"node/uname.txt", supportbundle.StatusOK, []string{"Linux node-1"}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			e, ok := status[tc.path]
			require.True(t, ok, "in the index")
			assert.Equal(t, tc.wantStatus, e.Status, e.Error)
			assert.Equal(t, tc.wantError, e.Error)
			assert.NotEmpty(t, e.Description)
			for _, c := range tc.contains {
				assert.Contains(t, string(files[tc.path]), c)
			}
			for _, l := range tc.lacks {
				assert.NotContains(t, string(files[tc.path]), l, "no secrets")
			}
		})
	}
	log := files["logs/antrea-agent.log"]
	assert.LessOrEqual(t, len(log), 1024, "the end of the log only")
	assert.Contains(t, status["logs/antrea-agent.log"].Note, "the last")
	assert.True(t, bytes.HasPrefix(log, []byte("I1122 agent line")), "from a line's start")
	assert.Contains(t, status["ovs/flows.txt"].Note, "output of: ovs-ofctl -O OpenFlow15 dump-flows")
	for name := range files {
		assert.True(t, strings.HasPrefix(name, "agent/") || strings.HasPrefix(name, "logs/") || strings.HasPrefix(name, "ovs/") ||
			strings.HasPrefix(name, "node/") || name == supportbundle.IndexFile, name)
	}
}

func TestBundleWithoutLogFile(t *testing.T) {
	cfg := config.Default()
	cfg.NodeName, cfg.OVSRunDir = "node-2", t.TempDir()
	src := Sources{Config: cfg, Runner: &fakeRunner{}, Inspector: fakeInspector{},
		NetworkPolicies: func() *policysync.RealizedState { return &policysync.RealizedState{Digest: "abc"} }}
	var buf bytes.Buffer
	require.NoError(t, src.Write(context.Background(), &buf, agentapi.BundleOptions{MaxLogBytes: 1024}))
	files, err := supportbundle.Files(&buf)
	require.NoError(t, err)
	var idx supportbundle.Index
	require.NoError(t, json.Unmarshal(files[supportbundle.IndexFile], &idx))
	byPath := map[string]supportbundle.Entry{}
	for _, e := range idx.Items {
		byPath[e.Path] = e
	}
	assert.Equal(t, supportbundle.StatusSkipped, byPath["logs/antrea-agent.log"].Status)
	assert.Contains(t, byPath["logs/antrea-agent.log"].Error, "the agent logs to standard error only")
	assert.Equal(t, supportbundle.StatusOK, byPath["agent/networkpolicies.json"].Status)
	assert.Contains(t, string(files["agent/networkpolicies.json"]), `"digest": "abc"`)
	assert.Equal(t, supportbundle.StatusFailed, byPath["ovs/dpif-show.txt"].Status, "no control socket")
	assert.Contains(t, byPath["ovs/dpif-show.txt"].Error, "no ovs-vswitchd control socket")
	assert.Equal(t, supportbundle.StatusSkipped, byPath["agent/metrics.txt"].Status)
	assert.Equal(t, supportbundle.StatusFailed, byPath["node/ip-addr.txt"].Status, "every command fails with this runner, and is listed")
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`options: {key=flow, psk=swordfish, remote_ip=flow}`, `options: {key=flow, psk="<redacted>", remote_ip=flow}`},
		{`{psk="a b\"c", remote_ip="1.2.3.4"}`, `{psk="<redacted>", remote_ip="1.2.3.4"}`},
		{`options={psk=x}`, `options={psk="<redacted>"}`},
		{`remote_ip=flow`, `remote_ip=flow`},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, string(Redact([]byte(tc.in))), tc.in)
	}
}

func TestName(t *testing.T) {
	assert.Equal(t, "supportbundle-node-1-20261122T080000Z", Name("node-1", time.Date(2026, 11, 22, 9, 0, 0, 0, time.FixedZone("CET", 3600))))
}
