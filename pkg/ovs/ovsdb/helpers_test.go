package ovsdb_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
	"github.com/ovs-cni/antrea/pkg/ovs/ovstest"
)

const testBridge = "br-int"

// testCtx is a context that ends with the test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect starts a private OVS and connects a client for testBridge.
func connect(t testing.TB) (*ovstest.OVS, *ovsdb.Client) {
	t.Helper()
	o := ovstest.Start(t)
	c, err := ovsdb.Connect(testCtx(t), o.DBSocket(), testBridge)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return o, c
}

// withBridge also creates the bridge, with the userspace datapath.
func withBridge(t testing.TB) (*ovstest.OVS, *ovsdb.Client) {
	t.Helper()
	o, c := connect(t)
	require.NoError(t, c.EnsureBridge(testCtx(t), ovsdb.BridgeConfig{
		DatapathType: ovsdb.DatapathNetdev,
		ExternalIDs:  map[string]string{"antrea-managed": "true"},
	}))
	return o, c
}

// vsctlGet reads one column with ovs-vsctl, unquoted.
func vsctlGet(t testing.TB, o *ovstest.OVS, table, record, column string) string {
	t.Helper()
	return strings.Trim(strings.TrimSpace(o.Vsctl(t, "get", table, record, column)), `"`)
}

// nextCfg reads Open_vSwitch.next_cfg: every transaction of the client
// increments it, so an unchanged value proves that no transaction was made.
func nextCfg(t testing.TB, o *ovstest.OVS) int {
	t.Helper()
	n, err := strconv.Atoi(vsctlGet(t, o, "Open_vSwitch", ".", "next_cfg"))
	require.NoError(t, err)
	return n
}

// addVeth creates a veth pair in the OVS namespace and returns the name of
// the end to attach to OVS.
func addVeth(t testing.TB, o *ovstest.OVS, name string) string {
	t.Helper()
	run(t, "ip", "netns", "exec", o.Netns, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	run(t, "ip", "netns", "exec", o.Netns, "ip", "link", "set", name, "up")
	return name
}

func run(t testing.TB, prog string, args ...string) string {
	t.Helper()
	out, err := exec.Command(prog, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
	return string(out)
}
