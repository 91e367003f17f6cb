package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
)

func newControllerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Stop or start the lab's antrea-controller (to see agents ride out its absence)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "stop",
		Short: "Kill antrea-controller, as a crash would; agents keep enforcing what they have",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			if err := cluster.StopController(lab); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "antrea-controller stopped")
			return nil
		},
	})
	var timeout time.Duration
	start := &cobra.Command{
		Use:   "start",
		Short: "Start antrea-controller (again) and wait until its API answers through the kube-apiserver",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			begin := time.Now()
			if err := cluster.RestartController(cmd.Context(), lab, timeout); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "antrea-controller serving in %.2fs\n", time.Since(begin).Seconds())
			return nil
		},
	}
	start.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the API")
	cmd.AddCommand(start)
	return cmd
}
