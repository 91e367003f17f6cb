// Command antrea-ovs is the antrea-ovs container of the agent's DaemonSet:
// it runs the node's Open vSwitch daemons (or watches them when the node
// runs them itself) and is the container's health probe.
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

	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/ovs/daemons"
)

func main() {
	var configFile, dbFile, schema string
	var verbosity int
	cmd := &cobra.Command{
		Use:   "antrea-ovs",
		Short: "Run ovsdb-server and ovs-vswitchd for the antrea agent (or watch the node's own)",
		Long: `antrea-ovs reads antrea-agent.conf: ovsDatapathType says whether the kernel
module is needed (system) or not (netdev), ovsRunDir where the daemons'
sockets live, ovsManagedBy whether it runs the daemons (container) or only
watches those the node runs (host).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := flag.NewFlagSet("klog", flag.ContinueOnError)
			klog.InitFlags(fs)
			_ = fs.Set("v", fmt.Sprint(verbosity))
			cfg, err := loadConfig(configFile)
			if err != nil {
				return err
			}
			if err := daemons.CheckDatapath(cfg.OVSDatapathType); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			defer klog.Flush()
			if cfg.OVSManagedBy == config.OVSManagedByHost {
				return daemons.Watch(ctx, cfg.OVSRunDir, 10*time.Second)
			}
			// The agent may need OVS to clean its node up as it stops:
			// the daemons outlive its API socket.
			return daemons.Run(ctx, daemons.Options{RunDir: cfg.OVSRunDir, DBFile: dbFile, Schema: schema, StopAfter: cfg.APISocket})
		},
	}
	cmd.PersistentFlags().StringVar(&configFile, "config", "/etc/antrea/antrea-agent.conf", "the agent's configuration file")
	cmd.Flags().StringVar(&dbFile, "db", "", "the OVS database file (default: conf.db in ovsRunDir)")
	cmd.Flags().StringVar(&schema, "schema", daemons.DefaultSchema, "the OVS database schema")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	cmd.AddCommand(newHealthCommand(&configFile))
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-ovs:", err)
		os.Exit(1)
	}
}

// loadConfig reads antrea-agent.conf; the node name is not antrea-ovs's
// concern, so a missing one is not an error here.
func loadConfig(path string) (config.AgentConfig, error) {
	if os.Getenv("NODE_NAME") == "" {
		if err := os.Setenv("NODE_NAME", "-"); err != nil {
			return config.AgentConfig{}, err
		}
	}
	return config.Load(path)
}

func newHealthCommand(configFile *string) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when ovsdb-server and ovs-vswitchd answer on their control sockets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(*configFile)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return daemons.Health(ctx, cfg.OVSRunDir)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answers")
	return cmd
}
