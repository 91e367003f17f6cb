package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// pluginPath is the antrea-cni binary built by TestMain.
var pluginPath string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "antrea-cni-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating build dir:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	pluginPath = filepath.Join(dir, "antrea-cni")
	build := exec.Command("go", "build", "-o", pluginPath, "github.com/ovs-cni/antrea/cmd/antrea-cni")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building antrea-cni:", err)
		return 1
	}
	return m.Run()
}

// invocation is one execution of the plugin.
type invocation struct {
	command     string
	containerID string
	netns       string
	ifName      string
	args        string
	stdin       []byte
}

// outcome is what the plugin did.
type outcome struct {
	exitCode int
	stdout   []byte
	stderr   []byte
	elapsed  time.Duration
	cniErr   *types.Error // decoded from stdout when exitCode != 0
}

// exec runs the plugin binary as a runtime would: CNI_* variables and the
// config on stdin.
func execPlugin(t testing.TB, inv invocation) outcome {
	t.Helper()
	cmd := exec.Command(pluginPath)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"CNI_COMMAND=" + inv.command,
		"CNI_CONTAINERID=" + inv.containerID,
		"CNI_NETNS=" + inv.netns,
		"CNI_IFNAME=" + inv.ifName,
		"CNI_ARGS=" + inv.args,
		"CNI_PATH=/opt/cni/bin",
	}
	cmd.Stdin = bytes.NewReader(inv.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	out := outcome{stdout: stdout.Bytes(), stderr: stderr.Bytes(), elapsed: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		out.exitCode = exitErr.ExitCode()
		out.cniErr = &types.Error{}
		if jerr := json.Unmarshal(out.stdout, out.cniErr); jerr != nil {
			t.Fatalf("plugin failed without a JSON error on stdout: %v\nstdout: %s\nstderr: %s", jerr, out.stdout, out.stderr)
		}
	default:
		t.Fatalf("running the plugin: %v", err)
	}
	return out
}
