// Package ovsnode runs one Open vSwitch instance (ovsdb-server and
// ovs-vswitchd) for a simulated node, inside the node's network namespace,
// with every socket, database, log and pid file under the node's OVS folder.
package ovsnode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// SchemaPath is where Debian's openvswitch-common installs the schema.
const SchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// maxSocketPath is the limit of a unix socket path (sun_path) on Linux.
const maxSocketPath = 107

// Instance describes where one node's OVS lives.
type Instance struct {
	Netns string // node namespace
	Dir   string // run, db and log folder
}

// DBSocket is the OVSDB unix socket.
func (i Instance) DBSocket() string { return filepath.Join(i.Dir, "db.sock") }

// VswitchdCtl is ovs-vswitchd's unixctl socket (for ovs-appctl -t).
func (i Instance) VswitchdCtl() string { return filepath.Join(i.Dir, "ovs-vswitchd.ctl") }

// DBCtl is ovsdb-server's unixctl socket.
func (i Instance) DBCtl() string { return filepath.Join(i.Dir, "ovsdb-server.ctl") }

// Env is the environment that makes the OVS command-line tools (ovs-vsctl,
// ovs-ofctl, ovs-appctl) talk to this instance by default.
func (i Instance) Env() []string {
	return []string{
		"OVS_RUNDIR=" + i.Dir,
		"OVS_DBDIR=" + i.Dir,
		"OVS_LOGDIR=" + i.Dir,
		"OVS_SYSCONFDIR=" + i.Dir,
		"DB_SOCK=" + i.DBSocket(),
	}
}

// Start creates the database and starts both daemons, recording their PIDs
// in pidDir under names prefixed by namePrefix.
func (i Instance) Start(pidDir, namePrefix string) error {
	if n := len(filepath.Join(i.Dir, "br-int.mgmt")); n > maxSocketPath {
		return fmt.Errorf("OVS run dir %q is too long for unix sockets (%d > %d characters): use a shorter --state-dir", i.Dir, n, maxSocketPath)
	}
	if err := os.MkdirAll(i.Dir, 0o755); err != nil {
		return fmt.Errorf("create OVS dir: %w", err)
	}
	db := filepath.Join(i.Dir, "conf.db")
	if _, err := os.Stat(db); os.IsNotExist(err) {
		if out, err := exec.Command("ovsdb-tool", "create", db, SchemaPath).CombinedOutput(); err != nil {
			return fmt.Errorf("ovsdb-tool create: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	dbPid := filepath.Join(i.Dir, "ovsdb-server.pid")
	if err := i.run("ovsdb-server", db,
		"--remote=punix:"+i.DBSocket(),
		"--pidfile="+dbPid,
		"--unixctl="+i.DBCtl(),
		"--log-file="+filepath.Join(i.Dir, "ovsdb-server.log"),
		"--detach", "--no-chdir", "-vconsole:off"); err != nil {
		return err
	}
	if err := adoptPidfile(pidDir, namePrefix+"ovsdb-server", dbPid); err != nil {
		return err
	}
	if out, err := exec.Command("ovs-vsctl", "--db=unix:"+i.DBSocket(), "--no-wait", "init").CombinedOutput(); err != nil {
		return fmt.Errorf("ovs-vsctl init: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return i.StartVswitchd(pidDir, namePrefix)
}

// StartVswitchd starts ovs-vswitchd on the instance's database, e.g. again
// after it was killed.
func (i Instance) StartVswitchd(pidDir, namePrefix string) error {
	vsPid := filepath.Join(i.Dir, "ovs-vswitchd.pid")
	if err := i.run("ovs-vswitchd", "unix:"+i.DBSocket(),
		"--pidfile="+vsPid,
		"--unixctl="+i.VswitchdCtl(),
		"--log-file="+filepath.Join(i.Dir, "ovs-vswitchd.log"),
		"--detach", "--no-chdir", "-vconsole:off"); err != nil {
		return err
	}
	return adoptPidfile(pidDir, namePrefix+"ovs-vswitchd", vsPid)
}

// run starts a self-daemonizing OVS program inside the node namespace and
// waits for it to detach.
func (i Instance) run(prog string, args ...string) error {
	argv := append([]string{"netns", "exec", i.Netns, "env"}, i.Env()...)
	argv = append(argv, prog)
	argv = append(argv, args...)
	if out, err := exec.Command("ip", argv...).CombinedOutput(); err != nil {
		return fmt.Errorf("start %s in %s: %w: %s", prog, i.Netns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func adoptPidfile(pidDir, name, pidfile string) error {
	var data []byte
	var err error
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if data, err = os.ReadFile(pidfile); err == nil && len(strings.TrimSpace(string(data))) > 0 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pidfile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("parse %s: %w", pidfile, err)
	}
	_, err = proc.Adopt(pidDir, name, pid)
	return err
}
