package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
)

func newAntctlCommand(g *globals) *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "antctl [--node NODE] -- ARGS...",
		Short: "Run antctl against the lab: as cluster admin, and with --node against that node's agent",
		Example: `  antrea-lab antctl -- get networkpolicy
  antrea-lab antctl --node node-1 -- get ovsflows -p default/web-0
  antrea-lab antctl -- supportbundle --dir /tmp/bug`,
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, st, err := g.state()
			if err != nil {
				return err
			}
			argv := []string{filepath.Join(st.BinDir, "antctl"), "--kubeconfig=" + lab.AdminKubeconfig()}
			if node != "" {
				if !slices.Contains(st.Nodes, node) {
					return fmt.Errorf("--node %q: the lab's nodes are %v", node, st.Nodes)
				}
				argv = append(argv, "--agent-socket="+cluster.AgentAPISocket(lab, node))
			}
			if _, err := os.Stat(argv[0]); err != nil {
				return fmt.Errorf("antctl: %w (run 'make build')", err)
			}
			// The API server is reached in the control plane's namespace.
			return runIn(lab.ControlPlaneNetns(), nil, append(argv, args...))
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node whose agent answers agent commands")
	return cmd
}
