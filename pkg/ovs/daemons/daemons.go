// Package daemons runs the node's Open vSwitch daemons for the antrea-ovs
// container: ovsdb-server and ovs-vswitchd as its children, or, when the
// node runs them itself, only watches them. It also tells whether the
// configured datapath can work on this node.
package daemons

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
)

// DefaultSchema is where Debian's openvswitch-common puts the schema.
const DefaultSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// Options of Run.
type Options struct {
	// RunDir holds the sockets (db.sock, the control sockets), the
	// pidfiles and, unless DBFile says otherwise, conf.db.
	RunDir string
	DBFile string
	Schema string
	// StopTimeout bounds the wait for the daemons after SIGTERM.
	StopTimeout time.Duration
	// StopAfter, when set, is a file (the agent's API socket) whose
	// removal the daemons outlive when ctx ends: the agent may need OVS
	// to clean its node up as it stops. Waited for up to StopAfterTimeout.
	StopAfter        string
	StopAfterTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.DBFile == "" {
		o.DBFile = filepath.Join(o.RunDir, "conf.db")
	}
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.StopAfterTimeout == 0 {
		o.StopAfterTimeout = 20 * time.Second
	}
	return o
}

// CheckDatapath reports whether datapath ("system" or "netdev") can run
// here: the kernel datapath needs the openvswitch module, which it loads
// when it is not loaded yet; the userspace datapath needs nothing.
func CheckDatapath(datapath string) error {
	switch datapath {
	case "netdev":
		return nil
	case "system":
	default:
		return fmt.Errorf("ovsDatapathType %q: must be system or netdev", datapath)
	}
	if _, err := os.Stat("/sys/module/openvswitch"); err == nil {
		return nil
	}
	out, err := exec.Command("modprobe", "openvswitch").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovsDatapathType system needs the openvswitch kernel module, and 'modprobe openvswitch' failed (%w: %s); load it on the node or set ovsDatapathType: netdev",
			err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Health checks that both daemons answer on their control sockets.
func Health(ctx context.Context, runDir string) error {
	db, err := ctlSocket(runDir, "ovsdb-server")
	if err != nil {
		return err
	}
	if _, err := unixctl.Call(ctx, db, "version"); err != nil {
		return fmt.Errorf("ovsdb-server: %w", err)
	}
	vs, err := unixctl.VswitchdSocket(runDir)
	if err != nil {
		return err
	}
	if _, err := unixctl.Call(ctx, vs, "version"); err != nil {
		return fmt.Errorf("ovs-vswitchd: %w", err)
	}
	return nil
}

// ctlSocket finds a daemon's control socket: the fixed name <daemon>.ctl,
// else <daemon>.<pid>.ctl.
func ctlSocket(runDir, daemon string) (string, error) {
	fixed := filepath.Join(runDir, daemon+".ctl")
	if _, err := os.Stat(fixed); err == nil {
		return fixed, nil
	}
	data, err := os.ReadFile(filepath.Join(runDir, daemon+".pid"))
	if err != nil {
		return "", fmt.Errorf("no %s control socket in %s: %w", daemon, runDir, err)
	}
	return filepath.Join(runDir, fmt.Sprintf("%s.%s.ctl", daemon, strings.TrimSpace(string(data)))), nil
}

// Watch is the mode for a node that runs OVS itself: it waits for the
// daemons, then checks them every period and logs when their health
// changes, until ctx ends. It never starts or stops them.
func Watch(ctx context.Context, runDir string, period time.Duration) error {
	klog.InfoS("OVS is run by the node; watching it", "runDir", runDir)
	var last error = errors.New("not checked yet")
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := Health(cctx, runDir)
		cancel()
		switch {
		case err == nil && last != nil:
			klog.InfoS("OVS daemons answer", "runDir", runDir)
		case err != nil && (last == nil || err.Error() != last.Error()):
			klog.ErrorS(err, "OVS daemons do not answer", "runDir", runDir)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Run starts ovsdb-server and ovs-vswitchd as children (creating or
// upgrading the database first), logging to this process's stderr, and
// waits. When ctx ends it stops them (SIGTERM) and returns nil; when one
// of them exits on its own it stops the other and returns an error, so
// that the container restarts.
func Run(ctx context.Context, o Options) error {
	o = o.withDefaults()
	if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
		return fmt.Errorf("create OVS run dir: %w", err)
	}
	if err := prepareDB(o); err != nil {
		return err
	}
	sock := filepath.Join(o.RunDir, "db.sock")
	db := exec.Command("ovsdb-server", o.DBFile,
		"--remote=punix:"+sock,
		"--pidfile="+filepath.Join(o.RunDir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(o.RunDir, "ovsdb-server.ctl"),
		"--no-chdir", "-vconsole:info", "-vsyslog:off")
	vs := exec.Command("ovs-vswitchd", "unix:"+sock,
		"--pidfile="+filepath.Join(o.RunDir, "ovs-vswitchd.pid"),
		"--unixctl="+filepath.Join(o.RunDir, "ovs-vswitchd.ctl"),
		"--no-chdir", "-vconsole:info", "-vsyslog:off")
	env := append(os.Environ(), "OVS_RUNDIR="+o.RunDir, "OVS_DBDIR="+filepath.Dir(o.DBFile))
	type exit struct {
		cmd *exec.Cmd
		err error
	}
	var running []*exec.Cmd
	exited := make(chan exit, 2)
	start := func(c *exec.Cmd) error {
		c.Env, c.Stdout, c.Stderr = env, os.Stderr, os.Stderr
		if err := c.Start(); err != nil {
			return fmt.Errorf("start %s: %w", filepath.Base(c.Path), err)
		}
		running = append(running, c)
		go func() {
			err := c.Wait()
			exited <- exit{c, fmt.Errorf("%s exited: %v", filepath.Base(c.Path), err)}
		}()
		return nil
	}
	// stop ends the children still running (ovs-vswitchd first: it is the
	// client of the database) and waits for them.
	stop := func() {
		for i := len(running) - 1; i >= 0; i-- {
			_ = running[i].Process.Signal(syscall.SIGTERM)
		}
		deadline := time.After(o.StopTimeout)
		for len(running) > 0 {
			select {
			case e := <-exited:
				running = without(running, e.cmd)
			case <-deadline:
				for _, c := range running {
					_ = c.Process.Kill()
				}
				return
			}
		}
	}
	// Sockets of an earlier run that did not stop cleanly would make the
	// wait below return before ovsdb-server listens.
	for _, f := range []string{sock, filepath.Join(o.RunDir, "ovsdb-server.ctl"), filepath.Join(o.RunDir, "ovs-vswitchd.ctl")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", f, err)
		}
	}
	if err := start(db); err != nil {
		return err
	}
	if err := waitFor(ctx, sock, 10*time.Second); err != nil {
		stop()
		return err
	}
	if out, err := exec.CommandContext(ctx, "ovs-vsctl", "--db=unix:"+sock, "--timeout=10", "--no-wait", "init").CombinedOutput(); err != nil {
		stop()
		return fmt.Errorf("ovs-vsctl init: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := start(vs); err != nil {
		stop()
		return err
	}
	klog.InfoS("OVS daemons started", "runDir", o.RunDir, "db", o.DBFile)
	select {
	case <-ctx.Done():
		if o.StopAfter != "" {
			waitGone(o.StopAfter, o.StopAfterTimeout)
		}
		klog.InfoS("Stopping the OVS daemons")
		stop()
		return nil
	case e := <-exited:
		running = without(running, e.cmd)
		stop()
		return e.err
	}
}

func without(cmds []*exec.Cmd, c *exec.Cmd) []*exec.Cmd {
	var out []*exec.Cmd
	for _, x := range cmds {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// waitGone waits until path does not exist, at most timeout.
func waitGone(path string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	klog.InfoS("Still there; stopping the OVS daemons anyway", "file", path, "waited", timeout)
}

// prepareDB creates the database from the schema, or converts an existing
// one to a newer schema.
func prepareDB(o Options) error {
	if _, err := os.Stat(o.DBFile); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("ovsdb-tool", "create", o.DBFile, o.Schema).CombinedOutput(); err != nil {
			return fmt.Errorf("ovsdb-tool create %s: %w: %s", o.DBFile, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	out, err := exec.Command("ovsdb-tool", "needs-conversion", o.DBFile, o.Schema).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovsdb-tool needs-conversion %s: %w: %s", o.DBFile, err, strings.TrimSpace(string(out)))
	}
	if strings.TrimSpace(string(out)) == "yes" {
		klog.InfoS("Converting the OVS database to the installed schema", "db", o.DBFile)
		if out, err := exec.Command("ovsdb-tool", "convert", o.DBFile, o.Schema).CombinedOutput(); err != nil {
			return fmt.Errorf("ovsdb-tool convert %s: %w: %s", o.DBFile, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func waitFor(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
