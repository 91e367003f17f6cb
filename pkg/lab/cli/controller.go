package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
)

func newControllerCommand(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Stop or start the lab's antrea-controller (to see agents ride out its absence)",
	}
	cmd.PersistentFlags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait")
	cmd.AddCommand(&cobra.Command{
		Use:   "stop",
		Short: "Scale the antrea-controller Deployment to 0; agents keep enforcing what they have",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			if err := cluster.StopController(cmd.Context(), lab, timeout); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "antrea-controller stopped")
			return nil
		},
	}, &cobra.Command{
		Use:   "start",
		Short: "Scale the antrea-controller Deployment to 1 and wait until its API answers through the kube-apiserver",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			begin := time.Now()
			if err := cluster.StartController(cmd.Context(), lab, timeout); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "antrea-controller serving in %.2fs\n", time.Since(begin).Seconds())
			return nil
		},
	})
	return cmd
}

func newAgentCommand(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Stop, start or restart the antrea agent of one node",
	}
	cmd.PersistentFlags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait")
	op := func(use, short, done string, f func(*cobra.Command, string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " NODE", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				begin := time.Now()
				if err := f(cmd, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "agent of %s %s in %.2fs\n", args[0], done, time.Since(begin).Seconds())
				return nil
			},
		}
	}
	cmd.AddCommand(
		op("stop", "Keep the agent off the node (label "+cluster.AgentOffLabel+"=off); its flows stay", "stopped", func(cmd *cobra.Command, node string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			return cluster.StopAgent(cmd.Context(), lab, node, timeout)
		}),
		op("start", "Let the DaemonSet run the node's agent again and wait until it is ready", "ready", func(cmd *cobra.Command, node string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			return cluster.StartAgent(cmd.Context(), lab, node, timeout)
		}),
		op("restart", "Delete the node's agent pod and wait until the DaemonSet's new one is ready", "restarted", func(cmd *cobra.Command, node string) error {
			lab, err := g.lab()
			if err != nil {
				return err
			}
			return cluster.RestartAgent(cmd.Context(), lab, node, timeout)
		}),
	)
	return cmd
}

func newAntreaCommand(g *globals) *cobra.Command {
	var sets []string
	var timeout time.Duration
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Render antrea.yml with the lab's configuration (and --set keys) and apply it; wait for the rollout",
		Example: `  antrea-lab antrea apply --set agent.defaultMTU=1400
  antrea-lab antrea apply --set controller.apiPort=10400`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set, err := parseSets(sets)
			if err != nil {
				return err
			}
			lab, st, client, err := g.client()
			if err != nil {
				return err
			}
			if st.CNI != cluster.CNIAntrea {
				return fmt.Errorf("lab %q runs --cni %s, not antrea", lab.Name, st.CNI)
			}
			begin := time.Now()
			if err := cluster.ApplyAntrea(cmd.Context(), lab, &st, set); err != nil {
				return err
			}
			if err := cluster.WaitAntreaReady(cmd.Context(), client, len(st.Nodes), timeout); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %s and rolled out in %.1fs\n", cluster.RenderedManifest(lab), time.Since(begin).Seconds())
			return nil
		},
	}
	apply.Flags().StringArrayVar(&sets, "set", nil, "agent.KEY=VALUE or controller.KEY=VALUE: a key of antrea-agent.conf or antrea-controller.conf (VALUE in YAML; null unsets)")
	apply.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the rollout")
	cmd := &cobra.Command{Use: "antrea", Short: "Deploy antrea.yml to the lab again, with changed configuration"}
	cmd.AddCommand(apply)
	return cmd
}

// parseSets turns agent.KEY=VALUE flags into Settings.
func parseSets(sets []string) (cluster.Settings, error) {
	var s cluster.Settings
	for _, kv := range sets {
		key, value, ok := strings.Cut(kv, "=")
		component, name, dotted := strings.Cut(key, ".")
		if !ok || !dotted || name == "" {
			return s, fmt.Errorf("--set %q: want agent.KEY=VALUE or controller.KEY=VALUE", kv)
		}
		var v any
		if err := yaml.Unmarshal([]byte(value), &v); err != nil {
			return s, fmt.Errorf("--set %q: value: %w", kv, err)
		}
		switch component {
		case "agent":
			if s.Agent == nil {
				s.Agent = map[string]any{}
			}
			s.Agent[name] = v
		case "controller":
			if s.Controller == nil {
				s.Controller = map[string]any{}
			}
			s.Controller[name] = v
		default:
			return s, fmt.Errorf("--set %q: %q is not agent or controller", kv, component)
		}
	}
	return s, nil
}
