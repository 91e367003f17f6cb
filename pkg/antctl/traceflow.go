package antctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/crdclient"
)

// traceflowOptions are the flags of `antctl traceflow`.
type traceflowOptions struct {
	source, destination string
	protocol            string
	srcPort, dstPort    int
	flags               string
	keep                bool
}

// waitMargin is how much longer than the trace's own timeout antctl waits
// for its result (the status writes of the agents and of the controller).
const waitMargin = 10 * time.Second

func newTraceflow(o *options) *cobra.Command {
	var to traceflowOptions
	cmd := &cobra.Command{
		Use:   "traceflow -S NS/POD -D NS/POD|NS/SERVICE|IP [-p tcp|udp|icmp] [--dport PORT] [--keep]",
		Short: "Send a packet from a pod through the cluster and show what every node it crosses does with it (Traceflow)",
		Long: `traceflow creates a Traceflow (crd.antrea.io/v1alpha1): the agent of the
source pod's node injects a real packet as if the pod had sent it, and every
node the packet crosses reports what it did with it. antctl waits for the
result, prints it (a table of observations per node; -o yaml or json prints
the object), and deletes the Traceflow unless --keep.

The destination is a pod (NAMESPACE/NAME), else a Service of that name, or
an IPv4 address. --timeout is the Traceflow's timeout (20s when not given);
antctl waits 10s longer for the result. antctl fails when the trace fails
(bad input, timeout), not when the packet is dropped: that is a result.`,
		Example: `  antctl traceflow -S default/client -D default/web
  antctl traceflow -S default/client -D default/web-svc --dport 8080 -o yaml
  antctl traceflow -S default/client -D 10.10.1.5 -p udp --dport 53 --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			timeout := time.Duration(v1alpha1.DefaultTimeoutSeconds) * time.Second
			if cmd.Flags().Changed("timeout") {
				timeout = o.timeout
			}
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			kc, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			tfc, err := crdclient.NewTraceflows(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+waitMargin)
			defer cancel()
			tf, err := to.traceflow(ctx, kc, timeout)
			if err != nil {
				return err
			}
			tf, err = tfc.Create(ctx, tf)
			if err != nil {
				return fmt.Errorf("create Traceflow: %w", err)
			}
			if !to.keep {
				defer func() {
					dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer dcancel()
					if err := tfc.Delete(dctx, tf.Name); err != nil && !apierrors.IsNotFound(err) {
						fmt.Fprintf(cmd.ErrOrStderr(), "antctl: delete Traceflow %s: %v\n", tf.Name, err)
					}
				}()
			}
			done, err := waitTraceflow(ctx, tfc, tf.Name)
			if err != nil {
				return fmt.Errorf("traceflow %s: no result within %s: %w", tf.Name, timeout+waitMargin, err)
			}
			if err := printTraceflow(cmd.OutOrStdout(), o.output, done); err != nil {
				return err
			}
			if done.Status.Phase == v1alpha1.PhaseFailed {
				return fmt.Errorf("traceflow %s failed: %s", done.Name, done.Status.Reason)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&to.source, "source", "S", "", "NAMESPACE/NAME of the pod the packet comes from")
	f.StringVarP(&to.destination, "destination", "D", "", "NAMESPACE/NAME of a pod or else of a Service, or an IPv4 address")
	f.StringVarP(&to.protocol, "protocol", "p", "tcp", "tcp, udp or icmp")
	f.IntVar(&to.srcPort, "sport", 0, "source port (tcp, udp; default: a random ephemeral port)")
	f.IntVar(&to.dstPort, "dport", 0, "destination port (tcp, udp; default: a Service's first port of the protocol, else 80)")
	f.StringVar(&to.flags, "flags", "", "TCP flags, e.g. syn or syn,ack (default syn)")
	f.BoolVar(&to.keep, "keep", false, "keep the Traceflow object (delete it with kubectl delete traceflow NAME)")
	return cmd
}

// traceflow builds the Traceflow the flags ask for, looking the
// destination up when it is a name.
func (to traceflowOptions) traceflow(ctx context.Context, kc kubernetes.Interface, timeout time.Duration) (*v1alpha1.Traceflow, error) {
	if to.source == "" || to.destination == "" {
		return nil, errors.New("--source and --destination are required")
	}
	srcNS, srcPod, ok := strings.Cut(to.source, "/")
	if !ok || srcNS == "" || srcPod == "" || strings.Contains(srcPod, "/") {
		return nil, fmt.Errorf("--source %q: want NAMESPACE/POD", to.source)
	}
	spec := v1alpha1.TraceflowSpec{Source: v1alpha1.Source{Namespace: srcNS, Pod: srcPod},
		Packet: v1alpha1.Packet{SrcPort: int32(to.srcPort), DstPort: int32(to.dstPort)}}
	switch p := strings.ToUpper(to.protocol); p {
	case "TCP", "UDP", "ICMP":
		spec.Packet.Protocol = v1alpha1.Protocol(p)
	default:
		return nil, fmt.Errorf("--protocol %q: must be tcp, udp or icmp", to.protocol)
	}
	if to.flags != "" {
		flags, err := parseTCPFlags(to.flags)
		if err != nil {
			return nil, err
		}
		spec.Packet.Flags = int32(flags)
	}
	if timeout < time.Second || timeout > v1alpha1.MaxTimeoutSeconds*time.Second {
		return nil, fmt.Errorf("--timeout %s: must be between 1s and %ds", timeout, v1alpha1.MaxTimeoutSeconds)
	}
	spec.Timeout = int32(timeout / time.Second)
	dst, err := resolveDestination(ctx, kc, to.destination)
	if err != nil {
		return nil, err
	}
	spec.Destination = dst
	if err := v1alpha1.ValidateSpec(&spec); err != nil {
		return nil, err
	}
	prefix := srcPod
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return &v1alpha1.Traceflow{ObjectMeta: metav1.ObjectMeta{GenerateName: "antctl-" + strings.TrimRight(prefix, "-.") + "-"}, Spec: spec}, nil
}

// resolveDestination reads -D: an IPv4 address, or NAMESPACE/NAME of a pod
// (first) or a Service.
func resolveDestination(ctx context.Context, kc kubernetes.Interface, dst string) (v1alpha1.Destination, error) {
	if ip, err := netip.ParseAddr(dst); err == nil {
		if !ip.Is4() {
			return v1alpha1.Destination{}, fmt.Errorf("--destination %s: IPv4 only", dst)
		}
		return v1alpha1.Destination{IP: ip.String()}, nil
	}
	ns, name, ok := strings.Cut(dst, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return v1alpha1.Destination{}, fmt.Errorf("--destination %q: want NAMESPACE/NAME of a pod or Service, or an IPv4 address", dst)
	}
	_, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return v1alpha1.Destination{Namespace: ns, Pod: name}, nil
	}
	if !apierrors.IsNotFound(err) {
		return v1alpha1.Destination{}, fmt.Errorf("--destination %s: %w", dst, err)
	}
	_, err = kc.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return v1alpha1.Destination{Namespace: ns, Service: name}, nil
	}
	if apierrors.IsNotFound(err) {
		return v1alpha1.Destination{}, fmt.Errorf("--destination %s: no pod or Service of that name", dst)
	}
	return v1alpha1.Destination{}, fmt.Errorf("--destination %s: %w", dst, err)
}

var tcpFlagNames = map[string]uint8{"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20, "ece": 0x40, "cwr": 0x80}

// parseTCPFlags reads "syn,ack" (or a number, 0 to 255).
func parseTCPFlags(s string) (uint8, error) {
	if n, err := strconv.ParseUint(s, 0, 8); err == nil {
		return uint8(n), nil
	}
	var flags uint8
	for _, name := range strings.Split(strings.ToLower(s), ",") {
		f, ok := tcpFlagNames[strings.TrimSpace(name)]
		if !ok {
			return 0, fmt.Errorf("--flags %q: %q is not one of fin, syn, rst, psh, ack, urg, ece, cwr", s, name)
		}
		flags |= f
	}
	return flags, nil
}

// waitTraceflow polls the Traceflow until its phase is final.
func waitTraceflow(ctx context.Context, tfc *crdclient.Traceflows, name string) (*v1alpha1.Traceflow, error) {
	var last *v1alpha1.Traceflow
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		tf, err := tfc.Get(ctx, name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return false, fmt.Errorf("deleted while it ran")
			}
			return false, nil
		}
		last = tf
		return tf.Status.Phase.Terminal(), nil
	})
	if err != nil && last != nil {
		return nil, fmt.Errorf("%w (last phase %q)", err, last.Status.Phase)
	}
	return last, err
}

func printTraceflow(w io.Writer, output string, tf *v1alpha1.Traceflow) error {
	tf.APIVersion, tf.Kind = v1alpha1.SchemeGroupVersion.String(), "Traceflow"
	switch output {
	case "json":
		return writeJSON(w, tf)
	case "yaml":
		out, err := yaml.Marshal(tf)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	return writeTraceflow(w, tf)
}

// writeTraceflow prints a Traceflow for people: what was sent, a table of
// observations per node, and the result.
func writeTraceflow(w io.Writer, tf *v1alpha1.Traceflow) error {
	st := tf.Status
	fmt.Fprintf(w, "traceflow: %s\nphase: %s\n", tf.Name, st.Phase)
	if st.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", st.Reason)
	}
	fmt.Fprintf(w, "source: %s/%s  destination: %s\n", tf.Spec.Source.Namespace, tf.Spec.Source.Pod, tf.Spec.Destination)
	if p := st.Packet; p != nil {
		fmt.Fprintf(w, "packet: %s, tag %d, sent by %s\n", describePacket(p), st.DataplaneTag, st.SenderNode)
	}
	for _, r := range st.Results {
		fmt.Fprintf(w, "\n%s (%s, %s)\n", r.Node, r.Role, r.Timestamp.UTC().Format("15:04:05"))
		rows := [][]string{{"COMPONENT", "TABLE", "ACTION", "DETAIL"}}
		for _, ob := range r.Observations {
			rows = append(rows, []string{string(ob.Component), ob.ComponentInfo, string(ob.Action), describeObservation(ob)})
		}
		if err := writeTable(w, rows); err != nil {
			return err
		}
	}
	if res := traceflowResult(st); res != "" {
		fmt.Fprintf(w, "\nresult: %s\n", res)
	}
	return nil
}

func describePacket(p *v1alpha1.InjectedPacket) string {
	switch p.Protocol {
	case v1alpha1.ProtocolICMP:
		return fmt.Sprintf("ICMP echo request %s -> %s", p.SrcIP, p.DstIP)
	case v1alpha1.ProtocolTCP:
		var names []string
		for _, n := range []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"} {
			if uint8(p.Flags)&tcpFlagNames[n] != 0 {
				names = append(names, strings.ToUpper(n))
			}
		}
		return fmt.Sprintf("TCP %s:%d -> %s:%d [%s]", p.SrcIP, p.SrcPort, p.DstIP, p.DstPort, strings.Join(names, ","))
	}
	return fmt.Sprintf("%s %s:%d -> %s:%d", p.Protocol, p.SrcIP, p.SrcPort, p.DstIP, p.DstPort)
}

// describeObservation is an observation's details in words.
func describeObservation(ob v1alpha1.Observation) string {
	var parts []string
	if ob.Pod != "" {
		parts = append(parts, "pod "+ob.Pod)
	}
	if ob.NetworkPolicy != "" {
		parts = append(parts, "NetworkPolicy "+ob.NetworkPolicy+", "+ob.NetworkPolicyRule)
	}
	if len(ob.IsolatedBy) > 0 {
		parts = append(parts, "isolated by NetworkPolicy "+strings.Join(ob.IsolatedBy, ", "))
	}
	if ob.TranslatedDstIP != "" {
		svc := "Service"
		if ob.Service != "" {
			svc = "Service " + ob.Service
		}
		parts = append(parts, fmt.Sprintf("%s -> endpoint %s:%d", svc, ob.TranslatedDstIP, ob.TranslatedDstPort))
	} else if ob.Service != "" {
		parts = append(parts, "Service "+ob.Service)
	}
	if ob.TunnelDstIP != "" {
		to := ob.TunnelDstIP
		if ob.TunnelDstNode != "" {
			to = ob.TunnelDstNode + " (" + ob.TunnelDstIP + ")"
		}
		parts = append(parts, "tunnel to "+to)
	}
	if ob.Detail != "" {
		parts = append(parts, ob.Detail)
	}
	return strings.Join(parts, "; ")
}

// traceflowResult sums the trace up in a line: its final observation.
func traceflowResult(st v1alpha1.TraceflowStatus) string {
	for i := len(st.Results) - 1; i >= 0; i-- {
		r := st.Results[i]
		if len(r.Observations) == 0 {
			continue
		}
		last := r.Observations[len(r.Observations)-1]
		if !last.Action.Final() {
			continue
		}
		what := map[v1alpha1.Action]string{v1alpha1.ActionDelivered: "delivered", v1alpha1.ActionDropped: "dropped",
			v1alpha1.ActionForwardedOutOfNetwork: "forwarded out of the cluster network"}[last.Action]
		where := string(last.Component)
		if last.ComponentInfo != "" && last.ComponentInfo != where {
			where += " " + last.ComponentInfo
		}
		s := fmt.Sprintf("%s on %s (%s)", what, r.Node, where)
		if d := describeObservation(last); d != "" {
			s += ": " + d
		}
		return s
	}
	return ""
}
