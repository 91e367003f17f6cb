package cluster

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

// Names of the manifest's objects the lab waits on.
const (
	AntreaNamespace      = "kube-system"
	AgentDaemonSet       = "antrea-agent"
	ControllerDeployment = "antrea-controller"
	// AgentSelector and ControllerSelector select their pods.
	AgentSelector      = "app=antrea,component=antrea-agent"
	ControllerSelector = "app=antrea,component=antrea-controller"
)

// RenderedManifest is where the lab keeps antrea.yml as it applied it.
func RenderedManifest(lab layout.Lab) string { return filepath.Join(lab.StateDir, "antrea.yml") }

// labConfig is the lab's part of the configuration: the userspace
// datapath on OVS the node runs (its uplink is on br-phy), the lab's
// Service range, and the API server's own address (no kube-proxy).
func labConfig(tunnelType string) (agent, controller map[string]any) {
	apiServer := "https://" + net.JoinHostPort(layout.ControlPlaneIP.String(), strconv.Itoa(layout.APIServerPort))
	agent = map[string]any{
		"ovsDatapathType":       "netdev",
		"ovsManagedBy":          "host",
		"tunnelType":            tunnelType,
		"serviceCIDR":           layout.ServiceCIDR.String(),
		"kubeAPIServerOverride": apiServer,
	}
	controller = map[string]any{"kubeAPIServerOverride": apiServer}
	return agent, controller
}

// ApplyAntrea renders st.Manifest with the lab's configuration and then
// the keys of set (which stay set for later applies), and applies it with
// kubectl as cluster admin.
func ApplyAntrea(ctx context.Context, lab layout.Lab, st *State, set Settings) error {
	src, err := os.ReadFile(st.Manifest)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	agent, controller := labConfig(st.TunnelType)
	maps.Copy(agent, st.Settings.Agent)
	maps.Copy(agent, set.Agent)
	maps.Copy(controller, st.Settings.Controller)
	maps.Copy(controller, set.Controller)
	out, err := RenderManifest(src, agent, controller)
	if err != nil {
		return fmt.Errorf("%s: %w", st.Manifest, err)
	}
	if err := writeAtomic(RenderedManifest(lab), out); err != nil {
		return err
	}
	if _, err := Kubectl(ctx, lab, *st, "apply", "-f", RenderedManifest(lab)); err != nil {
		return err
	}
	st.Settings.Agent = merged(st.Settings.Agent, set.Agent)
	st.Settings.Controller = merged(st.Settings.Controller, set.Controller)
	return saveState(lab, *st)
}

// merged is a copy of base with over's keys set.
func merged(base, over map[string]any) map[string]any {
	if len(base)+len(over) == 0 {
		return nil
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, over)
	return out
}

// Kubectl runs the lab's kubectl as cluster admin in the control plane's
// namespace and returns its output.
func Kubectl(ctx context.Context, lab layout.Lab, st State, args ...string) (string, error) {
	kubectl := filepath.Join(st.KubeBinDir, "kubectl")
	argv := append([]string{"netns", "exec", lab.ControlPlaneNetns(), kubectl, "--kubeconfig=" + lab.AdminKubeconfig()}, args...)
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// WaitAntreaReady waits until every node runs an up-to-date, ready agent
// (2/2), the controller is available and its API answers through the
// kube-apiserver.
func WaitAntreaReady(ctx context.Context, client kubernetes.Interface, nodes int, timeout time.Duration) error {
	var why string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ds, err := client.AppsV1().DaemonSets(AntreaNamespace).Get(ctx, AgentDaemonSet, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		if !daemonSetRolledOut(ds, nodes) {
			why = fmt.Sprintf("DaemonSet %s: %d/%d ready, %d updated (generation %d observed %d)", ds.Name,
				ds.Status.NumberReady, nodes, ds.Status.UpdatedNumberScheduled, ds.Generation, ds.Status.ObservedGeneration)
			return false, nil
		}
		dep, err := client.AppsV1().Deployments(AntreaNamespace).Get(ctx, ControllerDeployment, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		if dep.Status.ObservedGeneration < dep.Generation || dep.Status.ReadyReplicas < 1 || dep.Status.UpdatedReplicas < 1 {
			why = fmt.Sprintf("Deployment %s: %d ready", dep.Name, dep.Status.ReadyReplicas)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("antrea not ready after %s: %s (see 'antrea-lab kubectl -- get pods -n kube-system -l app=antrea' and the pods' logs under the nodes' kubelet folders)", timeout, why)
	}
	return waitControllerAPI(ctx, client, timeout)
}

func daemonSetRolledOut(ds *appsv1.DaemonSet, nodes int) bool {
	s := ds.Status
	return s.ObservedGeneration >= ds.Generation && int(s.DesiredNumberScheduled) == nodes &&
		int(s.UpdatedNumberScheduled) == nodes && int(s.NumberReady) == nodes && int(s.NumberAvailable) == nodes
}

// StopController scales the controller's Deployment to zero and waits
// until its pod is gone; the agents keep enforcing what they have.
func StopController(ctx context.Context, lab layout.Lab, timeout time.Duration) error {
	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	if err := scaleController(ctx, client, 0); err != nil {
		return err
	}
	return waitPods(ctx, client, ControllerSelector, "", timeout, func(pods []corev1.Pod) bool { return len(pods) == 0 })
}

// StartController scales the controller's Deployment back to one and
// waits until its API answers through the kube-apiserver.
func StartController(ctx context.Context, lab layout.Lab, timeout time.Duration) error {
	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	if err := scaleController(ctx, client, 1); err != nil {
		return err
	}
	if err := waitPods(ctx, client, ControllerSelector, "", timeout, func(pods []corev1.Pod) bool {
		return len(pods) == 1 && PodReady(&pods[0])
	}); err != nil {
		return err
	}
	return waitControllerAPI(ctx, client, timeout)
}

func scaleController(ctx context.Context, client kubernetes.Interface, replicas int32) error {
	_, err := client.AppsV1().Deployments(AntreaNamespace).UpdateScale(ctx, ControllerDeployment, &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: ControllerDeployment, Namespace: AntreaNamespace},
		Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
	}, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("scale Deployment %s to %d: %w", ControllerDeployment, replicas, err)
	}
	return nil
}

// StopAgent keeps the agent off node (label AgentOffLabel=off, which the
// lab's DaemonSet avoids) and waits until its pod is gone. The node keeps
// its bridge and flows: the agent stops as for an upgrade.
func StopAgent(ctx context.Context, lab layout.Lab, node string, timeout time.Duration) error {
	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	if err := labelNode(ctx, client, node, `"off"`); err != nil {
		return err
	}
	return waitPods(ctx, client, AgentSelector, node, timeout, func(pods []corev1.Pod) bool { return len(pods) == 0 })
}

// StartAgent undoes StopAgent and waits until the node's new agent is
// ready.
func StartAgent(ctx context.Context, lab layout.Lab, node string, timeout time.Duration) error {
	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	if err := labelNode(ctx, client, node, "null"); err != nil {
		return err
	}
	return waitPods(ctx, client, AgentSelector, node, timeout, func(pods []corev1.Pod) bool {
		return len(pods) == 1 && PodReady(&pods[0])
	})
}

// RestartAgent deletes node's agent pod and waits until the DaemonSet's
// new one is ready.
func RestartAgent(ctx context.Context, lab layout.Lab, node string, timeout time.Duration) error {
	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	old, err := AgentPod(ctx, client, node)
	if err != nil {
		return err
	}
	if err := client.CoreV1().Pods(AntreaNamespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete agent pod %s: %w", old.Name, err)
	}
	return waitPods(ctx, client, AgentSelector, node, timeout, func(pods []corev1.Pod) bool {
		return len(pods) == 1 && pods[0].UID != old.UID && PodReady(&pods[0])
	})
}

// AgentPod returns the agent pod of node (there must be exactly one).
func AgentPod(ctx context.Context, client kubernetes.Interface, node string) (*corev1.Pod, error) {
	pods, err := client.CoreV1().Pods(AntreaNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: AgentSelector, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, fmt.Errorf("list agent pods of %s: %w", node, err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		return nil, fmt.Errorf("node %s has %d agent pods, want 1", node, len(live))
	}
	return &live[0], nil
}

// ContainerLog is the log file of a container of a pod that runs on node.
func ContainerLog(lab layout.Lab, node string, uid types.UID, container string) string {
	return filepath.Join(lab.KubeletDir(node), "pods", string(uid), container+".log")
}

func labelNode(ctx context.Context, client kubernetes.Interface, node, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, AgentOffLabel, value)
	if _, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label node %s %s=%s: %w", node, AgentOffLabel, value, err)
	}
	return nil
}

// waitPods waits until ok holds for the pods matching selector (on node,
// when set) that are not being deleted... and for those being deleted to
// be gone when ok wants none.
func waitPods(ctx context.Context, client kubernetes.Interface, selector, node string, timeout time.Duration, ok func([]corev1.Pod) bool) error {
	opts := metav1.ListOptions{LabelSelector: selector}
	if node != "" {
		opts.FieldSelector = "spec.nodeName=" + node
	}
	var last []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(AntreaNamespace).List(ctx, opts)
		if err != nil {
			return false, nil
		}
		last = list.Items
		return ok(list.Items), nil
	})
	if err != nil {
		var states []string
		for _, p := range last {
			states = append(states, fmt.Sprintf("%s (%s, ready %v, deleting %v)", p.Name, p.Status.Phase, PodReady(&p), p.DeletionTimestamp != nil))
		}
		return fmt.Errorf("pods %s%s not as expected after %s: %s", selector, onNode(node), timeout, strings.Join(states, ", "))
	}
	return nil
}

func onNode(node string) string {
	if node == "" {
		return ""
	}
	return " on " + node
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitControllerAPI waits until the aggregated API answers through the
// kube-apiserver, which is also when the controller has computed its
// initial state.
func waitControllerAPI(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	path := "/apis/" + v1beta1.SchemeGroupVersion.String() + "/networkpolicies"
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last = client.CoreV1().RESTClient().Get().AbsPath(path).Param("limit", "1").Do(ctx).Error()
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("antrea-controller's API %s not served within %s (last error: %v)", path, timeout, last)
	}
	return nil
}
