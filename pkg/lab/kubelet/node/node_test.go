package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func readyOf(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func TestRegisterAndReadiness(t *testing.T) {
	tests := []struct {
		name     string
		existing *corev1.Node
	}{
		{name: "create"},
		{name: "adopt", existing: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"custom": "x"}},
			Spec: corev1.NodeSpec{PodCIDR: "10.10.1.0/24"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			if tt.existing != nil {
				client = fake.NewClientset(tt.existing)
			}
			client.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.33.13"}
			netErr := errors.New("cni plugin not initialized: no network config found in /x")
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			a, err := New(Config{Client: client, NodeName: "node-1", NodeIP: "172.18.0.11",
				NetworkStatus: func(context.Context) error { return netErr }, Now: func() time.Time { return now }})
			require.NoError(t, err)
			ctx := context.Background()
			require.NoError(t, a.Register(ctx))

			n, err := client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, "node-1", n.Labels["kubernetes.io/hostname"])
			assert.Equal(t, "linux", n.Labels["kubernetes.io/os"])
			assert.NotEmpty(t, n.Labels["kubernetes.io/arch"])
			if tt.existing != nil {
				assert.Equal(t, "x", n.Labels["custom"])
				assert.Equal(t, "10.10.1.0/24", n.Spec.PodCIDR)
			}
			assert.Equal(t, []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.18.0.11"}, {Type: corev1.NodeHostName, Address: "node-1"}}, n.Status.Addresses)
			assert.Equal(t, "4", n.Status.Capacity.Cpu().String())
			assert.Equal(t, "8Gi", n.Status.Allocatable.Memory().String())
			assert.Equal(t, "110", n.Status.Allocatable.Pods().String())
			assert.Equal(t, "v1.33.13", n.Status.NodeInfo.KubeletVersion)
			assert.Equal(t, "antrea-lab://0.1", n.Status.NodeInfo.ContainerRuntimeVersion)
			r := readyOf(n)
			assert.Equal(t, corev1.ConditionFalse, r.Status)
			assert.Equal(t, "KubeletNotReady", r.Reason)
			assert.Contains(t, r.Message, "cni plugin not initialized")
			assert.Len(t, n.Status.Conditions, 4)

			// No change and no heartbeat due: nothing posted.
			posted, err := a.Tick(ctx)
			require.NoError(t, err)
			assert.False(t, posted)

			// CNI becomes ready: posted at once.
			netErr = nil
			now = now.Add(time.Second)
			posted, err = a.Tick(ctx)
			require.NoError(t, err)
			assert.True(t, posted)
			n, _ = client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
			r = readyOf(n)
			assert.Equal(t, corev1.ConditionTrue, r.Status)
			assert.Equal(t, "KubeletReady", r.Reason)
			assert.True(t, r.LastTransitionTime.Time.Equal(now))

			// Heartbeat after the period keeps the transition time.
			now = now.Add(11 * time.Second)
			posted, err = a.Tick(ctx)
			require.NoError(t, err)
			assert.True(t, posted)
			n, _ = client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
			r = readyOf(n)
			assert.True(t, r.LastHeartbeatTime.Time.Equal(now))
			assert.True(t, r.LastTransitionTime.Time.Equal(now.Add(-11*time.Second)))
		})
	}
}

func TestLease(t *testing.T) {
	client := fake.NewClientset()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := New(Config{Client: client, NodeName: "node-2", NodeIP: "172.18.0.12",
		NetworkStatus: func(context.Context) error { return nil }, Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, a.RenewLease(ctx))
	now = now.Add(10 * time.Second)
	require.NoError(t, a.RenewLease(ctx))
	l, err := client.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "node-2", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "node-2", *l.Spec.HolderIdentity)
	assert.Equal(t, int32(40), *l.Spec.LeaseDurationSeconds)
	assert.True(t, l.Spec.RenewTime.Time.Equal(now))
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Client: fake.NewClientset(), NodeIP: "1.2.3.4", NetworkStatus: func(context.Context) error { return nil }})
	require.ErrorContains(t, err, "field nodeName is empty")
}
