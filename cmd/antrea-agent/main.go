// Command antrea-agent runs on every node: it owns the OVS bridge and
// connects the node's pods to the pod network.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent"
	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniinstall"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/util/logfile"
)

func main() {
	var configFile string
	var verbosity int
	var logOpts logfile.Options
	cmd := &cobra.Command{
		Use:           "antrea-agent",
		Short:         "The per-node agent of the antrea CNI: OVS bridge, pipeline, pods, tunnels",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := flag.NewFlagSet("klog", flag.ContinueOnError)
			klog.InitFlags(fs)
			_ = fs.Set("v", fmt.Sprint(verbosity))
			logFile, err := logfile.Setup(fs, logOpts)
			if err != nil {
				return err
			}
			defer logFile.Close()
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			defer klog.Flush()
			return agent.Run(ctx, cfg, agent.Options{ConfigFile: configFile, LogFile: logOpts.Path})
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "/etc/antrea/antrea-agent.conf", "the agent's configuration file")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	logOpts.AddFlags(cmd.Flags())
	cmd.AddCommand(newInstallCNICommand(), newHealthCommand())
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-agent:", err)
		os.Exit(1)
	}
}

// newInstallCNICommand is what the install-cni init container runs: the
// plugin binaries found beside this program, then the conflist.
func newInstallCNICommand() *cobra.Command {
	var conflist, confDir, binDir string
	cmd := &cobra.Command{
		Use:   "install-cni",
		Short: "Install the antrea CNI plugin, host-local and the CNI conflist on the node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(conflist)
			if err != nil {
				return fmt.Errorf("--conflist: %w", err)
			}
			if err := cniinstall.ValidateConfList(conflist, data); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own executable: %w", err)
			}
			if err := cniinstall.InstallBinaries(filepath.Dir(exe), binDir); err != nil {
				return err
			}
			if err := cniinstall.InstallConfList(confDir, conflist, data); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s and host-local in %s, %s in %s\n",
				cniinstall.PluginName, binDir, cniinstall.ConfName, confDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&conflist, "conflist", "/etc/antrea/antrea-cni.conflist", "the CNI conflist to install (from the ConfigMap)")
	cmd.Flags().StringVar(&confDir, "cni-conf-dir", "/etc/cni/net.d", "the node's CNI config directory")
	cmd.Flags().StringVar(&binDir, "cni-bin-dir", "/opt/cni/bin", "the node's CNI plugin directory")
	return cmd
}

// newHealthCommand is the agent container's probe: it asks the running
// agent over its API socket.
func newHealthCommand() *cobra.Command {
	var socket string
	var ready bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the agent on this node is alive (--ready: serving pods)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			path := agentapi.PathHealthz
			if ready {
				path = agentapi.PathReadyz
			}
			return agentapi.NewClient(socket).Check(ctx, path)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "/var/run/antrea/agent.sock", "the agent's API socket (apiSocket in antrea-agent.conf)")
	cmd.Flags().BoolVar(&ready, "ready", false, "check readiness rather than liveness")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}
