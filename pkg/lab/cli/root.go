// Package cli is the antrea-lab command line: it parses flags and hands
// each command to the lab packages that do the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

// KubeVersion is the Kubernetes release whose binaries the lab runs; the
// Makefile stamps it from hack/tools/kubernetes/go.mod.
var KubeVersion = "v0.0.0-unset"

// DefaultName is the lab name when --name is not given.
const DefaultName = "antrea-lab"

// ExitError carries a process exit code through cobra.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// globals are the flags every command shares.
type globals struct {
	name     string
	stateDir string
}

func (g *globals) lab() (layout.Lab, error) {
	dir := g.stateDir
	if dir == "" {
		root := repoRoot()
		if g.name == DefaultName {
			dir = filepath.Join(root, "_output", "lab")
		} else {
			dir = filepath.Join(root, "_output", g.name)
		}
	}
	return layout.New(g.name, dir)
}

// state returns the lab and its recorded state; it fails clearly if no
// lab is up.
func (g *globals) state() (layout.Lab, cluster.State, error) {
	lab, err := g.lab()
	if err != nil {
		return lab, cluster.State{}, err
	}
	st, err := cluster.LoadState(lab)
	return lab, st, err
}

// client returns the lab's admin client; it fails clearly if no lab is up.
func (g *globals) client() (layout.Lab, cluster.State, kubernetes.Interface, error) {
	lab, st, err := g.state()
	if err != nil {
		return lab, st, nil, err
	}
	cs, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return lab, st, nil, err
	}
	return lab, st, cs, nil
}

// binDir is the folder of this executable: bin/ of the checkout.
func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}

func repoRoot() string { return filepath.Dir(binDir()) }

// NewRootCommand builds the antrea-lab command tree.
func NewRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "antrea-lab",
		Short: "A Kubernetes lab on one machine: a real control plane and OVS nodes in network namespaces",
		Long: `antrea-lab runs a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) and simulated nodes, each a network
namespace with its own Open vSwitch (userspace datapath) and a small kubelet
that runs pods as network namespaces and calls CNI as a container runtime does.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.name, "name", DefaultName, "lab name; prefixes every network namespace the lab creates")
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", "", "folder for all lab state (default _output/lab of the checkout)")
	root.AddCommand(
		newUpCommand(g),
		newDownCommand(g),
		newStatusCommand(g),
		newKubectlCommand(g),
		newExecCommand(g),
		newNodeExecCommand(g),
		newProbeCommand(g),
		newMatrixCommand(g),
		newRestartOVSCommand(g),
		newControllerCommand(g),
		newAgentCommand(g),
		newAntreaCommand(g),
		newAntctlCommand(g),
	)
	return root
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context) int {
	err := NewRootCommand().ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "antrea-lab:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "antrea-lab:", err)
	return 1
}
