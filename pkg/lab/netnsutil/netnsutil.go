// Package netnsutil creates, enters and deletes named network namespaces
// (the ones `ip netns` lists under /var/run/netns) and opens sockets inside
// them without moving the calling process.
package netnsutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted, as iproute2 does.
const Dir = "/var/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(Path(name))
	return err == nil
}

// Create makes a new named network namespace with its loopback up. It fails if
// one of that name exists already.
func Create(name string) error {
	if Exists(name) {
		return fmt.Errorf("network namespace %q already exists", name)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current network namespace: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		// NewNamed may have switched namespaces before failing.
		_ = netns.Set(orig)
		return fmt.Errorf("create network namespace %q: %w", name, err)
	}
	h.Close()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: never hand it back to Go.
		runtime.LockOSThread()
		return fmt.Errorf("return to original network namespace: %w", err)
	}
	return Do(name, setLoopbackUp)
}

// Delete removes the named namespace; a namespace that does not exist is not
// an error.
func Delete(name string) error {
	if !Exists(name) {
		return nil
	}
	p := Path(name)
	// EINVAL: the file is no longer a mount point (its mount lived in a
	// mount namespace that is gone); only the file is left to remove.
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %q: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete network namespace %q: %w", name, err)
	}
	return nil
}

// List returns the names of the named namespaces that start with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Do runs fn on an OS thread that is inside the named namespace. Sockets and
// links created by fn stay in that namespace after Do returns.
func Do(name string, fn func() error) error {
	target, err := netns.GetFromPath(Path(name))
	if err != nil {
		return fmt.Errorf("open network namespace %q: %w", name, err)
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do for an already opened namespace handle.
func DoHandle(target netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: Go discards it when the goroutine ends.
		return fmt.Errorf("return to original network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Dialer returns a DialContext function whose connections are opened inside
// the named namespace, e.g. for a client-go rest.Config.Dial.
func Dialer(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := Do(name, func() error {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			conn = c
			return err
		})
		return conn, err
	}
}

func setLoopbackUp() error {
	return linkUp("lo")
}

// ShareDir makes Dir a shared mount point, as iproute2 does: network
// namespaces made in a mount namespace that keeps it shared (a lab
// kubelet's) or in this one then show up in both.
func ShareDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", Dir, err)
	}
	real, err := filepath.EvalSymlinks(Dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", Dir, err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	mounted := false
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == real {
			mounted = true
		}
	}
	if !mounted {
		if err := unix.Mount(real, real, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on itself: %w", real, err)
		}
	}
	if err := unix.Mount("", real, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", real, err)
	}
	return nil
}
