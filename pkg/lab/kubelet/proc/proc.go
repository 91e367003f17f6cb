// Package proc starts and watches container processes: each runs in its own
// session with its output appended to a log file, and is recognised later by
// a marker (the pod UID) in its command line or environment, which defeats
// PID reuse after a kubelet restart.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// MarkerEnv carries the pod UID in every container's environment.
const MarkerEnv = "ANTREA_LAB_POD_UID"

// Spec describes a process to start.
type Spec struct {
	Path    string
	Args    []string // without argv[0]
	Env     []string
	LogPath string
	Dir     string
}

// Status of a process.
type Status struct {
	Running bool
	// ExitCode is valid when ExitKnown; processes adopted after a restart
	// exit without the kubelet learning their code.
	ExitCode  int
	ExitKnown bool
}

// Runtime starts and inspects processes.
type Runtime interface {
	Start(s Spec) (pid int, err error)
	Status(pid int, marker string) Status
	// Signal sends sig to the process group of pid.
	Signal(pid int, sig syscall.Signal) error
}

// OS is the Runtime of the real machine.
type OS struct {
	mu     sync.Mutex
	exited map[int]int
	// children started by this runtime and not reaped yet: their state
	// is known from Wait, without reading /proc (which reads empty while a
	// process execs, e.g. run-container becoming the container's command).
	children map[int]bool
}

// NewOS returns a Runtime that runs real processes.
func NewOS() *OS { return &OS{exited: map[int]int{}, children: map[int]bool{}} }

// Start implements Runtime.
func (o *OS) Start(s Spec) (int, error) {
	if s.Path == "" {
		return 0, errors.New("start process: field path is empty")
	}
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return 0, fmt.Errorf("open container log %s: %w", s.LogPath, err)
	}
	defer logf.Close()
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Path, err)
	}
	pid := cmd.Process.Pid
	delete(o.exited, pid)
	o.children[pid] = true
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		} else if err != nil {
			code = -1
		}
		o.mu.Lock()
		o.exited[pid] = code
		delete(o.children, pid)
		o.mu.Unlock()
	}()
	return pid, nil
}

// Status implements Runtime.
func (o *OS) Status(pid int, marker string) Status {
	if pid <= 0 {
		return Status{}
	}
	o.mu.Lock()
	code, done := o.exited[pid]
	child := o.children[pid]
	o.mu.Unlock()
	if done {
		return Status{ExitCode: code, ExitKnown: true}
	}
	if child {
		return Status{Running: true}
	}
	if Matches(pid, marker) {
		return Status{Running: true}
	}
	return Status{}
}

// Matches reports whether pid is a live (non-zombie) process whose command
// line or environment contains marker.
func Matches(pid int, marker string) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return false
	}
	if marker == "" {
		return true
	}
	if cmdline, err := os.ReadFile(dir + "/cmdline"); err == nil && bytes.Contains(cmdline, []byte(marker)) {
		return true
	}
	environ, err := os.ReadFile(dir + "/environ")
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(environ), "\x00") {
		if kv == MarkerEnv+"="+marker {
			return true
		}
	}
	return false
}

// Signal implements Runtime.
func (o *OS) Signal(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return fmt.Errorf("signal: invalid pid %d", pid)
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(pid, sig)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %v to process group %d: %w", sig, pid, err)
	}
	return nil
}
