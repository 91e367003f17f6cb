// Package proc starts the lab's long-running processes detached from the
// caller (own session, output to a log file), records each one in a pid file
// with its start time, and stops them again by PID, safely against PID reuse.
package proc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Record is what a pid file holds about one process.
type Record struct {
	Name      string   `json:"name"`
	PID       int      `json:"pid"`
	StartTime uint64   `json:"startTime"` // clock ticks since boot, /proc/PID/stat field 22
	Args      []string `json:"args"`
}

// Spec describes a process to start.
type Spec struct {
	Name    string   // unique within the pid dir, e.g. "kube-apiserver"
	Netns   string   // named network namespace to run in; "" for the caller's
	Args    []string // argv, Args[0] is the program
	Env     []string // extra environment
	LogFile string
}

// Start launches spec in its own session and records it in pidDir.
func Start(pidDir string, spec Spec) (Record, error) {
	if spec.Name == "" || len(spec.Args) == 0 {
		return Record{}, fmt.Errorf("start process: name and args are required")
	}
	argv := spec.Args
	if spec.Netns != "" {
		// nsenter enters only the network namespace. `ip netns exec` would
		// also give the process a private mount namespace, and the named
		// namespaces it creates (pod sandboxes) would be invisible outside.
		argv = append([]string{"nsenter", "--net=" + filepath.Join("/var/run/netns", spec.Netns), "--"}, argv...)
	}
	logf, err := os.OpenFile(spec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Record{}, fmt.Errorf("open log of %s: %w", spec.Name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Record{}, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	// Reap the child if it exits while we still run, so it does not linger
	// as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	st, err := startTime(cmd.Process.Pid)
	if err != nil {
		return Record{}, fmt.Errorf("read start time of %s: %w", spec.Name, err)
	}
	rec := Record{Name: spec.Name, PID: cmd.Process.Pid, StartTime: st, Args: argv}
	if err := Save(pidDir, rec); err != nil {
		return rec, err
	}
	return rec, nil
}

// Save writes rec to <pidDir>/<name>.json.
func Save(pidDir string, rec Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode pid record %s: %w", rec.Name, err)
	}
	if err := os.WriteFile(filepath.Join(pidDir, rec.Name+".json"), data, 0o644); err != nil {
		return fmt.Errorf("write pid record %s: %w", rec.Name, err)
	}
	return nil
}

// Adopt records an already running process (e.g. a daemon that forked
// itself) by its PID.
func Adopt(pidDir, name string, pid int) (Record, error) {
	st, err := startTime(pid)
	if err != nil {
		return Record{}, fmt.Errorf("adopt %s (pid %d): %w", name, pid, err)
	}
	rec := Record{Name: name, PID: pid, StartTime: st}
	return rec, Save(pidDir, rec)
}

// Load reads every record of pidDir.
func Load(pidDir string) ([]Record, error) {
	entries, err := os.ReadDir(pidDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pid dir: %w", err)
	}
	var recs []Record
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(pidDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read pid record %s: %w", e.Name(), err)
		}
		var rec Record
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("decode pid record %s: %w", e.Name(), err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// Alive reports whether the recorded process still runs (same PID and the
// same start time, so a reused PID is not mistaken for it).
func (r Record) Alive() bool {
	st, err := startTime(r.PID)
	return err == nil && st == r.StartTime && !zombie(r.PID)
}

// Stop sends SIGTERM to the recorded process, waits up to grace for it to
// exit, then sends SIGKILL. A process that is already gone is not an error.
func (r Record) Stop(grace time.Duration) error {
	if !r.Alive() {
		return nil
	}
	return Kill(r.PID, grace)
}

// Kill terminates pid: SIGTERM, then SIGKILL after grace.
func Kill(pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !exists(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	for i := 0; i < 100 && exists(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// exists is true while pid runs and is not a zombie.
func exists(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	return !zombie(pid)
}

func zombie(pid int) bool {
	f, err := statFields(pid)
	return err == nil && len(f) > 0 && f[0] == "Z"
}

func startTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// After the comm field, state is fields[0]; starttime is stat field 22,
	// i.e. index 19 here.
	if len(f) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// statFields returns the fields of /proc/PID/stat after the "(comm)" field.
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strings.Fields(s[i+1:]), nil
}
