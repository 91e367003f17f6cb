package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

// TestNodeRegistration checks what the lab kubelets tell the API about their
// nodes: addresses, capacity, podCIDR, Ready, and a fresh Lease.
func TestNodeRegistration(t *testing.T) {
	l := shared
	c := ctx(t, 30*time.Second)
	for i, name := range []string{"node-1", "node-2"} {
		n, err := l.Client.CoreV1().Nodes().Get(c, name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Contains(t, n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: layout.NodeIP(i + 1).String()})
		assert.Equal(t, "110", n.Status.Allocatable.Pods().String())
		assert.NotEmpty(t, n.Spec.PodCIDR)
		assert.Equal(t, "v1.33.13", n.Status.NodeInfo.KubeletVersion)
		lease, err := l.Client.CoordinationV1().Leases("kube-node-lease").Get(c, name, metav1.GetOptions{})
		require.NoError(t, err)
		require.NotNil(t, lease.Spec.RenewTime)
		assert.WithinDuration(t, time.Now(), lease.Spec.RenewTime.Time, 30*time.Second, "lease of %s is stale", name)
	}
}

func labPod(ns, name, node string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"pod": name}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers:                    []corev1.Container{{Name: "c", Image: "agnhost", Ports: ports}},
		},
	}
}

// TestProbes runs tcpSocket, httpGet and exec readiness probes that pass,
// and an exec liveness probe that fails and makes the kubelet restart the
// container.
func TestProbes(t *testing.T) {
	l := shared
	const ns = "probes"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)

	ok := labPod(ns, "ok", "node-1", corev1.ContainerPort{Name: "web", ContainerPort: 8080})
	ok.Spec.Containers = append(ok.Spec.Containers,
		corev1.Container{Name: "tcp", Image: "agnhost", Ports: []corev1.ContainerPort{{ContainerPort: 8081}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8081)}}, PeriodSeconds: 1}},
		corev1.Container{Name: "exec", Image: "agnhost", Ports: []corev1.ContainerPort{{ContainerPort: 8082}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1}},
	)
	ok.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("web")}}, PeriodSeconds: 1}
	_, err := l.Client.CoreV1().Pods(ns).Create(c, ok, metav1.CreateOptions{})
	require.NoError(t, err)

	never := labPod(ns, "never-ready", "node-1", corev1.ContainerPort{ContainerPort: 8080})
	never.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}}, PeriodSeconds: 1}
	_, err = l.Client.CoreV1().Pods(ns).Create(c, never, metav1.CreateOptions{})
	require.NoError(t, err)

	dying := labPod(ns, "dying", "node-2", corev1.ContainerPort{ContainerPort: 8080})
	dying.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}, PeriodSeconds: 1, FailureThreshold: 1}
	_, err = l.Client.CoreV1().Pods(ns).Create(c, dying, metav1.CreateOptions{})
	require.NoError(t, err)

	waitPods(t, l, ns, "pod=ok", time.Minute, allRunningReady(1))
	err = wait.PollUntilContextTimeout(c, 250*time.Millisecond, time.Minute, true, func(c context.Context) (bool, error) {
		p, err := l.Client.CoreV1().Pods(ns).Get(c, "dying", metav1.GetOptions{})
		return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1, nil
	})
	require.NoError(t, err, "the failing liveness probe should restart the container")

	p, err := l.Client.CoreV1().Pods(ns).Get(c, "never-ready", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodRunning, p.Status.Phase)
	assert.False(t, podReady(p), "a pod whose readiness probe fails must not be Ready")
}

// TestHostNetworkPod runs a pod in the node's namespace: its IP is the
// node's, and pods reach its server there.
func TestHostNetworkPod(t *testing.T) {
	l := shared
	const ns = "hostnet"
	createNamespace(t, l, ns)
	c := ctx(t, time.Minute)
	host := labPod(ns, "host", "node-1", corev1.ContainerPort{ContainerPort: 18080})
	host.Spec.HostNetwork = true
	_, err := l.Client.CoreV1().Pods(ns).Create(c, host, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = l.Client.CoreV1().Pods(ns).Create(c, labPod(ns, "client", "node-1"), metav1.CreateOptions{})
	require.NoError(t, err)
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(2))
	for _, p := range pods {
		if p.Name == "host" {
			assert.Equal(t, layout.NodeIP(1).String(), p.Status.PodIP)
		}
	}
	out, errOut, code := l.Run("probe", "--from", ns+"/client", "--to", net.JoinHostPort(layout.NodeIP(1).String(), "18080"))
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, `"host"`)
}

// TestOwnBinaryWithVolumes runs a container whose command is one of our
// binaries: it runs as that process, and sees its ConfigMap, Secret and
// ServiceAccount token volumes as files at their mount paths; the token
// authenticates as the pod's ServiceAccount.
func TestOwnBinaryWithVolumes(t *testing.T) {
	l := shared
	const ns = "volumes"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	_, err := l.Client.CoreV1().ConfigMaps(ns).Create(c, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "conf", Namespace: ns},
		Data:       map[string]string{"agent.conf": "ovsBridge: br-int\n"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = l.Client.CoreV1().Secrets(ns).Create(c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The default ServiceAccount of a new namespace appears asynchronously.
	require.NoError(t, wait.PollUntilContextTimeout(c, 100*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		_, err := l.Client.CoreV1().ServiceAccounts(ns).Get(c, "default", metav1.GetOptions{})
		return err == nil, nil
	}))

	pod := labPod(ns, "own", "node-2")
	pod.Spec.Containers[0].Command = []string{"/usr/local/bin/lab-agnhost"}
	pod.Spec.Containers[0].Args = []string{"--name", "own", "--tcp", "8080"}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "conf", MountPath: "/etc/antrea-lab-e2e/conf", ReadOnly: true},
		{Name: "creds", MountPath: "/etc/antrea-lab-e2e/creds", ReadOnly: true},
	}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}
	_, err = l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(1))

	pid := containerPID(t, string(pods[0].UID))
	root := filepath.Join("/proc", pid, "root")
	read := func(p string) string {
		// An absolute symlink (Debian's /var/run -> /run) would resolve
		// outside the container's mount namespace: resolve it on the host,
		// whose root file system the container shares.
		data, err := os.ReadFile(filepath.Join(root, resolveOnHost(p)))
		require.NoError(t, err, "the container should see %s", p)
		return string(data)
	}
	assert.Equal(t, "ovsBridge: br-int\n", read("/etc/antrea-lab-e2e/conf/agent.conf"))
	assert.Equal(t, "s3cret", read("/etc/antrea-lab-e2e/creds/password"))
	token := read("/var/run/secrets/kubernetes.io/serviceaccount/token")
	assert.Equal(t, ns, read("/var/run/secrets/kubernetes.io/serviceaccount/namespace"))
	assert.Contains(t, read("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"), "BEGIN CERTIFICATE")
	_, err = os.Stat("/etc/antrea-lab-e2e/conf/agent.conf")
	assert.True(t, os.IsNotExist(err), "volumes must be mounted only in the container's mount namespace")

	// The token is a real ServiceAccount token of the pod.
	_, cfg, err := controlplane.Client(l.Layout, controlplane.Admin)
	require.NoError(t, err)
	sa := rest.AnonymousClientConfig(cfg)
	sa.BearerToken = strings.TrimSpace(token)
	saClient, err := kubernetes.NewForConfig(sa)
	require.NoError(t, err)
	review, err := saClient.AuthenticationV1().SelfSubjectReviews().Create(c, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:"+ns+":default", review.Status.UserInfo.Username)
}

// containerPID finds the process of a pod's container: every container
// process carries ANTREA_LAB_POD_UID in its environment.
func containerPID(t *testing.T, uid string) string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && strings.Contains(string(env), "ANTREA_LAB_POD_UID="+uid+"\x00") {
			return e.Name()
		}
	}
	t.Fatalf("no process of pod %s", uid)
	return ""
}

// TestUnsupportedFeatureEvent checks that an SCTP port (no SCTP sockets in
// this kernel) is reported as a pod event, not silently ignored.
func TestUnsupportedFeatureEvent(t *testing.T) {
	l := shared
	const ns = "unsupported"
	createNamespace(t, l, ns)
	c := ctx(t, time.Minute)
	pod := labPod(ns, "sctp", "node-1", corev1.ContainerPort{ContainerPort: 80}, corev1.ContainerPort{ContainerPort: 7777, Protocol: corev1.ProtocolSCTP})
	_, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(1))
	var msg string
	err = wait.PollUntilContextTimeout(c, 250*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		evs, err := l.Client.CoreV1().Events(ns).List(c, metav1.ListOptions{FieldSelector: "involvedObject.name=sctp,reason=UnsupportedPodFeature"})
		if err != nil || len(evs.Items) == 0 {
			return false, nil
		}
		msg = evs.Items[0].Message
		return true, nil
	})
	require.NoError(t, err, "expected an UnsupportedPodFeature event")
	assert.Contains(t, msg, "SCTP")
}

// resolveOnHost resolves the symlinks of the longest prefix of p that exists
// on the host and appends the rest unchanged.
func resolveOnHost(p string) string {
	rest := ""
	for dir := p; dir != "/"; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest)
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
	return p
}

// TestBrokenSandboxRecreated removes a running pod's address behind the
// plugin's back: the kubelet's periodic CNI CHECK notices, and the sandbox
// is re-created with its container restarted.
func TestBrokenSandboxRecreated(t *testing.T) {
	l := shared
	const ns = "cni-check"
	createNamespace(t, l, ns)
	c := ctx(t, 2*time.Minute)
	_, err := l.Client.CoreV1().Pods(ns).Create(c, labPod(ns, "victim", "node-1", corev1.ContainerPort{ContainerPort: 80}), metav1.CreateOptions{})
	require.NoError(t, err)
	waitPods(t, l, ns, "", time.Minute, allRunningReady(1))

	out, errOut, code := l.Run("exec", ns+"/victim", "--", "ip", "addr", "flush", "dev", "eth0")
	require.Equal(t, 0, code, out+errOut)

	err = wait.PollUntilContextTimeout(c, 500*time.Millisecond, 45*time.Second, true, func(c context.Context) (bool, error) {
		evs, err := l.Client.CoreV1().Events(ns).List(c, metav1.ListOptions{FieldSelector: "involvedObject.name=victim,reason=SandboxChanged"})
		return err == nil && len(evs.Items) > 0, nil
	})
	require.NoError(t, err, "expected a SandboxChanged event after CNI CHECK failed")
	pods := waitPods(t, l, ns, "", time.Minute, func(p []corev1.Pod) bool {
		return allRunningReady(1)(p) && p[0].Status.ContainerStatuses[0].RestartCount >= 1
	})
	out, errOut, code = l.Run("exec", ns+"/victim", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, pods[0].Status.PodIP+"/", "the re-created sandbox has its address again")
}
