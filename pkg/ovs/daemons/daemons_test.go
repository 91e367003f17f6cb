package daemons

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

func TestCheckDatapath(t *testing.T) {
	assert.NoError(t, CheckDatapath("netdev"), "the userspace datapath needs no kernel module")
	assert.ErrorContains(t, CheckDatapath("dpdk"), `ovsDatapathType "dpdk"`)
	err := CheckDatapath("system")
	if _, statErr := os.Stat("/sys/module/openvswitch"); statErr == nil {
		assert.NoError(t, err)
	} else if err != nil {
		assert.ErrorContains(t, err, "needs the openvswitch kernel module")
		assert.ErrorContains(t, err, "set ovsDatapathType: netdev")
	}
}

func TestHealthWithoutDaemons(t *testing.T) {
	err := Health(context.Background(), t.TempDir())
	assert.ErrorContains(t, err, "no ovsdb-server control socket")
}

// TestRunStartsAndStopsTheDaemons runs the container mode for real in a
// network namespace of its own: the daemons come up on a fresh database,
// serve a bridge, and are gone after the context ends.
func TestRunStartsAndStopsTheDaemons(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this integration test needs root (network namespace, OVS daemons); run it through 'make test'")
	}
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		t.Fatal("ovs-vswitchd not found: install openvswitch-switch ('make test' does)")
	}
	name := "ovsrun-" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	require.NoError(t, netnsutil.Create(name))
	t.Cleanup(func() { _ = netnsutil.Delete(name) })
	dir, err := os.MkdirTemp("/tmp", "ovsrun-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	// A socket left by an unclean stop, and the agent's API socket.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "db.sock"), nil, 0o600))
	agentSock := filepath.Join(dir, "agent.sock")
	require.NoError(t, os.WriteFile(agentSock, nil, 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// The daemons inherit the namespace of the thread that starts them.
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			done <- err
			return
		}
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		done <- Run(ctx, Options{RunDir: dir, StopTimeout: 5 * time.Second, StopAfter: agentSock, StopAfterTimeout: 10 * time.Second})
	}()
	t.Cleanup(func() {
		// Whatever happens, no daemon outlives the test.
		for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
			if data, err := os.ReadFile(filepath.Join(dir, d+".pid")); err == nil {
				_ = exec.Command("kill", "-9", strings.TrimSpace(string(data))).Run()
			}
		}
	})
	require.Eventually(t, func() bool { return Health(ctx, dir) == nil }, 20*time.Second, 100*time.Millisecond, "the daemons answer")
	out, err := exec.Command("ovs-vsctl", "--db=unix:"+filepath.Join(dir, "db.sock"), "--timeout=10",
		"add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev").CombinedOutput()
	require.NoError(t, err, string(out))
	_, err = os.Stat(filepath.Join(dir, "conf.db"))
	require.NoError(t, err, "the database was created from the schema")

	pid, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.pid"))
	require.NoError(t, err)
	cancel()
	// The daemons outlive the agent: they stop once its socket is gone.
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, Health(context.Background(), dir), "OVS still runs while the agent does")
	require.NoError(t, os.Remove(agentSock))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	_, err = os.Stat(filepath.Join("/proc", strings.TrimSpace(string(pid))))
	assert.True(t, os.IsNotExist(err), "ovs-vswitchd is stopped")
	assert.Error(t, Health(context.Background(), dir), "nothing answers any more")
}
