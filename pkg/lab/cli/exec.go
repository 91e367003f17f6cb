package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/ovsnode"
)

func newKubectlCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl -- ARGS...",
		Short: "Run kubectl against the lab (as cluster admin)",
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, st, err := g.state()
			if err != nil {
				return err
			}
			kubectl := filepath.Join(st.KubeBinDir, "kubectl")
			if _, err := os.Stat(kubectl); err != nil {
				if kubectl, err = exec.LookPath("kubectl"); err != nil {
					return fmt.Errorf("kubectl: not in %s nor in PATH", st.KubeBinDir)
				}
			}
			argv := append([]string{kubectl, "--kubeconfig=" + lab.AdminKubeconfig()}, args...)
			return runIn(lab.ControlPlaneNetns(), nil, argv)
		},
	}
}

func newExecCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "exec NAMESPACE/POD -- CMD...",
		Short: "Run a command in a pod's network namespace",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, _, client, err := g.client()
			if err != nil {
				return err
			}
			ns, _, err := podNetns(cmd.Context(), lab, client, args[0])
			if err != nil {
				return err
			}
			return runIn(ns, nil, args[1:])
		},
	}
}

func newNodeExecCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "node-exec NODE -- CMD...",
		Short: "Run a command in a node's namespace with that node's OVS as default (NODE 'external' is the external host)",
		Long: `Runs CMD inside the node's network namespace. OVS_RUNDIR and friends point at
the node's own Open vSwitch, so 'ovs-vsctl show' and 'ovs-ofctl dump-flows
br-int' work as on a real node; KUBECONFIG is the lab's admin kubeconfig.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, st, err := g.state()
			if err != nil {
				return err
			}
			node := args[0]
			env := []string{"KUBECONFIG=" + lab.AdminKubeconfig()}
			var ns string
			switch {
			case node == "external":
				ns = lab.ExternalNetns()
			case node == "control-plane":
				ns = lab.ControlPlaneNetns()
			case slices.Contains(st.Nodes, node):
				ns = lab.NodeNetns(node)
				env = append(env, ovsnode.Instance{Netns: ns, Dir: lab.OVSDir(node)}.Env()...)
			default:
				return fmt.Errorf("unknown node %q: the lab has %s, external and control-plane", node, strings.Join(st.Nodes, ", "))
			}
			return runIn(ns, env, args[1:])
		},
	}
}

// podNetns finds the network namespace of "namespace/pod" (or "pod" in
// the default namespace).
func podNetns(ctx context.Context, lab layout.Lab, client kubernetes.Interface, ref string) (string, *corev1.Pod, error) {
	namespace, name := "default", ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		namespace, name = ref[:i], ref[i+1:]
	}
	if namespace == "" || name == "" {
		return "", nil, fmt.Errorf("pod %q: want NAMESPACE/POD", ref)
	}
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil, fmt.Errorf("pod %s/%s not found", namespace, name)
	}
	if err != nil {
		return "", nil, fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	if pod.Spec.NodeName == "" {
		return "", nil, fmt.Errorf("pod %s/%s is not scheduled to a node yet", namespace, name)
	}
	ns := lab.PodNetns(pod.UID)
	if pod.Spec.HostNetwork {
		ns = lab.NodeNetns(pod.Spec.NodeName)
	}
	if !netnsutil.Exists(ns) {
		return "", nil, fmt.Errorf("pod %s/%s has no network namespace yet (phase %s)", namespace, name, pod.Status.Phase)
	}
	return ns, pod, nil
}

// runIn runs argv inside the named namespace with stdio attached, and
// passes its exit code on.
func runIn(netns string, env, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command given")
	}
	c := exec.Command("ip", append([]string{"netns", "exec", netns}, argv...)...)
	c.Env = append(os.Environ(), env...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Code: ee.ExitCode()}
	}
	return err
}
