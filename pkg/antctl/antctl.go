// Package antctl is the antctl CLI: `get` of the controller's computed
// policies and groups (through the kube-apiserver) and of the local
// agent's pods, flows and state (through its API socket), `trace-packet`
// (the local bridge's ofproto/trace), `traceflow` (a Traceflow through the
// cluster), `supportbundle` and `version`.
package antctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/version"
)

// DefaultAgentSocket is the agent's apiSocket in the manifest.
const DefaultAgentSocket = "/var/run/antrea/agent.sock"

type options struct {
	kubeconfig  string
	agentSocket string
	output      string
	timeout     time.Duration
}

func (o *options) agent() *agentapi.Client { return agentapi.NewClient(o.agentSocket) }

func (o *options) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.kubeconfig != "" {
		rules.ExplicitPath = o.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = "antctl/" + version.Version
	return cfg, nil
}

func (o *options) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), o.timeout)
}

func (o *options) validate(cmd *cobra.Command) error {
	switch {
	case o.output == "table" || o.output == "json":
	case o.output == "yaml" && cmd.Name() == "traceflow":
	case cmd.Name() == "traceflow":
		return fmt.Errorf("--output %q: must be table, json or yaml", o.output)
	default:
		return fmt.Errorf("--output %q: must be table or json", o.output)
	}
	return nil
}

// NewCommand is antctl's root command.
func NewCommand() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:   "antctl",
		Short: "Inspect antrea: the controller's policies and groups, and on a node its agent's pods, flows and state",
		Long: `antctl reads the controller's view through the Kubernetes API (--kubeconfig,
KUBECONFIG or ~/.kube/config) and, on a node, the agent's view through its
local API socket (--agent-socket; root only).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return o.validate(cmd)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&o.agentSocket, "agent-socket", DefaultAgentSocket, "the local agent's API socket")
	f.StringVarP(&o.output, "output", "o", "table", "table or json (traceflow: also yaml)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for an answer (traceflow: the trace's timeout, default 20s)")
	get := &cobra.Command{Use: "get", Short: "Show antrea objects and state"}
	get.AddCommand(newGetPodInterface(o), newGetOVSFlows(o), newGetAgentInfo(o),
		newGetControlplane(o, v1beta1.SchemeGroupVersion, "networkpolicy", "networkpolicies", true, []string{"netpol", "np"}),
		newGetControlplane(o, v1beta1.SchemeGroupVersion, "appliedtogroup", "appliedtogroups", false, []string{"atg"}),
		newGetControlplane(o, v1beta1.SchemeGroupVersion, "addressgroup", "addressgroups", false, []string{"ag"}),
		newGetControlplane(o, statsv1alpha1.SchemeGroupVersion, "networkpolicystats", "networkpolicystats", true, []string{"nps", "stats"}),
		newGetControllerInfo(o))
	root.AddCommand(get, newVersion(o), newTracePacket(o), newTraceflow(o), newSupportBundle(o))
	return root
}

func newVersion(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print antctl's version, and the local agent's when it answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := map[string]string{"antctl": version.Version}
			ctx, cancel := o.context(cmd)
			defer cancel()
			if info, err := o.agent().Info(ctx); err == nil {
				out["agent"] = info.Version
			}
			if o.output == "json" {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "antctl version: %s\n", out["antctl"])
			if v, ok := out["agent"]; ok {
				fmt.Fprintf(cmd.OutOrStdout(), "agent version: %s\n", v)
			}
			return nil
		},
	}
}

func newGetPodInterface(o *options) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:     "podinterface [NAME]",
		Aliases: []string{"podinterfaces", "pi"},
		Short:   "The pods of this node: port, IP, MAC, OpenFlow port (agent)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := o.context(cmd)
			defer cancel()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			pods, err := o.agent().PodInterfaces(ctx, namespace, name)
			if err != nil {
				return err
			}
			if name != "" && len(pods) == 0 {
				return fmt.Errorf("pod %q not found on this node", name)
			}
			if o.output == "json" {
				return writeJSON(cmd.OutOrStdout(), pods)
			}
			rows := [][]string{{"NAMESPACE", "NAME", "INTERFACE", "IP", "MAC", "OFPORT", "CONTAINER"}}
			for _, p := range pods {
				rows = append(rows, []string{p.Namespace, p.Name, p.InterfaceName, p.IP, p.MAC, fmt.Sprint(p.OFPort), short(p.ContainerID)})
			}
			return writeTable(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace")
	return cmd
}

func newGetOVSFlows(o *options) *cobra.Command {
	var q agentapi.FlowQuery
	cmd := &cobra.Command{
		Use:     "ovsflows",
		Aliases: []string{"of"},
		Short:   "The OpenFlow flows the agent installed, with their table and what they belong to (agent)",
		Example: `  antctl get ovsflows -p default/web-0         # a pod's own flows and its isolation
  antctl get ovsflows --policy default/deny     # a NetworkPolicy's rule flows
  antctl get ovsflows -T SpoofGuard             # one table, by name or number`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := o.context(cmd)
			defer cancel()
			flows, err := o.agent().Flows(ctx, q)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSON(cmd.OutOrStdout(), flows)
			}
			rows := [][]string{{"TABLE", "OWNER", "FLOW"}}
			for _, f := range flows {
				rows = append(rows, []string{fmt.Sprintf("%d %s", f.Table, f.TableName), shortOwner(f.Owner), f.Flow})
			}
			return writeTable(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().StringVarP(&q.Pod, "pod", "p", "", "NAMESPACE/NAME of a pod of this node")
	cmd.Flags().StringVar(&q.Policy, "policy", "", "NAMESPACE/NAME of a NetworkPolicy applied on this node")
	cmd.Flags().StringVarP(&q.Table, "table", "T", "", "a table's number or name")
	return cmd
}

func newGetAgentInfo(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "agentinfo",
		Short: "The local agent: health, versions, node network, counts, flows per table (agent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := o.context(cmd)
			defer cancel()
			info, err := o.agent().Info(ctx)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			ready := "yes"
			if !info.Ready {
				ready = "no: " + info.NotReadyReason
			}
			total := 0
			tables := make([]string, 0, len(info.FlowsByTable))
			for t, n := range info.FlowsByTable {
				total += n
				tables = append(tables, fmt.Sprintf("%s=%d", t, n))
			}
			sortTables(tables)
			rows := [][]string{
				{"NODE", info.NodeName}, {"READY", ready}, {"OVS CONNECTED", fmt.Sprint(info.OVSConnected)},
				{"VERSION", info.Version}, {"OVS VERSION", info.OVSVersion},
				{"DATAPATH", info.DatapathType}, {"TUNNEL", info.TunnelType},
				{"NODE IP", info.NodeIP}, {"POD CIDR", info.PodCIDR}, {"GATEWAY", info.GatewayIP},
				{"STARTED", info.StartTime.Format(time.RFC3339)}, {"FLOW ROUND", fmt.Sprint(info.FlowRound)},
				{"PODS", fmt.Sprint(info.Pods)}, {"NETWORKPOLICIES", fmt.Sprint(info.NetworkPolicies)},
				{"FLOWS", fmt.Sprintf("%d (%s)", total, strings.Join(tables, " "))},
			}
			return writeTable(cmd.OutOrStdout(), rows)
		},
	}
}

// newGetControlplane lists one resource of controlplane.antrea.io as the
// controller computed it, printed with the columns the controller's API
// serves.
func newGetControlplane(o *options, gv schema.GroupVersion, kind, resource string, namespaced bool, aliases []string) *cobra.Command {
	var namespace string
	if kind == resource {
		aliases = slices.DeleteFunc(aliases, func(a string) bool { return a == resource })
	} else {
		aliases = append(aliases, resource)
	}
	cmd := &cobra.Command{
		Use:     kind + " [NAME]",
		Aliases: aliases,
		Short:   "The controller's " + resource + " (" + gv.Group + ")",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if namespaced && len(args) == 1 && namespace == "" {
				return fmt.Errorf("%s %s: --namespace (-n) is required with a name", kind, args[0])
			}
			if !namespaced && namespace != "" {
				return fmt.Errorf("--namespace: %s are not namespaced", resource)
			}
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			client, err := rest.UnversionedRESTClientFor(withJSON(cfg))
			if err != nil {
				return fmt.Errorf("API client: %w", err)
			}
			ctx, cancel := o.context(cmd)
			defer cancel()
			path := "/apis/" + gv.String() + "/"
			if namespace != "" {
				path += "namespaces/" + namespace + "/"
			}
			path += resource
			if len(args) == 1 {
				path += "/" + args[0]
			}
			req := client.Get().AbsPath(path)
			if o.output == "json" {
				body, err := req.DoRaw(ctx)
				if err != nil {
					return fmt.Errorf("get %s: %w", resource, err)
				}
				_, err = cmd.OutOrStdout().Write(append(body, '\n'))
				return err
			}
			body, err := req.SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
			if err != nil {
				return fmt.Errorf("get %s: %w", resource, err)
			}
			var t metav1.Table
			if err := json.Unmarshal(body, &t); err != nil {
				return fmt.Errorf("decode %s: %w", resource, err)
			}
			return writeTable(cmd.OutOrStdout(), tableRows(&t))
		},
	}
	if namespaced {
		cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace's (default: all namespaces)")
	}
	return cmd
}

func withJSON(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType = "application/json"
	c.GroupVersion = &v1beta1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = clientscheme.Codecs.WithoutConversion()
	return c
}

// tableRows prints a server-side Table, with a NAMESPACE column first when
// its objects are namespaced (as kubectl get -A).
func tableRows(t *metav1.Table) [][]string {
	namespaces := make([]string, len(t.Rows))
	namespaced := false
	for i, r := range t.Rows {
		var m metav1.PartialObjectMetadata
		if len(r.Object.Raw) > 0 && json.Unmarshal(r.Object.Raw, &m) == nil && m.Namespace != "" {
			namespaces[i], namespaced = m.Namespace, true
		}
	}
	var header []string
	if namespaced {
		header = append(header, "NAMESPACE")
	}
	for _, c := range t.ColumnDefinitions {
		header = append(header, strings.ToUpper(c.Name))
	}
	rows := [][]string{header}
	for i, r := range t.Rows {
		var row []string
		if namespaced {
			row = append(row, namespaces[i])
		}
		for _, c := range r.Cells {
			row = append(row, fmt.Sprint(c))
		}
		rows = append(rows, row)
	}
	return rows
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// shortOwner shortens the container IDs in flow owners (pod/<64 hex>) as
// podinterface shows them.
func shortOwner(owner string) string {
	parts := strings.Split(owner, "/")
	for i, p := range parts {
		if len(p) == 64 && strings.Trim(p, "0123456789abcdef") == "" {
			parts[i] = short(p)
		}
	}
	return strings.Join(parts, "/")
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func newTracePacket(o *options) *cobra.Command {
	var q agentapi.TraceQuery
	var raw bool
	cmd := &cobra.Command{
		Use:   "trace-packet -S NS/POD -D NS/POD|NS/SERVICE|IP [-p tcp|udp|icmp] [--dport PORT]",
		Short: "Trace a packet from a pod of this node through the bridge, table by table, with what decided its fate (agent)",
		Example: `  antctl trace-packet -S default/client -D default/web --dport 8080
  antctl trace-packet -S default/client -D kube-system/kube-dns -p udp --dport 53
  antctl trace-packet -S default/client -D 10.96.0.10 -p udp --dport 53`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Source == "" || q.Destination == "" {
				return fmt.Errorf("--source and --destination are required")
			}
			ctx, cancel := o.context(cmd)
			defer cancel()
			res, err := o.agent().TracePacket(ctx, q)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			if raw {
				_, err := fmt.Fprintln(w, res.Raw)
				return err
			}
			fmt.Fprintf(w, "packet: %s\n", res.Packet)
			if res.Service != "" {
				fmt.Fprintf(w, "service: %s (its ClusterIP)\n", res.Service)
			}
			if res.Endpoint != "" {
				fmt.Fprintf(w, "endpoint: %s (a bucket of the Service's group; the steps after it are the packet as DNATed there)\n", res.Endpoint)
			}
			fmt.Fprintln(w)
			rows := [][]string{{"TABLE", "KIND", "MATCHED", "ACTIONS"}}
			for _, s := range res.Steps {
				table := fmt.Sprintf("%d %s", s.Table, s.TableName)
				if s.NoMatch {
					rows = append(rows, []string{table, "(no match)", "", ""})
					continue
				}
				match := s.Match
				if s.Policy != "" {
					match += "  [" + s.Policy + "]"
				}
				rows = append(rows, []string{table, s.Kind, match, "-> " + strings.Join(s.Actions, ", ")})
			}
			if err := writeTable(w, rows); err != nil {
				return err
			}
			fmt.Fprintf(w, "\nresult: %s\n", res.Outcome)
			if res.Decision != "" {
				fmt.Fprintf(w, "why: %s\n", res.Decision)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&q.Source, "source", "S", "", "NAMESPACE/NAME of a pod of this node")
	f.StringVarP(&q.Destination, "destination", "D", "", "NAMESPACE/NAME of a pod (any node) or of a Service (its ClusterIP), or an IPv4 address")
	f.StringVarP(&q.Protocol, "protocol", "p", "tcp", "tcp, udp or icmp")
	f.IntVar(&q.DstPort, "dport", 80, "destination port (tcp, udp)")
	f.BoolVar(&raw, "raw", false, "print OVS's own ofproto/trace output")
	return cmd
}
