// Command antrea-agent runs on every node: it owns the OVS bridge and
// connects the node's pods to the pod network.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent"
	"github.com/ovs-cni/antrea/pkg/agent/config"
)

func main() {
	var configFile string
	var verbosity int
	cmd := &cobra.Command{
		Use:           "antrea-agent",
		Short:         "The per-node agent of the antrea CNI: OVS bridge, pipeline, pods, tunnels",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := flag.NewFlagSet("klog", flag.ContinueOnError)
			klog.InitFlags(fs)
			_ = fs.Set("v", fmt.Sprint(verbosity))
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			defer klog.Flush()
			return agent.Run(ctx, cfg)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "/etc/antrea/antrea-agent.conf", "the agent's configuration file")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-agent:", err)
		os.Exit(1)
	}
}
