// Command antrea-lab-kubelet is the kubelet of a simulated lab node: it
// registers the node, keeps its heartbeat and runs the node's pods as
// processes attached to the network through CNI.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/runcontainer"
)

func main() {
	if err := newCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-lab-kubelet:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var cfg kubelet.Config
	var verbosity int
	cmd := &cobra.Command{
		Use:           "antrea-lab-kubelet",
		Short:         "Kubelet and container runtime of a simulated lab node",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setVerbosity(verbosity)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			defer klog.Flush()
			return kubelet.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.LabName, "lab-name", "", "name of the lab")
	f.StringVar(&cfg.StateDir, "state-dir", "", "state directory of the lab")
	f.StringVar(&cfg.NodeName, "node-name", "", "name of this node")
	f.StringVar(&cfg.NodeIP, "node-ip", "", "InternalIP of this node")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig authenticating as system:node:<name>")
	f.StringVar(&cfg.BinDir, "bin-dir", "", "folder of the lab binaries (lab-agnhost, antrea-agent, ...)")
	f.DurationVar(&cfg.NetworkCheckPeriod, "network-check-period", 30*time.Second, "how often running pod sandboxes are verified with CNI CHECK")
	f.IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	cmd.AddCommand(newRunContainerCommand())
	return cmd
}

func setVerbosity(v int) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", fmt.Sprint(v))
}

func newRunContainerCommand() *cobra.Command {
	var opts runcontainer.Options
	var mounts []string
	var podUID string
	cmd := &cobra.Command{
		Use:    "run-container [flags] -- COMMAND [ARGS...]",
		Short:  "Set up a container process and exec its command (internal)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			for _, s := range mounts {
				m, err := runcontainer.ParseMount(s)
				if err != nil {
					return err
				}
				opts.Mounts = append(opts.Mounts, m)
			}
			opts.Argv = args
			return runcontainer.Exec(opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Netns, "netns", "", "network namespace path to enter (empty: stay)")
	f.StringVar(&opts.Workdir, "workdir", "", "working directory")
	f.StringArrayVar(&mounts, "mount", nil, "bind mount SRC:DST[:ro] (repeatable)")
	f.StringArrayVar(&opts.KeepShared, "keep-shared", nil, "mount point that stays shared with the caller's mount namespace (repeatable)")
	f.StringVar(&podUID, "pod-uid", "", "UID of the pod (marks the process)")
	return cmd
}
