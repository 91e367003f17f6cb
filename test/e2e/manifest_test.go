package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/ovs-cni/antrea/pkg/agent/cniinstall"
	"github.com/ovs-cni/antrea/pkg/agent/route"
	"github.com/ovs-cni/antrea/pkg/lab/cluster"
	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
)

// TestManifestServerDryRun sends the checked-in antrea.yml to the API
// server as a dry run: every object is valid and admitted.
func TestManifestServerDryRun(t *testing.T) {
	l := antreaLab
	manifest := filepath.Join(repoRoot, "build", "yamls", "antrea.yml")
	out := l.mustRun(t, "kubectl", "--", "apply", "--dry-run=server", "-f", manifest)
	for _, obj := range []string{"daemonset.apps/antrea-agent", "deployment.apps/antrea-controller", "service/antrea",
		"apiservice.apiregistration.k8s.io/v1beta1.controlplane.antrea.io", "apiservice.apiregistration.k8s.io/v1alpha1.stats.antrea.io",
		"clusterrole.rbac.authorization.k8s.io/antrea-agent", "clusterrole.rbac.authorization.k8s.io/antrea-stats-reader"} {
		assert.Contains(t, out, obj)
	}
	assert.Contains(t, out, "(server dry run)")
}

// TestAntreaDeployedFromManifest checks the lab runs antrea as antrea.yml
// says: one agent pod per node with both containers ready, one controller,
// the CNI installed by the init container, the controller's CA in the
// APIService.
func TestAntreaDeployedFromManifest(t *testing.T) {
	l := antreaLab
	out := l.mustRun(t, "kubectl", "--", "get", "pods", "-n", "kube-system", "-l", "app=antrea", "--no-headers",
		"-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName")
	t.Logf("kubectl get pods -n kube-system -l app=antrea:\n%s", l.mustRun(t, "kubectl", "--", "get", "pods", "-n", "kube-system", "-l", "app=antrea", "-o", "wide"))
	ready := l.mustRun(t, "kubectl", "--", "get", "pods", "-n", "kube-system", "-l", "app=antrea", "--no-headers")
	agents, controllers := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(ready), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 3, line)
		switch {
		case strings.HasPrefix(f[0], "antrea-agent-"):
			agents++
			assert.Equal(t, "2/2", f[1], line)
		case strings.HasPrefix(f[0], "antrea-controller-"):
			controllers++
			assert.Equal(t, "1/1", f[1], line)
		}
		assert.Equal(t, "Running", f[2], line)
	}
	assert.Equal(t, len(antreaNodes), agents, "one agent per node:\n%s", out)
	assert.Equal(t, 1, controllers)

	c := ctx(t, time.Minute)
	// The objects as the manifest declares them.
	ds, err := l.Client.AppsV1().DaemonSets("kube-system").Get(c, cluster.AgentDaemonSet, metav1.GetOptions{})
	require.NoError(t, err)
	spec := ds.Spec.Template.Spec
	assert.True(t, spec.HostNetwork)
	assert.Equal(t, "system-node-critical", spec.PriorityClassName)
	assert.Contains(t, spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists}, "every taint")
	assert.Equal(t, map[string]string{"app": "antrea", "component": "antrea-agent"}, ds.Spec.Template.Labels)
	assert.Equal(t, appsv1.RollingUpdateDaemonSetStrategyType, ds.Spec.UpdateStrategy.Type)
	require.Len(t, spec.InitContainers, 1)
	assert.Equal(t, "install-cni", spec.InitContainers[0].Name)
	var names []string
	for _, ctr := range spec.Containers {
		names = append(names, ctr.Name)
		assert.NotNil(t, ctr.LivenessProbe, ctr.Name)
		assert.NotNil(t, ctr.ReadinessProbe, ctr.Name)
	}
	assert.Equal(t, []string{"antrea-agent", "antrea-ovs"}, names)
	dep, err := l.Client.AppsV1().Deployments("kube-system").Get(c, cluster.ControllerDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), *dep.Spec.Replicas)
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, dep.Spec.Strategy.Type)
	assert.Equal(t, map[string]string{"app": "antrea", "component": "antrea-controller"}, dep.Spec.Template.Labels)
	ctrl := dep.Spec.Template.Spec.Containers[0]
	require.NotNil(t, ctrl.LivenessProbe)
	require.NotNil(t, ctrl.ReadinessProbe)
	assert.Equal(t, "/livez", ctrl.LivenessProbe.HTTPGet.Path, "its own health endpoints")
	assert.Equal(t, "/readyz", ctrl.ReadinessProbe.HTTPGet.Path)
	_, err = l.Client.CoreV1().Services("kube-system").Get(c, "antrea", metav1.GetOptions{})
	require.NoError(t, err)

	for _, n := range antreaNodes {
		pod, err := cluster.AgentPod(c, l.Client, n)
		require.NoError(t, err)
		require.Len(t, pod.Status.InitContainerStatuses, 1)
		init := pod.Status.InitContainerStatuses[0]
		assert.Equal(t, "install-cni", init.Name)
		require.NotNil(t, init.State.Terminated, n)
		assert.Equal(t, int32(0), init.State.Terminated.ExitCode, n)
		for _, f := range []string{filepath.Join(l.Layout.CNIConfDir(n), cniinstall.ConfName), filepath.Join(l.Layout.CNIBinDir(n), cniinstall.PluginName), filepath.Join(l.Layout.CNIBinDir(n), "host-local")} {
			_, err := os.Stat(f)
			assert.NoError(t, err, "install-cni put %s in place on %s", filepath.Base(f), n)
		}
	}

	_, cfg, err := controlplane.Client(l.Layout, controlplane.Admin)
	require.NoError(t, err)
	ac, err := aggregator.NewForConfig(cfg)
	require.NoError(t, err)
	for _, name := range []string{"v1beta1.controlplane.antrea.io", "v1alpha1.stats.antrea.io"} {
		svc, err := ac.ApiregistrationV1().APIServices().Get(c, name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Contains(t, string(svc.Spec.CABundle), "BEGIN CERTIFICATE", "the controller published its CA in %s", name)
		assert.False(t, svc.Spec.InsecureSkipTLSVerify)
		available := false
		for _, cond := range svc.Status.Conditions {
			if cond.Type == "Available" && cond.Status == "True" {
				available = true
			}
		}
		assert.True(t, available, "the aggregator trusts the controller for %s: %+v", name, svc.Status.Conditions)
	}
}

// TestAntreaRBAC checks the manifest's least privilege with the API
// server's own authorizer: the agent cannot read Secrets or write
// NetworkPolicies, the controller cannot touch other APIServices, both
// write only the status of Traceflows.
func TestAntreaRBAC(t *testing.T) {
	l := antreaLab
	const agent = "system:serviceaccount:kube-system:antrea-agent"
	const controller = "system:serviceaccount:kube-system:antrea-controller"
	tests := []struct {
		as, verb, resource string
		extra              []string
		want               string
	}{
		{agent, "list", "secrets", []string{"--all-namespaces"}, "no"},
		{agent, "get", "secrets", []string{"-n", "kube-system"}, "no"},
		{agent, "create", "networkpolicies.networking.k8s.io", []string{"-n", "default"}, "no"},
		{agent, "update", "networkpolicies.networking.k8s.io", []string{"-n", "default"}, "no"},
		{agent, "delete", "networkpolicies.networking.k8s.io", []string{"-n", "default"}, "no"},
		{agent, "patch", "nodes", nil, "no"},
		{agent, "delete", "pods", []string{"-n", "default"}, "no"},
		{agent, "get", "daemonsets.apps/kube-proxy", []string{"-n", "kube-system"}, "no"},
		{agent, "watch", "pods", []string{"--all-namespaces"}, "yes"},
		{agent, "watch", "endpointslices.discovery.k8s.io", []string{"--all-namespaces"}, "yes"},
		{agent, "watch", "networkpolicies.controlplane.antrea.io", nil, "yes"},
		{agent, "get", "daemonsets.apps/antrea-agent", []string{"-n", "kube-system"}, "yes"},
		{agent, "create", "nodestatssummaries.controlplane.antrea.io", nil, "yes"},
		{agent, "create", "networkpolicies.controlplane.antrea.io", []string{"-n", "default"}, "no"},
		{"system:serviceaccount:default:default", "create", "nodestatssummaries.controlplane.antrea.io", nil, "no"},
		// Its HTTPS API delegates authentication and authorization.
		{agent, "create", "tokenreviews.authentication.k8s.io", nil, "yes"},
		{agent, "create", "subjectaccessreviews.authorization.k8s.io", nil, "yes"},
		{agent, "get", "configmaps/extension-apiserver-authentication", []string{"-n", "kube-system"}, "yes"},
		{agent, "get", "configmaps/coredns", []string{"-n", "kube-system"}, "no"},
		{agent, "watch", "traceflows.crd.antrea.io", nil, "yes"},
		{agent, "update", "traceflows.crd.antrea.io", []string{"--subresource=status"}, "yes"},
		{agent, "create", "traceflows.crd.antrea.io", nil, "no"},
		{agent, "update", "traceflows.crd.antrea.io", nil, "no"},
		{controller, "list", "secrets", []string{"--all-namespaces"}, "no"},
		{controller, "create", "networkpolicies.networking.k8s.io", []string{"-n", "default"}, "no"},
		{controller, "update", "apiservices.apiregistration.k8s.io/v1.apps", nil, "no"},
		{controller, "update", "apiservices.apiregistration.k8s.io/v1beta1.controlplane.antrea.io", nil, "yes"},
		{controller, "update", "apiservices.apiregistration.k8s.io/v1alpha1.stats.antrea.io", nil, "yes"},
		{controller, "watch", "networkpolicies.networking.k8s.io", []string{"--all-namespaces"}, "yes"},
		{controller, "watch", "traceflows.crd.antrea.io", nil, "yes"},
		{controller, "update", "traceflows.crd.antrea.io", []string{"--subresource=status"}, "yes"},
		{controller, "delete", "traceflows.crd.antrea.io", nil, "no"},
	}
	for _, tc := range tests {
		args := append([]string{"kubectl", "--", "auth", "can-i", tc.verb, tc.resource, "--as=" + tc.as}, tc.extra...)
		out, _, _ := l.Run(args...) // can-i exits 1 for "no"
		assert.Equal(t, tc.want, strings.TrimSpace(out), "%s %s %s %v", tc.as, tc.verb, tc.resource, tc.extra)
	}
}

// TestAntreaManifestLifecycle runs a lab of its own (2 nodes, Geneve):
// the tunnel is Geneve, a change of configuration rolls the agents one
// node at a time while a cross-node TCP stream carries on, and deleting
// antrea.yml leaves the nodes without our bridge, flows, routes, nftables
// and CNI config.
func TestAntreaManifestLifecycle(t *testing.T) {
	l, err := NewLab("e2e-lifecycle")
	require.NoError(t, err)
	_, _, _ = l.Run("down")
	require.NoError(t, l.Up("--nodes", "2", "--cni", "antrea", "--tunnel-type", "geneve"))
	defer func() { assert.NoError(t, l.Down()) }()
	nodes := []string{"node-1", "node-2"}

	out := l.mustRun(t, "node-exec", "node-1", "--", "ovs-vsctl", "show")
	assert.Contains(t, out, "type: geneve")
	assert.Contains(t, out, "options: {key=flow, remote_ip=flow}")

	const ns = "lifecycle"
	createNamespace(t, l, ns)
	c := ctx(t, 5*time.Minute)
	for _, n := range nodes {
		_, err := l.Client.CoreV1().Pods(ns).Create(c, servingPod(ns, n, n), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pods := waitPods(t, l, ns, "", time.Minute, allRunningReady(2))
	byName := map[string]corev1.Pod{pods[0].Name: pods[0], pods[1].Name: pods[1]}
	for _, proto := range []string{"tcp", "udp"} {
		out := l.mustRun(t, "probe", "--from", ns+"/node-1", "--to", net.JoinHostPort(byName["node-2"].Status.PodIP, "80"), "--protocol", proto, "--timeout", "3s")
		assert.Contains(t, out, `"node-2"`, "across the Geneve tunnel")
	}

	t.Run("rolling update keeps a cross-node stream", func(t *testing.T) {
		before := map[string]*corev1.Pod{}
		for _, n := range nodes {
			p, err := cluster.AgentPod(c, l.Client, n)
			require.NoError(t, err)
			before[n] = p
		}
		stream := startHTTPStream(t, l.Layout.PodNetns(byName["node-1"].UID), net.JoinHostPort(byName["node-2"].Status.PodIP, "80"))
		time.Sleep(time.Second)
		out := l.mustRun(t, "antrea", "apply", "--set", "agent.antreaProxy={enable: true}")
		t.Log(strings.TrimSpace(out))
		time.Sleep(time.Second)
		requests, err := stream.finish()
		require.NoError(t, err, "the TCP stream across the rollout broke after %d requests", requests)
		assert.Greater(t, requests, 20)

		// One node at a time: the second new agent was created only once
		// the first was ready.
		var after []*corev1.Pod
		for _, n := range nodes {
			p, err := cluster.AgentPod(c, l.Client, n)
			require.NoError(t, err)
			assert.NotEqual(t, before[n].UID, p.UID, "%s got a new agent", n)
			assert.NotEqual(t, before[n].Spec.Volumes, p.Spec.Volumes, "%s's agent mounts the new ConfigMap", n)
			after = append(after, p)
		}
		sort.Slice(after, func(i, j int) bool { return after[i].CreationTimestamp.Before(&after[j].CreationTimestamp) })
		firstReady := readySince(after[0])
		require.False(t, firstReady.IsZero())
		assert.False(t, after[1].CreationTimestamp.Time.Before(firstReady.Time.Truncate(time.Second)),
			"%s was created at %s, before %s was ready at %s", after[1].Name, after[1].CreationTimestamp, after[0].Name, firstReady)
	})

	t.Run("deleting antrea.yml cleans the nodes", func(t *testing.T) {
		l.mustRun(t, "kubectl", "--", "delete", "-f", cluster.RenderedManifest(l.Layout), "--wait=true")
		require.Eventually(t, func() bool {
			list, err := l.Client.CoreV1().Pods("kube-system").List(c, metav1.ListOptions{LabelSelector: "app=antrea"})
			return err == nil && len(list.Items) == 0
		}, 2*time.Minute, 500*time.Millisecond, "the antrea pods go away")
		for _, n := range nodes {
			out := l.mustRun(t, "node-exec", n, "--", "ovs-vsctl", "list-br")
			assert.NotContains(t, out, "br-int", "%s: the bridge is gone (with its ports and flows)", n)
			out, _, _ = l.Run("node-exec", n, "--", "ip", "-o", "link")
			assert.NotRegexp(t, regexp.MustCompile(`\d+: (gw0|tun0|genev_sys|node-\d+-[0-9a-f]+)[:@]`), out, "%s: no gateway or pod interface", n)
			out, _, _ = l.Run("node-exec", n, "--", "nft", "list", "tables")
			assert.NotContains(t, out, route.NFTTable, "%s: no nftables table", n)
			out, _, _ = l.Run("node-exec", n, "--", "ip", "route")
			assert.NotContains(t, out, "gw0", "%s: no route through the gateway", n)
			for _, f := range []string{filepath.Join(l.Layout.CNIConfDir(n), cniinstall.ConfName), filepath.Join(l.Layout.CNIBinDir(n), cniinstall.PluginName)} {
				_, err := os.Stat(f)
				assert.True(t, os.IsNotExist(err), "%s: %s removed", n, filepath.Base(f))
			}
		}
		_, err := l.Client.RbacV1().ClusterRoles().Get(context.Background(), "antrea-agent", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the manifest's objects are gone")
	})
}

// readySince is when the pod last became Ready.
func readySince(p *corev1.Pod) metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime
		}
	}
	return metav1.Time{}
}
