package cli

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/probe"
)

func newProbeCommand(g *globals) *cobra.Command {
	var from, to, protocol, request string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe --from NS/POD|node/NODE|external --to HOST:PORT",
		Short: "Try one connection from a pod; exit 0 connected, 1 not connected, 2 error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fail := func(err error) error { return &ExitError{Code: 2, Err: err} }
			if from == "" || to == "" {
				return fail(fmt.Errorf("--from and --to are required"))
			}
			lab, st, client, err := g.client()
			if err != nil {
				return fail(err)
			}
			var ns string
			switch node, isNode := strings.CutPrefix(from, "node/"); {
			case from == "external":
				ns = lab.ExternalNetns()
			case isNode:
				if !slices.Contains(st.Nodes, node) {
					return fail(fmt.Errorf("--from %q: unknown node; the lab has %s", from, strings.Join(st.Nodes, ", ")))
				}
				ns = lab.NodeNetns(node)
			default:
				if ns, _, err = podNetns(cmd.Context(), lab, client, from); err != nil {
					return fail(err)
				}
			}
			r, err := probe.ProbeRequest(cmd.Context(), ns, strings.ToLower(protocol), to, timeout, request)
			if err != nil {
				return fail(err)
			}
			if !r.Connected {
				fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s/%s: not connected (%s)\n", from, to, protocol, r.Detail)
				return &ExitError{Code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s/%s: connected, reply %q\n", from, to, protocol, r.Reply)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source: a pod (NAMESPACE/POD), a node's host network (node/NODE), or the external host (external)")
	cmd.Flags().StringVar(&request, "request", probe.RequestHostname, "what to ask the server: hostname, clientip (the address it saw) or serverip (the address it was reached at, tcp only)")
	cmd.Flags().StringVar(&to, "to", "", "destination HOST:PORT")
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Second, "how long to wait for a connection or reply")
	return cmd
}

func newMatrixCommand(g *globals) *cobra.Command {
	var namespaces []string
	var port int
	var protocol, to string
	var timeout time.Duration
	var concurrency, attempts int
	cmd := &cobra.Command{
		Use:   "matrix --namespaces x,y,z --port 80",
		Short: "Probe every ordered pod pair of the namespaces and print the reachability truth table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 1 || port > 65535 {
				return fmt.Errorf("--port %d: must be 1-65535", port)
			}
			if to != "pod-ip" && to != "service" {
				return fmt.Errorf("--to %q: must be pod-ip or service", to)
			}
			lab, _, client, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var eps []probe.Endpoint
			for _, ns := range namespaces {
				pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return fmt.Errorf("list pods of %s: %w", ns, err)
				}
				sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
				for i := range pods.Items {
					pod := &pods.Items[i]
					if pod.DeletionTimestamp != nil {
						continue
					}
					ref := ns + "/" + pod.Name
					netns, _, err := podNetns(ctx, lab, client, ref)
					if err != nil {
						return err
					}
					host, err := matrixTarget(ctx, client, pod, to)
					if err != nil {
						return err
					}
					eps = append(eps, probe.Endpoint{Name: ref, Netns: netns, Addr: net.JoinHostPort(host, strconv.Itoa(port))})
				}
			}
			if len(eps) == 0 {
				return fmt.Errorf("no pods in namespaces %s", strings.Join(namespaces, ","))
			}
			t, err := probe.Matrix(ctx, eps, strings.ToLower(protocol), timeout, concurrency, attempts)
			if err != nil {
				return err
			}
			return t.Write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringSliceVar(&namespaces, "namespaces", []string{"x", "y", "z"}, "namespaces whose pods are probed")
	cmd.Flags().IntVar(&port, "port", 80, "destination port")
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	cmd.Flags().StringVar(&to, "to", "pod-ip", "probe each pod's IP (pod-ip) or its Service s-<ns>-<pod> (service)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Second, "per-probe timeout")
	cmd.Flags().IntVar(&concurrency, "concurrency", 32, "probes in flight at once")
	cmd.Flags().IntVar(&attempts, "attempts", 2, "tries per pair before it counts as blocked")
	return cmd
}

// matrixTarget is where probes to pod go: its IP, or the ClusterIP of the
// per-pod Service the upstream NetworkPolicy suite creates (s-<ns>-<pod>).
func matrixTarget(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, to string) (string, error) {
	if to == "pod-ip" {
		if pod.Status.PodIP == "" {
			return "", fmt.Errorf("pod %s/%s has no IP yet", pod.Namespace, pod.Name)
		}
		return pod.Status.PodIP, nil
	}
	name := "s-" + pod.Namespace + "-" + pod.Name
	svc, err := client.CoreV1().Services(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("--to service: pod %s/%s has no Service %s", pod.Namespace, pod.Name, name)
	}
	if err != nil {
		return "", fmt.Errorf("get service %s/%s: %w", pod.Namespace, name, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("service %s/%s has no ClusterIP", pod.Namespace, name)
	}
	return svc.Spec.ClusterIP, nil
}
