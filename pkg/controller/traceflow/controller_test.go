package traceflow

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
)

// store is a one-object API server: the Traceflow under test.
type store struct{ tf *v1alpha1.Traceflow }

func (s *store) Get(_ context.Context, name string) (*v1alpha1.Traceflow, error) {
	if s.tf == nil || s.tf.Name != name {
		return nil, apierrors.NewNotFound(v1alpha1.Resource(v1alpha1.TraceflowResource), name)
	}
	return s.tf.DeepCopy(), nil
}

func (s *store) UpdateStatus(_ context.Context, tf *v1alpha1.Traceflow) (*v1alpha1.Traceflow, error) {
	s.tf.Status = tf.Status
	return s.tf.DeepCopy(), nil
}

func (s *store) cached(name string) (*v1alpha1.Traceflow, bool) {
	tf, err := s.Get(context.Background(), name)
	return tf, err == nil
}

func TestOrphanedTraceflowsFail(t *testing.T) {
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "running"}, Spec: corev1.PodSpec{NodeName: "node-1"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pending"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "host"}, Spec: corev1.PodSpec{NodeName: "node-1", HostNetwork: true}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "done"}, Spec: corev1.PodSpec{NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded}},
	} {
		require.NoError(t, pods.Add(p))
	}
	for _, tc := range []struct {
		name   string
		source string
		dst    v1alpha1.Destination
		now    time.Time
		phase  v1alpha1.Phase
		reason string
		after  time.Duration
	}{
		{"source missing", "nope", v1alpha1.Destination{IP: "10.0.0.1"}, created, v1alpha1.PhaseFailed, "source.pod ns/nope: not found", 0},
		{"source not scheduled", "pending", v1alpha1.Destination{IP: "10.0.0.1"}, created, v1alpha1.PhaseFailed, "source.pod ns/pending: not scheduled on a node yet", 0},
		{"source on the host network", "host", v1alpha1.Destination{IP: "10.0.0.1"}, created, v1alpha1.PhaseFailed,
			"source.pod ns/host: uses the host network; Traceflow starts from pods on the pod network", 0},
		{"source done", "done", v1alpha1.Destination{IP: "10.0.0.1"}, created, v1alpha1.PhaseFailed, "source.pod ns/done: is not running (phase Succeeded)", 0},
		{"bad spec", "running", v1alpha1.Destination{IP: "nope"}, created, v1alpha1.PhaseFailed, `destination.ip "nope": not an IPv4 address`, 0},
		{"the agent's to start: look again when it should have", "running", v1alpha1.Destination{IP: "10.0.0.1"}, created.Add(5 * time.Second), "", "", 25 * time.Second},
		{"its agent never started it", "running", v1alpha1.Destination{IP: "10.0.0.1"}, created.Add(31 * time.Second), v1alpha1.PhaseFailed,
			"no agent started the trace within 30s: is antrea-agent running on node node-1?", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &store{tf: &v1alpha1.Traceflow{
				ObjectMeta: metav1.ObjectMeta{Name: "tf", UID: types.UID("u"), CreationTimestamp: metav1.NewTime(created)},
				Spec:       v1alpha1.TraceflowSpec{Source: v1alpha1.Source{Namespace: "ns", Pod: tc.source}, Destination: tc.dst}}}
			c := New(s, s.cached, func(ns, name string) (*corev1.Pod, error) { return corelisters.NewPodLister(pods).Pods(ns).Get(name) })
			c.now = func() time.Time { return tc.now }
			after, err := c.sync(context.Background(), "tf")
			require.NoError(t, err)
			assert.Equal(t, tc.after, after)
			assert.Equal(t, tc.phase, s.tf.Status.Phase)
			assert.Equal(t, tc.reason, s.tf.Status.Reason)
		})
	}
}

func TestStartedTraceflowsAreTheAgents(t *testing.T) {
	s := &store{tf: &v1alpha1.Traceflow{ObjectMeta: metav1.ObjectMeta{Name: "tf"},
		Spec:   v1alpha1.TraceflowSpec{Source: v1alpha1.Source{Namespace: "ns", Pod: "nope"}, Destination: v1alpha1.Destination{IP: "10.0.0.1"}},
		Status: v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseRunning}}}
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	c := New(s, s.cached, func(ns, name string) (*corev1.Pod, error) { return corelisters.NewPodLister(pods).Pods(ns).Get(name) })
	after, err := c.sync(context.Background(), "tf")
	require.NoError(t, err)
	assert.Zero(t, after)
	assert.Equal(t, v1alpha1.PhaseRunning, s.tf.Status.Phase, "even though its source pod is gone now")
	after, err = c.sync(context.Background(), "gone")
	require.NoError(t, err)
	assert.Zero(t, after)
}
