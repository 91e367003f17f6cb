// Package runcontainer is the child side of a lab container: it enters the
// pod's network namespace, makes a private mount namespace, bind-mounts the
// pod's volumes and then replaces itself with the container's command.
package runcontainer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mount is one parsed --mount SRC:DST[:ro] flag.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// ParseMount parses SRC:DST or SRC:DST:ro.
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("--mount %q: want SRC:DST or SRC:DST:ro", s)
	}
	m := Mount{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return Mount{}, fmt.Errorf("--mount %q: option %q is not ro or rw", s, parts[2])
		}
		m.ReadOnly = parts[2] == "ro"
	}
	if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
		return Mount{}, fmt.Errorf("--mount %q: source and target must be absolute paths", s)
	}
	return m, nil
}

// Options of one container start.
type Options struct {
	Netns   string // path; "" stays in the current namespace
	Workdir string
	Mounts  []Mount
	// KeepShared are mount points that stay peers of the caller's (e.g.
	// /var/run/netns, so that network namespaces made on either side show
	// up on the other); every other mount becomes a slave.
	KeepShared []string
	Argv       []string
}

// Exec sets the process up and execs the command; it only returns on error.
func Exec(o Options) error {
	if len(o.Argv) == 0 {
		return errors.New("run-container: no command given after --")
	}
	// Namespaces belong to threads: stay on this one until exec.
	runtime.LockOSThread()
	if o.Netns != "" {
		fd, err := unix.Open(o.Netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", o.Netns, err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", o.Netns, err)
		}
		unix.Close(fd)
	}
	if len(o.Mounts) > 0 {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
		if err := slaveMounts(o.KeepShared); err != nil {
			return err
		}
		for _, m := range o.Mounts {
			if err := bind(m); err != nil {
				return err
			}
		}
	}
	if o.Workdir != "" {
		if err := os.MkdirAll(o.Workdir, 0o755); err != nil {
			return fmt.Errorf("create working dir %s: %w", o.Workdir, err)
		}
		if err := os.Chdir(o.Workdir); err != nil {
			return fmt.Errorf("enter working dir %s: %w", o.Workdir, err)
		}
	}
	path := o.Argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fmt.Errorf("find command %s: %w", path, err)
		}
		path = p
	}
	if err := syscall.Exec(path, o.Argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

func bind(m Mount) error {
	if filepath.Clean(m.Source) == filepath.Clean(m.Target) && !m.ReadOnly {
		// A host path at its own place (e.g. /var/run/netns): the
		// container already sees it, with what appears there later.
		return nil
	}
	fi, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount source %s: %w", m.Source, err)
	}
	if fi.IsDir() {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", m.Target, err)
		}
	} else if _, err := os.Lstat(m.Target); err != nil {
		if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
			return fmt.Errorf("create parent of mount point %s: %w", m.Target, err)
		}
		f, err := os.OpenFile(m.Target, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create mount point %s: %w", m.Target, err)
		}
		f.Close()
	}
	if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// slaveMounts makes every mount a slave of the caller's, so that what is
// mounted here does not show up there, except the mounts at or below the
// keep paths, which stay as they are.
func slaveMounts(keep []string) error {
	if len(keep) == 0 {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make mounts slaves: %w", err)
		}
		return nil
	}
	var kept []string
	for _, k := range keep {
		r, err := filepath.EvalSymlinks(k)
		if err != nil {
			return fmt.Errorf("shared mount %s: %w", k, err)
		}
		kept = append(kept, r)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	for _, target := range MountPoints(string(data)) {
		if under(target, kept) {
			continue
		}
		if err := unix.Mount("", target, "", unix.MS_SLAVE, ""); err != nil {
			if target == "/" {
				return fmt.Errorf("make / a slave: %w", err)
			}
			// A mount hidden under another cannot be changed, and
			// nothing is mounted through it.
			fmt.Fprintf(os.Stderr, "run-container: warning: make %s a slave: %v\n", target, err)
		}
	}
	return nil
}

// MountPoints lists the mount points of a mountinfo text, parents first.
func MountPoints(mountinfo string) []string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || seen[f[4]] {
			continue
		}
		seen[f[4]] = true
		out = append(out, unescapeMountinfo(f[4]))
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func under(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}
