package netpol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestModelNames(t *testing.T) {
	m := NewModel(Env{Prefix: "np-"})
	assert.Equal(t, []string{"np-x", "np-y", "np-z"}, m.Namespaces())
	ids := m.PodIDs()
	require.Len(t, ids, 9)
	assert.Equal(t, PodID{Namespace: "np-x", Name: "a"}, ids[0])
	assert.Equal(t, "np-z/c", ids[8].String())
	assert.Equal(t, map[string]string{"ns": "y", corev1.LabelMetadataName: "np-y"}, m.NamespaceLabels("np-y"))
	assert.Equal(t, map[string]string{corev1.LabelMetadataName: "other"}, m.NamespaceLabels("other"))
	assert.Equal(t, map[string]string{"pod": "b", "extra": "1"}, m.PodLabelsWith(ids[1], map[string]string{"extra": "1"}))
}

func TestModelObjects(t *testing.T) {
	m := NewModel(Env{Prefix: "np-"})
	ns := m.NamespaceObject("np-x")
	assert.Equal(t, "np-x", ns.Name)
	assert.Equal(t, "x", ns.Labels[LabelNamespace])

	pod := m.PodObject(m.Pod("y", "c"), func(s Server, c *corev1.Container) {
		c.Image = "agnhost"
		c.Args = []string{"serve", string(s.Protocol)}
	})
	assert.Equal(t, "np-y", pod.Namespace)
	assert.Equal(t, "c", pod.Name)
	assert.Equal(t, map[string]string{"pod": "c"}, pod.Labels)
	require.Len(t, pod.Spec.Containers, 6)
	var names []string
	for _, c := range pod.Spec.Containers {
		require.Len(t, c.Ports, 1)
		names = append(names, c.Ports[0].Name)
		assert.Equal(t, "agnhost", c.Image)
	}
	assert.Equal(t, []string{"serve-80-tcp", "serve-80-udp", "serve-80-sctp", "serve-81-tcp", "serve-81-udp", "serve-81-sctp"}, names)
	assert.Equal(t, "cont-81-sctp", pod.Spec.Containers[5].Name)
	assert.Equal(t, corev1.ProtocolSCTP, pod.Spec.Containers[5].Ports[0].Protocol)
	assert.Equal(t, int32(81), pod.Spec.Containers[5].Ports[0].ContainerPort)

	bare := m.PodObject(m.Pod("x", "a"), nil)
	assert.Empty(t, bare.Spec.Containers[0].Image)
}
