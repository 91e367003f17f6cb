package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
)

func newUpCommand(g *globals) *cobra.Command {
	o := cluster.Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring a lab up: control plane, underlay, nodes with OVS and kubelet, external host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			if o.BinDir == "" {
				o.BinDir = binDir()
			}
			if o.Manifest == "" {
				o.Manifest = filepath.Join(repoRoot(), "build", "yamls", "antrea.yml")
			}
			if o.KubeBinDir == "" {
				o.KubeBinDir = filepath.Join(repoRoot(), "_output", "cache", "kubernetes", KubeVersion, "bin")
			}
			start := time.Now()
			if err := cluster.Up(cmd.Context(), lab, o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %q is up: %d nodes Ready in %.1fs (cni %s)\n", lab.Name, o.Nodes, time.Since(start).Seconds(), o.CNI)
			fmt.Fprintf(cmd.OutOrStdout(), "try: %s kubectl -- get nodes -o wide\n", cmd.Root().Name())
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Nodes, "nodes", 2, "number of nodes")
	cmd.Flags().StringVar(&o.CNI, "cni", cluster.CNIAntrea, "pod network: antrea, or bridge (the reference bridge + host-local plugins, same-node only)")
	cmd.Flags().StringVar(&o.TunnelType, "tunnel-type", "vxlan", "tunnel between nodes with --cni antrea: vxlan or geneve")
	cmd.Flags().StringVar(&o.Manifest, "manifest", "", "antrea.yml to deploy with --cni antrea (default: build/yamls/antrea.yml of the checkout)")
	cmd.Flags().StringVar(&o.BinDir, "bin-dir", "", "folder of the lab's own binaries (default: this executable's folder)")
	cmd.Flags().StringVar(&o.KubeBinDir, "kube-bin-dir", "", "folder of the Kubernetes binaries (default: the build cache of the pinned release)")
	cmd.Flags().StringVar(&o.EtcdBin, "etcd", "/usr/bin/etcd", "etcd binary")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 90*time.Second, "how long to wait for each stage")
	return cmd
}

func newDownCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the lab and delete its namespaces and state (also after a crashed up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			res, err := cluster.Down(lab)
			if err != nil {
				return err
			}
			if res.NothingUp {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to do: no lab %q is up (no state in %s, no network namespaces named %s*)\n", lab.Name, lab.StateDir, lab.NetnsPrefix())
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %q is down: stopped %d processes, deleted %d network namespaces\n", lab.Name, res.Processes, res.Namespaces)
			return nil
		},
	}
}

func newStatusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the lab's processes and nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, _, client, err := g.client()
			if err != nil {
				return err
			}
			return cluster.PrintStatus(cmd.Context(), cmd.OutOrStdout(), lab, client)
		},
	}
}

func newRestartOVSCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restart-ovs NODE",
		Short: "Kill a node's ovs-vswitchd and start it again, as a crash and restart would",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			start := time.Now()
			if err := cluster.RestartVswitchd(lab, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ovs-vswitchd of %s restarted in %.2fs\n", args[0], time.Since(start).Seconds())
			return nil
		},
	}
}
