package networkpolicy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

func TestTransformPod(t *testing.T) {
	full := makePod("x", "web", "node-1", "10.0.0.5", map[string]string{"app": "web"}, func(p *corev1.Pod) {
		p.ResourceVersion = "42"
		p.Annotations = map[string]string{"big": "annotation"}
		p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
		p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "fd00::5"}}
		p.Spec.Containers = []corev1.Container{
			{Name: "app", Image: "nginx", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080},
				{ContainerPort: 9090}, // unnamed: not kept
				{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			}},
			{Name: "sidecar", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP}}},
		}
	})
	got, err := transformPod(full)
	require.NoError(t, err)
	want := &pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "web", UID: "x-web", ResourceVersion: "42", Labels: map[string]string{"app": "web"}},
		NodeName:   "node-1",
		Phase:      corev1.PodRunning,
		IPs:        []string{"10.0.0.5", "fd00::5"},
		Ports: []controlplane.NamedPort{
			{Name: "http", Port: 8080, Protocol: controlplane.ProtocolTCP},
			{Name: "dns", Port: 53, Protocol: controlplane.ProtocolUDP},
			{Name: "metrics", Port: 9100, Protocol: controlplane.ProtocolTCP},
		},
	}
	assert.Equal(t, want, got)

	// Idempotent, as informers require: a transformed pod passes as is.
	again, err := transformPod(got)
	require.NoError(t, err)
	assert.Same(t, got, again)

	// The informer's store keys it as it keys the Pod.
	key, err := cache.MetaNamespaceKeyFunc(got)
	require.NoError(t, err)
	assert.Equal(t, "x/web", key)

	// A deep copy shares nothing that can be modified.
	cp := got.(*pod).DeepCopyObject().(*pod)
	assert.Equal(t, got, cp)
	cp.Labels["app"] = "db"
	cp.IPs[0] = "10.0.0.9"
	cp.Ports[0].Port = 1
	assert.Equal(t, want, got)
}

func TestPodEligible(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{name: "running with an IP", pod: makePod("x", "a", "n1", "10.0.0.1", nil), want: true},
		{name: "not scheduled", pod: makePod("x", "a", "", "10.0.0.1", nil)},
		{name: "no IP yet", pod: makePod("x", "a", "n1", "", nil)},
		{name: "succeeded", pod: makePod("x", "a", "n1", "10.0.0.1", nil, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
		{name: "failed", pod: makePod("x", "a", "n1", "10.0.0.1", nil, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })},
		{name: "pending with an IP", pod: makePod("x", "a", "n1", "10.0.0.1", nil, func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, podEligible(slimPod(tt.pod)))
		})
	}
	assert.False(t, podEligible(nil))
}

func TestTransformNamespaceAndPolicy(t *testing.T) {
	ns := makeNamespace("x", map[string]string{"team": "a"})
	got, err := transformNamespace(ns)
	require.NoError(t, err)
	assert.Same(t, ns, got, "nothing to trim: kept as listed")

	ns.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	ns.Status.Phase = corev1.NamespaceActive
	got, err = transformNamespace(ns)
	require.NoError(t, err)
	assert.Equal(t, makeNamespace("x", map[string]string{"team": "a"}), got)

	np := makePolicy("x", "web", withPodSelector(map[string]string{"app": "web"}), withTypes(networkingv1.PolicyTypeIngress))
	got, err = transformPolicy(np)
	require.NoError(t, err)
	assert.Same(t, np, got)

	np.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	np.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	np.Generation = 3
	got, err = transformPolicy(np)
	require.NoError(t, err)
	want := makePolicy("x", "web", withPodSelector(map[string]string{"app": "web"}), withTypes(networkingv1.PolicyTypeIngress))
	want.Generation = 3
	assert.Equal(t, want, got)

	// Objects of other types pass through.
	other := &corev1.Service{}
	for _, f := range []cache.TransformFunc{transformPod, transformNamespace, transformPolicy} {
		got, err := f(other)
		require.NoError(t, err)
		assert.Same(t, other, got)
	}
}

func TestControllerPodReadsTheTrimmedCache(t *testing.T) {
	host := makePod("kube-system", "agent", "node-1", "172.18.0.11", map[string]string{"app": "agent"}, func(p *corev1.Pod) {
		p.Spec.HostNetwork = true
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: "antrea"}}
	})
	c := startController(t, host)
	got, err := c.Pod("kube-system", "agent")
	require.NoError(t, err)
	assert.Equal(t, "node-1", got.Spec.NodeName)
	assert.True(t, got.Spec.HostNetwork)
	assert.Equal(t, corev1.PodRunning, got.Status.Phase)
	assert.Equal(t, "172.18.0.11", got.Status.PodIP)
	assert.Equal(t, map[string]string{"app": "agent"}, got.Labels)
	assert.Empty(t, got.Spec.Containers, "not kept")

	_, err = c.Pod("kube-system", "nope")
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
}
