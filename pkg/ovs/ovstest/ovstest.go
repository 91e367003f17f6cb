// Package ovstest starts a real, private Open vSwitch (ovsdb-server and
// ovs-vswitchd, userspace datapath) inside a network namespace of its own,
// for integration tests. It needs root and the openvswitch-switch package;
// without them the test fails (it does not skip), and everything it started
// is stopped by PID and deleted at cleanup, even when the test fails.
package ovstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/ovsnode"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// OVS is one private OVS instance.
type OVS struct {
	Netns string // the namespace the daemons run in
	Dir   string // their run dir: sockets, db, logs
	inst  ovsnode.Instance
}

// DBSocket is the OVSDB unix socket.
func (o *OVS) DBSocket() string { return o.inst.DBSocket() }

// MgmtSocket is the OpenFlow management socket of bridge.
func (o *OVS) MgmtSocket(bridge string) string { return filepath.Join(o.Dir, bridge+".mgmt") }

// VswitchdCtl is ovs-vswitchd's unixctl socket.
func (o *OVS) VswitchdCtl() string { return o.inst.VswitchdCtl() }

// Start runs a private OVS for the test.
func Start(t testing.TB) *OVS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("ovstest: this integration test needs root (network namespace and OVS daemons); run it through 'make test'")
	}
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		t.Fatal("ovstest: ovs-vswitchd not found: install openvswitch-switch ('make test' does)")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "ovstest-" + hex.EncodeToString(b)
	// Short paths: unix socket names are limited to 107 characters.
	dir, err := os.MkdirTemp("/tmp", "ovs-")
	if err != nil {
		t.Fatalf("ovstest: temp dir: %v", err)
	}
	if err := netnsutil.Create(name); err != nil {
		t.Fatalf("ovstest: %v", err)
	}
	o := &OVS{Netns: name, Dir: dir, inst: ovsnode.Instance{Netns: name, Dir: dir}}
	pidDir := filepath.Join(dir, "pids")
	_ = os.MkdirAll(pidDir, 0o755)
	t.Cleanup(func() { o.stop(t, pidDir) })
	if err := o.inst.Start(pidDir, ""); err != nil {
		t.Fatalf("ovstest: start OVS: %v", err)
	}
	return o
}

// Vsctl runs ovs-vsctl against this instance and returns its output.
func (o *OVS) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	return o.run(t, "ovs-vsctl", append([]string{"--db=unix:" + o.DBSocket(), "--timeout=10"}, args...)...)
}

// Ofctl runs ovs-ofctl (OpenFlow 1.5 accepted) against bridge.
func (o *OVS) Ofctl(t testing.TB, cmd, bridge string, args ...string) string {
	t.Helper()
	full := append([]string{"-O", "OpenFlow15", cmd, "unix:" + o.MgmtSocket(bridge)}, args...)
	return o.run(t, "ovs-ofctl", full...)
}

// Appctl runs ovs-appctl against ovs-vswitchd.
func (o *OVS) Appctl(t testing.TB, args ...string) string {
	t.Helper()
	return o.run(t, "ovs-appctl", append([]string{"-t", o.VswitchdCtl()}, args...)...)
}

func (o *OVS) run(t testing.TB, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", o.Netns, prog}, args...)...)
	cmd.Env = append(os.Environ(), o.inst.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
	return string(out)
}

// RestartVswitchd kills ovs-vswitchd and starts it again on the same
// database, as a crash and restart of the daemon would.
func (o *OVS) RestartVswitchd(t testing.TB) {
	t.Helper()
	pidDir := filepath.Join(o.Dir, "pids")
	recs, err := proc.Load(pidDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Name == "ovs-vswitchd" {
			_ = proc.Kill(r.PID, 0)
		}
	}
	if err := o.inst.StartVswitchd(pidDir, ""); err != nil {
		t.Fatalf("ovstest: restart ovs-vswitchd: %v", err)
	}
}

func (o *OVS) stop(t testing.TB, pidDir string) {
	recs, _ := proc.Load(pidDir)
	for _, r := range recs {
		_ = r.Stop(2 * time.Second)
	}
	if pids, _ := proc.InNetns([]string{netnsutil.Path(o.Netns)}); len(pids) > 0 {
		for _, p := range pids {
			_ = proc.Kill(p, time.Second)
		}
	}
	if err := netnsutil.Delete(o.Netns); err != nil {
		t.Errorf("ovstest: %v", err)
	}
	_ = os.RemoveAll(o.Dir)
}

// RestartDB stops ovsdb-server and starts it again on the same database and
// socket, as a restart of the daemon would; ovs-vswitchd and other clients
// must reconnect by themselves.
func (o *OVS) RestartDB(t testing.TB) {
	t.Helper()
	pidDir := filepath.Join(o.Dir, "pids")
	recs, err := proc.Load(pidDir)
	if err != nil {
		t.Fatal(err)
	}
	oldPID := 0
	for _, r := range recs {
		if r.Name == "ovsdb-server" {
			oldPID = r.PID
			if err := r.Stop(2 * time.Second); err != nil {
				t.Fatalf("ovstest: stop ovsdb-server: %v", err)
			}
		}
	}
	pidfile := filepath.Join(o.Dir, "ovsdb-server.pid")
	args := append([]string{"netns", "exec", o.Netns, "env"}, o.inst.Env()...)
	args = append(args, "ovsdb-server", filepath.Join(o.Dir, "conf.db"),
		"--remote=punix:"+o.DBSocket(),
		"--pidfile="+pidfile,
		"--unixctl="+o.inst.DBCtl(),
		"--log-file="+filepath.Join(o.Dir, "ovsdb-server.log"),
		"--detach", "--no-chdir", "-vconsole:off")
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ovstest: restart ovsdb-server: %v: %s", err, out)
	}
	// --detach returns once the daemon is ready; record its new PID.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile(pidfile)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil && perr == nil && pid != oldPID {
			if _, err := proc.Adopt(pidDir, "ovsdb-server", pid); err != nil {
				t.Fatalf("ovstest: record restarted ovsdb-server: %v", err)
			}
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("ovstest: restarted ovsdb-server wrote no new pid to %s", pidfile)
		}
	}
}
