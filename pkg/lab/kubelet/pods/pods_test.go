package pods

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

const wait = 5 * time.Second
const tick = 10 * time.Millisecond

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func markDeleted(t *testing.T, h *harness, p *corev1.Pod) {
	t.Helper()
	p = h.getPod(p.Namespace, p.Name)
	require.NotNil(t, p)
	now := metav1.Now()
	grace := int64(30)
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	_, err := h.client.CoreV1().Pods(p.Namespace).Update(context.Background(), p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func TestPodLifecycle(t *testing.T) {
	h := newHarness(t)
	pod := testPod("web-1", "uid-1111-2222-3333")
	h.start(pod)
	defer h.stop()

	require.Eventually(t, func() bool {
		p := h.getPod("default", "web-1")
		return p != nil && p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick)
	p := h.getPod("default", "web-1")
	assert.Equal(t, "10.10.1.2", p.Status.PodIP)
	assert.Equal(t, "172.18.0.11", p.Status.HostIP)
	require.Len(t, p.Status.ContainerStatuses, 1)
	cs := p.Status.ContainerStatuses[0]
	assert.True(t, cs.Ready)
	assert.NotNil(t, cs.State.Running)
	assert.True(t, strings.HasPrefix(cs.ContainerID, "antrea-lab://"))
	assert.Len(t, strings.TrimPrefix(cs.ContainerID, "antrea-lab://"), 64)
	for _, c := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady} {
		assert.Equal(t, corev1.ConditionTrue, condition(p, c), c)
	}
	// CNI got the runtime arguments and a namespace that existed.
	adds, _ := h.net.counts()
	require.Equal(t, 1, adds)
	a := h.net.adds[0]
	assert.Equal(t, "default", a.PodNamespace)
	assert.Equal(t, "web-1", a.PodName)
	assert.Equal(t, "uid-1111-2222-3333", a.PodUID)
	assert.Len(t, a.ContainerID, 64)
	assert.Equal(t, h.netns.Path(layout.PodNetns("lab", pod.UID)), a.NetNS)
	assert.True(t, h.net.netnsSeen[0])
	// lab-agnhost serves the declared ports inside the namespace.
	h.rt.mu.Lock()
	spec := h.rt.started[0]
	h.rt.mu.Unlock()
	assert.Equal(t, filepath.Join(h.binDir, AgnhostBinary), spec.Path)
	assert.Equal(t, []string{"--netns", a.NetNS, "--name", "web-1", "--pod-uid", "uid-1111-2222-3333", "--tcp", "80", "--udp", "81"}, spec.Args)
	// State was persisted.
	st, err := h.store.Load("uid-1111-2222-3333")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.10.1.2"}, st.IPs)

	markDeleted(t, h, pod)
	require.Eventually(t, func() bool { return h.getPod("default", "web-1") == nil }, wait, tick)
	_, dels := h.net.counts()
	assert.Equal(t, 1, dels)
	assert.Equal(t, 0, h.netns.count(), "netns deleted")
	assert.Equal(t, 0, h.rt.runningCount(), "processes stopped")
	_, err = os.Stat(h.store.PodDir("uid-1111-2222-3333"))
	assert.True(t, os.IsNotExist(err), "state dir removed")
	evs := strings.Join(h.events(), "\n")
	for _, want := range []string{"Normal Pulled", "Normal Created", "Normal Started", "Normal Killing"} {
		assert.Contains(t, evs, want)
	}
}

func TestCNIAddFailureRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failDels int
	}{
		{"DEL succeeds", 0},
		// A plugin whose ADD fails often fails DEL too; that must not stop
		// the retries.
		{"DEL fails as well", 2},
	} {
		t.Run(tc.name, func(t *testing.T) { testCNIAddFailureRetries(t, tc.failDels) })
	}
}

func testCNIAddFailureRetries(t *testing.T, failDels int) {
	h := newHarness(t)
	h.net.failAdds = 2
	h.net.failDels = failDels
	h.start(testPod("web-2", "uid-2"))
	defer h.stop()

	require.Eventually(t, func() bool {
		p := h.getPod("default", "web-2")
		return p != nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != ""
	}, wait, tick)
	adds, dels := h.net.counts()
	assert.Equal(t, 3, adds)
	assert.Equal(t, 2, dels, "each failed ADD is followed by DEL")
	assert.Equal(t, 1, h.netns.count(), "failed attempts left no namespace behind")
	// Every attempt used a fresh sandbox ID.
	assert.NotEqual(t, h.net.adds[0].ContainerID, h.net.adds[1].ContainerID)
	evs := h.events()
	n := 0
	for _, e := range evs {
		if strings.HasPrefix(e, "Warning FailedCreatePodSandBox") {
			n++
			assert.Contains(t, e, "agent not reachable")
		}
	}
	assert.Equal(t, 2, n)
}

func TestPendingWhileSandboxFails(t *testing.T) {
	h := newHarness(t)
	h.net.failAdds = 1000
	h.start(testPod("web-3", "uid-3"))
	defer h.stop()
	require.Eventually(t, func() bool {
		p := h.getPod("default", "web-3")
		return p != nil && len(p.Status.ContainerStatuses) == 1
	}, wait, tick)
	time.Sleep(200 * time.Millisecond)
	p := h.getPod("default", "web-3")
	assert.Equal(t, corev1.PodPending, p.Status.Phase)
	assert.Equal(t, "ContainerCreating", p.Status.ContainerStatuses[0].State.Waiting.Reason)
	assert.Equal(t, corev1.ConditionFalse, condition(p, corev1.PodReadyToStartContainers))
	assert.Equal(t, corev1.ConditionFalse, condition(p, corev1.PodReady))
	assert.Equal(t, 0, h.netns.count())
	assert.Equal(t, 0, h.rt.runningCount())
}

func TestReadinessProbeGatesReady(t *testing.T) {
	h := newHarness(t)
	h.checker.set(false)
	pod := testPod("web-4", "uid-4")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
		PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1,
	}
	h.start(pod)
	defer h.stop()
	require.Eventually(t, func() bool {
		p := h.getPod("default", "web-4")
		return p != nil && p.Status.Phase == corev1.PodRunning
	}, wait, tick)
	time.Sleep(300 * time.Millisecond)
	p := h.getPod("default", "web-4")
	assert.Equal(t, corev1.ConditionFalse, condition(p, corev1.PodReady))
	assert.Equal(t, corev1.ConditionFalse, condition(p, corev1.ContainersReady))
	assert.False(t, p.Status.ContainerStatuses[0].Ready)
	h.checker.set(true)
	require.Eventually(t, func() bool {
		return condition(h.getPod("default", "web-4"), corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick)
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		name      string
		policy    corev1.RestartPolicy
		exitCode  int
		wantPhase corev1.PodPhase
		restarts  bool
	}{
		{"never succeeded", corev1.RestartPolicyNever, 0, corev1.PodSucceeded, false},
		{"never failed", corev1.RestartPolicyNever, 3, corev1.PodFailed, false},
		{"onfailure succeeded", corev1.RestartPolicyOnFailure, 0, corev1.PodSucceeded, false},
		{"onfailure restarts", corev1.RestartPolicyOnFailure, 1, corev1.PodRunning, true},
		{"always restarts", corev1.RestartPolicyAlways, 0, corev1.PodRunning, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			pod := testPod("job", "uid-job")
			pod.Spec.RestartPolicy = tt.policy
			h.start(pod)
			defer h.stop()
			require.Eventually(t, func() bool {
				p := h.getPod("default", "job")
				return p.Status.Phase == corev1.PodRunning
			}, wait, tick)
			h.rt.exitWith(1001, tt.exitCode)
			if tt.restarts {
				require.Eventually(t, func() bool {
					p := h.getPod("default", "job")
					cs := p.Status.ContainerStatuses[0]
					return cs.RestartCount == 1 && cs.State.Running != nil
				}, wait, tick)
				p := h.getPod("default", "job")
				require.NotNil(t, p.Status.ContainerStatuses[0].LastTerminationState.Terminated)
				assert.Equal(t, int32(tt.exitCode), p.Status.ContainerStatuses[0].LastTerminationState.Terminated.ExitCode)
				return
			}
			require.Eventually(t, func() bool {
				return h.getPod("default", "job").Status.Phase == tt.wantPhase
			}, wait, tick, "case %d", i)
			p := h.getPod("default", "job")
			term := p.Status.ContainerStatuses[0].State.Terminated
			require.NotNil(t, term)
			assert.Equal(t, int32(tt.exitCode), term.ExitCode)
			assert.Equal(t, corev1.ConditionFalse, condition(p, corev1.PodReady))
			// The network of a finished pod is released.
			require.Eventually(t, func() bool { return h.netns.count() == 0 }, wait, tick)
		})
	}
}

func TestRestartAdoption(t *testing.T) {
	h := newHarness(t)
	pod := testPod("web-5", "uid-5")
	gone := testPod("gone", "uid-gone")
	h.start(pod, gone)
	require.Eventually(t, func() bool {
		a := h.getPod("default", "web-5")
		b := h.getPod("default", "gone")
		return a.Status.Phase == corev1.PodRunning && b.Status.Phase == corev1.PodRunning &&
			condition(a, corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick)
	h.stop()
	assert.Equal(t, 2, h.rt.runningCount(), "kubelet exit leaves pods running")
	before := h.getPod("default", "web-5")

	// While the kubelet is down, "gone" is force-deleted.
	require.NoError(t, h.client.CoreV1().Pods("default").Delete(context.Background(), "gone", metav1.DeleteOptions{}))
	addsBefore, _ := h.net.counts()
	h.start()
	defer h.stop()
	require.Eventually(t, func() bool {
		_, err := os.Stat(h.store.PodDir("uid-gone"))
		return os.IsNotExist(err)
	}, wait, tick)
	time.Sleep(200 * time.Millisecond)
	adds, dels := h.net.counts()
	assert.Equal(t, addsBefore, adds, "adopted pod kept its sandbox")
	assert.Equal(t, 1, dels, "vanished pod was detached")
	assert.Equal(t, 1, h.rt.runningCount())
	assert.Equal(t, 1, h.netns.count())
	h.net.mu.Lock()
	assert.Positive(t, h.net.checks, "adopted sandboxes are verified with CNI CHECK")
	assert.True(t, h.net.gcCalled)
	require.Len(t, h.net.gcValid, 1)
	h.net.mu.Unlock()
	after := h.getPod("default", "web-5")
	assert.Equal(t, before.Status.ContainerStatuses[0].ContainerID, after.Status.ContainerStatuses[0].ContainerID, "container not restarted")
	assert.Equal(t, int32(0), after.Status.ContainerStatuses[0].RestartCount)
	assert.Equal(t, corev1.ConditionTrue, condition(after, corev1.PodReady))
	st, err := h.store.Load("uid-5")
	require.NoError(t, err)
	assert.Equal(t, h.net.gcValid[0].ContainerID, st.SandboxID)
}

func TestAdoptionRestartsDeadContainer(t *testing.T) {
	h := newHarness(t)
	pod := testPod("web-6", "uid-6")
	h.start(pod)
	require.Eventually(t, func() bool { return h.getPod("default", "web-6").Status.Phase == corev1.PodRunning }, wait, tick)
	h.stop()
	// The process died while the kubelet was down; its exit code is unknown.
	h.rt.mu.Lock()
	delete(h.rt.running, 1001)
	h.rt.mu.Unlock()
	h.start()
	defer h.stop()
	require.Eventually(t, func() bool {
		cs := h.getPod("default", "web-6").Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.State.Running != nil
	}, wait, tick)
	cs := h.getPod("default", "web-6").Status.ContainerStatuses[0]
	assert.Equal(t, "ContainerStatusUnknown", cs.LastTerminationState.Terminated.Reason)
}

func TestHostNetworkPodAndUnsupportedFeatures(t *testing.T) {
	h := newHarness(t)
	pod := testPod("hostnet", "uid-7")
	pod.Spec.HostNetwork = true
	pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 9, Protocol: corev1.ProtocolSCTP})
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox", Command: []string{"sh", "-c", "true"}}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}}
	h.start(pod)
	defer h.stop()
	require.Eventually(t, func() bool {
		p := h.getPod("default", "hostnet")
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick)
	p := h.getPod("default", "hostnet")
	assert.Equal(t, "172.18.0.11", p.Status.PodIP)
	adds, _ := h.net.counts()
	assert.Equal(t, 0, adds, "no CNI for host network")
	assert.Equal(t, 0, h.netns.count())
	require.Len(t, p.Status.InitContainerStatuses, 1)
	assert.Equal(t, "Completed", p.Status.InitContainerStatuses[0].State.Terminated.Reason)
	h.rt.mu.Lock()
	assert.Equal(t, []string{"--netns", "", "--name", "hostnet", "--pod-uid", "uid-7", "--tcp", "80", "--udp", "81"}, h.rt.started[0].Args)
	h.rt.mu.Unlock()
	evs := strings.Join(h.events(), "\n")
	assert.Contains(t, evs, "Warning UnsupportedPodFeature container web port 9/SCTP")
	assert.Contains(t, evs, "Warning UnsupportedPodFeature init container setup")
	assert.Contains(t, evs, "Warning UnsupportedPodFeature volume data")
}

func TestOurBinaryRunsThroughRunContainer(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, os.WriteFile(filepath.Join(h.binDir, "antrea-agent"), []byte("#!/bin/sh\n"), 0o755))
	pod := testPod("agent", "uid-8")
	pod.Spec.Containers[0].Command = []string{"/usr/local/bin/antrea-agent"}
	pod.Spec.Containers[0].Args = []string{"--config", "$(CONF)", "--node", "$(NODE)"}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "CONF", Value: "/etc/antrea/antrea-agent.conf"},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
	}
	h.start(pod)
	defer h.stop()
	require.Eventually(t, func() bool { return h.getPod("default", "agent").Status.Phase == corev1.PodRunning }, wait, tick)
	h.rt.mu.Lock()
	s := h.rt.started[0]
	h.rt.mu.Unlock()
	assert.Equal(t, "/bin/kubelet", s.Path)
	assert.Equal(t, []string{"run-container", "--pod-uid", "uid-8", "--netns", "/fake/netns/" + layout.PodNetns("lab", "uid-8"),
		"--", filepath.Join(h.binDir, "antrea-agent"), "--config", "/etc/antrea/antrea-agent.conf", "--node", "node-1"}, s.Args)
	assert.Contains(t, s.Env, "KUBERNETES_SERVICE_HOST=10.96.0.1")
	assert.Contains(t, s.Env, "KUBERNETES_SERVICE_PORT=443")
	assert.Contains(t, s.Env, "NODE=node-1")
	assert.Contains(t, s.Env, "ANTREA_LAB_POD_UID=uid-8")
}

func TestStatePersistedBeforeAdd(t *testing.T) {
	h := newHarness(t)
	h.net.failAdds = 1000
	h.start(testPod("web-9", "uid-9"))
	require.Eventually(t, func() bool { a, _ := h.net.counts(); return a >= 1 }, wait, tick)
	h.stop()
	st, err := h.store.Load("uid-9")
	require.NoError(t, err)
	assert.Equal(t, "uid-9", st.UID)
	assert.False(t, st.NetworkReady)
	_ = podstate.Pod{}
}

func TestBrokenSandboxIsRecreated(t *testing.T) {
	h := newHarness(t)
	h.start(testPod("web-9", "uid-9"))
	defer h.stop()
	require.Eventually(t, func() bool {
		p := h.getPod("default", "web-9")
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick)

	h.net.mu.Lock()
	h.net.failCheck = 1
	h.net.mu.Unlock()

	require.Eventually(t, func() bool {
		adds, dels := h.net.counts()
		p := h.getPod("default", "web-9")
		return adds == 2 && dels == 1 && p.Status.ContainerStatuses[0].RestartCount == 1 &&
			condition(p, corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick, "a failed CHECK re-creates the sandbox and restarts the container")
	assert.Equal(t, 1, h.netns.count())
	assert.Contains(t, strings.Join(h.events(), "\n"), "Warning SandboxChanged Pod sandbox network check failed")
}

func TestCheckTryAgainLaterKeepsSandbox(t *testing.T) {
	h := newHarness(t)
	h.start(testPod("web-10", "uid-10"))
	defer h.stop()
	require.Eventually(t, func() bool {
		return condition(h.getPod("default", "web-10"), corev1.PodReady) == corev1.ConditionTrue
	}, wait, tick)
	h.net.mu.Lock()
	h.net.checkErr = &types.Error{Code: types.ErrTryAgainLater, Msg: "agent not reachable"}
	before := h.net.checks
	h.net.mu.Unlock()
	require.Eventually(t, func() bool {
		h.net.mu.Lock()
		defer h.net.mu.Unlock()
		return h.net.checks >= before+3
	}, wait, tick)
	adds, dels := h.net.counts()
	assert.Equal(t, 1, adds, "a CHECK that says try again later does not re-create the sandbox")
	assert.Equal(t, 0, dels)
	assert.NotContains(t, strings.Join(h.events(), "\n"), "SandboxChanged")
}

func TestPreStopSleep(t *testing.T) {
	sleep := func(name string, secs int64) corev1.Container {
		return corev1.Container{Name: name, Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: secs}}}}
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{sleep("a", 2), sleep("b", 5), {Name: "c"}}}}
	for _, tc := range []struct {
		name    string
		running []*podstate.Container
		want    time.Duration
	}{
		{"longest of the running", []*podstate.Container{{Name: "a", Running: true}, {Name: "b", Running: true}}, 5 * time.Second},
		{"a stopped container's hook does not run", []*podstate.Container{{Name: "a", Running: true}, {Name: "b"}}, 2 * time.Second},
		{"no hook", []*podstate.Container{{Name: "c", Running: true}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, preStopSleep(pod, tc.running)) })
	}
}
