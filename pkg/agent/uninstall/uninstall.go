// Package uninstall tells an agent that stops because Antrea is being
// removed from the cluster from one that stops for a restart or an upgrade:
// only the first may take its node's bridge, routes and CNI config away.
//
// The signal is the agent's DaemonSet going away. The agent watches it while
// it runs, because `kubectl delete -f antrea.yml` may delete the agent's
// ServiceAccount before the DaemonSet: an established watch keeps
// delivering events after its credentials are revoked, a new request would
// be refused.
package uninstall

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Owner finds the DaemonSet that owns the pod namespace/name: the agent's
// own pod, named by the POD_NAMESPACE and POD_NAME environment variables
// the manifest sets.
func Owner(ctx context.Context, client kubernetes.Interface, namespace, name string) (string, error) {
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get own pod %s/%s: %w", namespace, name, err)
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == "DaemonSet" && ref.Controller != nil && *ref.Controller {
			return ref.Name, nil
		}
	}
	return "", fmt.Errorf("own pod %s/%s has no DaemonSet owner", namespace, name)
}

// Watcher follows one DaemonSet.
type Watcher struct {
	client          kubernetes.Interface
	namespace, name string
	seen, gone      atomic.Bool
}

// NewWatcher watches the DaemonSet namespace/name.
func NewWatcher(client kubernetes.Interface, namespace, name string) *Watcher {
	return &Watcher{client: client, namespace: namespace, name: name}
}

// Run follows the DaemonSet until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	selector := fields.OneTermEqualSelector("metadata.name", w.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return w.client.AppsV1().DaemonSets(w.namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return w.client.AppsV1().DaemonSets(w.namespace).Watch(ctx, o)
		},
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &appsv1.DaemonSet{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.observe(obj) },
			UpdateFunc: func(_, obj any) { w.observe(obj) },
			DeleteFunc: func(any) { w.markGone("deleted") },
		},
	})
	informer.RunWithContext(ctx)
}

func (w *Watcher) observe(obj any) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return
	}
	w.seen.Store(true)
	if ds.DeletionTimestamp != nil {
		w.markGone("being deleted")
	}
}

func (w *Watcher) markGone(why string) {
	if !w.gone.Swap(true) {
		klog.InfoS("The agent's DaemonSet is going away: Antrea is being uninstalled; the node is cleaned up when the agent stops",
			"daemonSet", w.namespace+"/"+w.name, "why", why)
	}
}

// Uninstalling reports whether the DaemonSet went away. Called at shutdown:
// when the watch did not see it go, one last read settles it; a read that
// fails (e.g. the ServiceAccount is already gone) counts as "not
// uninstalling", since cleaning up a node that keeps Antrea would cut its
// pods off.
func (w *Watcher) Uninstalling(ctx context.Context) bool {
	if w.gone.Load() {
		return true
	}
	ds, err := w.client.AppsV1().DaemonSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
	switch {
	case err == nil:
		return ds.DeletionTimestamp != nil
	case apierrors.IsNotFound(err) && w.seen.Load():
		return true
	case apierrors.IsNotFound(err):
		return false
	default:
		klog.ErrorS(errors.Unwrap(err), "Cannot tell whether Antrea is being uninstalled; keeping the node's network", "daemonSet", w.namespace+"/"+w.name, "err", err)
		return false
	}
}
