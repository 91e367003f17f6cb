package uninstall

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func daemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "antrea-agent"}}
}

func TestOwner(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "antrea-agent-x1",
			OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "antrea-agent", Controller: ptr.To(true)}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "bare"}},
	)
	name, err := Owner(ctx, client, "kube-system", "antrea-agent-x1")
	require.NoError(t, err)
	assert.Equal(t, "antrea-agent", name)
	_, err = Owner(ctx, client, "kube-system", "bare")
	assert.ErrorContains(t, err, "has no DaemonSet owner")
	_, err = Owner(ctx, client, "kube-system", "missing")
	assert.ErrorContains(t, err, "get own pod kube-system/missing")
}

func TestWatcherSeesDeletion(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(daemonSet())
	w := NewWatcher(client, "kube-system", "antrea-agent")
	go w.Run(ctx)
	require.Eventually(t, w.seen.Load, 5*time.Second, 10*time.Millisecond)
	assert.False(t, w.Uninstalling(ctx), "the DaemonSet exists: a restart, not an uninstall")

	require.NoError(t, client.AppsV1().DaemonSets("kube-system").Delete(ctx, "antrea-agent", metav1.DeleteOptions{}))
	require.Eventually(t, w.gone.Load, 5*time.Second, 10*time.Millisecond)
	assert.True(t, w.Uninstalling(ctx))

	// Created again (kubectl delete --cascade=orphan, then apply): the
	// adopted agents are not being uninstalled.
	again := daemonSet()
	again.UID = "second"
	_, err := client.AppsV1().DaemonSets("kube-system").Create(ctx, again, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !w.gone.Load() }, 5*time.Second, 10*time.Millisecond)
	assert.False(t, w.Uninstalling(ctx))
}

func TestUninstallingWhenTheAPIRefuses(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	client.PrependReactor("get", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("the ServiceAccount is gone")
	})
	w := NewWatcher(client, "kube-system", "antrea-agent")
	w.seen.Store(true)
	assert.False(t, w.Uninstalling(ctx), "nothing seen go: keep the network")
	w.gone.Store(true)
	assert.True(t, w.Uninstalling(ctx), "the watch saw it go before the credentials went")
}

func TestUninstallingWithoutWatch(t *testing.T) {
	ctx := context.Background()
	deleting := daemonSet()
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	deleting.Finalizers = []string{"foregroundDeletion"}
	tests := []struct {
		name    string
		objects []*appsv1.DaemonSet
		seen    bool
		want    bool
	}{
		{"exists", []*appsv1.DaemonSet{daemonSet()}, true, false},
		{"being deleted", []*appsv1.DaemonSet{deleting}, true, true},
		{"gone after being seen", nil, true, true},
		{"never seen: not ours to judge", nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			for _, o := range tc.objects {
				_, err := client.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			w := NewWatcher(client, "kube-system", "antrea-agent")
			w.seen.Store(tc.seen)
			assert.Equal(t, tc.want, w.Uninstalling(ctx))
		})
	}
}

func TestWatchFindsTheOwnerFromThePod(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(daemonSet(),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "antrea-agent-x1",
			OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "antrea-agent", Controller: ptr.To(true)}}}})
	w := Watch(ctx, client, "kube-system", "antrea-agent-x1")
	require.Eventually(t, w.seen.Load, 5*time.Second, 10*time.Millisecond, "the pod's DaemonSet is followed")
	assert.False(t, w.Uninstalling(ctx))
	require.NoError(t, client.AppsV1().DaemonSets("kube-system").Delete(ctx, "antrea-agent", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return w.Uninstalling(ctx) }, 5*time.Second, 10*time.Millisecond)
}
