package proc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartStatusSignal(t *testing.T) {
	o := NewOS()
	log := filepath.Join(t.TempDir(), "c.log")
	pid, err := o.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo hello; exec sleep 30"}, Env: []string{MarkerEnv + "=uid-1"}, LogPath: log})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return o.Status(pid, "uid-1").Running }, 5*time.Second, 10*time.Millisecond)
	assert.False(t, Matches(pid, "uid-other"), "marker must match")
	pgid, err := syscall.Getpgid(pid)
	require.NoError(t, err)
	assert.Equal(t, pid, pgid, "own session and process group")
	// Signal only once the shell has written its line, or SIGTERM may win.
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(log)
		return string(b) == "hello\n"
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, o.Signal(pid, syscall.SIGTERM))
	require.Eventually(t, func() bool {
		s := o.Status(pid, "uid-1")
		return !s.Running && s.ExitKnown
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 128+int(syscall.SIGTERM), o.Status(pid, "uid-1").ExitCode)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(b))
}

func TestExitCodeAndErrors(t *testing.T) {
	o := NewOS()
	dir := t.TempDir()
	pid, err := o.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "exit 3"}, LogPath: filepath.Join(dir, "l")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return o.Status(pid, "x").ExitKnown }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 3, o.Status(pid, "x").ExitCode)
	_, err = o.Start(Spec{LogPath: filepath.Join(dir, "l")})
	require.ErrorContains(t, err, "field path is empty")
	_, err = o.Start(Spec{Path: "/nonexistent", LogPath: filepath.Join(dir, "l")})
	require.ErrorContains(t, err, "start /nonexistent")
	assert.False(t, o.Status(0, "x").Running)
}

// TestChildRunningWhileItExecs: a child that execs right away (as
// run-container does) counts as running throughout, even in the instant
// when /proc shows neither its old nor its new environment.
func TestChildRunningWhileItExecs(t *testing.T) {
	o := NewOS()
	dir := t.TempDir()
	// No marker anywhere in the command line or environment: only the
	// runtime's own record says the child is ours.
	pid, err := o.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "exec sleep 5"}, Env: []string{"PATH=/usr/bin:/bin"}, LogPath: filepath.Join(dir, "l")})
	require.NoError(t, err)
	defer func() { _ = o.Signal(pid, syscall.SIGKILL) }()
	for i := 0; i < 50; i++ {
		require.True(t, o.Status(pid, "uid-absent").Running, "check %d", i)
		time.Sleep(2 * time.Millisecond)
	}
}
