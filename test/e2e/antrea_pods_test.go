package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
	labproc "github.com/ovs-cni/antrea/pkg/lab/kubelet/proc"
)

// Antrea runs as the manifest's pods: these helpers stop, start and read
// them the way an operator would (labels, scaling, pod deletion, logs).

// restartAgent restarts node's agent. With during, the agent is kept off
// the node while during runs (its flows stay), then started again; without,
// its pod is deleted and the DaemonSet's new one awaited.
func restartAgent(t *testing.T, l *Lab, node string, during func()) {
	t.Helper()
	if during == nil {
		l.mustRun(t, "agent", "restart", node)
		return
	}
	l.mustRun(t, "agent", "stop", node)
	defer l.mustRun(t, "agent", "start", node)
	during()
}

// agentLog returns the log of node's current agent container.
func agentLog(t *testing.T, l *Lab, node string) string {
	t.Helper()
	pod, err := cluster.AgentPod(ctx(t, 30*time.Second), l.Client, node)
	require.NoError(t, err)
	data, err := os.ReadFile(cluster.ContainerLog(l.Layout, node, pod.UID, "antrea-agent"))
	require.NoError(t, err)
	return string(data)
}

// controllerLog returns the log of the current controller container.
func controllerLog(t *testing.T, l *Lab) string {
	t.Helper()
	pods, err := l.Client.CoreV1().Pods(cluster.AntreaNamespace).List(ctx(t, 30*time.Second), metav1.ListOptions{LabelSelector: cluster.ControllerSelector})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	p := pods.Items[0]
	data, err := os.ReadFile(cluster.ContainerLog(l.Layout, p.Spec.NodeName, p.UID, "antrea-controller"))
	require.NoError(t, err)
	return string(data)
}

// antreaContainers identifies every running antrea container (pod UID,
// container, restart count): equal before and after means none restarted.
func antreaContainers(t *testing.T, l *Lab) map[string]int32 {
	t.Helper()
	pods, err := l.Client.CoreV1().Pods(cluster.AntreaNamespace).List(ctx(t, 30*time.Second), metav1.ListOptions{LabelSelector: "app=antrea"})
	require.NoError(t, err)
	out := map[string]int32{}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			out[p.Name+"/"+string(p.UID)+"/"+c.Name] = c.RestartCount
		}
	}
	return out
}

// agentPID finds the process of node's agent container: the lab kubelet
// marks every container's environment with its pod's UID.
func agentPID(c context.Context, l *Lab, node string) (int, error) {
	pod, err := cluster.AgentPod(c, l.Client, node)
	if err != nil {
		return 0, err
	}
	marker := []byte(labproc.MarkerEnv + "=" + string(pod.UID) + "\x00")
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		if err != nil || filepath.Base(exe) != "antrea-agent" {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err == nil && bytes.Contains(env, marker) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no antrea-agent process of pod %s on %s", pod.Name, node)
}
