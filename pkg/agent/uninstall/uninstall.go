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
	client     kubernetes.Interface
	namespace  string
	name       atomic.Value // string
	seen, gone atomic.Bool
	// uid of the DaemonSet last seen: one deleted with --cascade=orphan
	// and created again (a selector change) is not an uninstall.
	uid atomic.Value
}

// NewWatcher watches the DaemonSet namespace/name; name may be given later,
// to Run.
func NewWatcher(client kubernetes.Interface, namespace, name string) *Watcher {
	w := &Watcher{client: client, namespace: namespace}
	w.name.Store(name)
	return w
}

// Run follows the DaemonSet until ctx ends; a non-empty name replaces the
// one given to NewWatcher.
func (w *Watcher) Run(ctx context.Context, name string) {
	if name != "" {
		w.name.Store(name)
	}
	selector := fields.OneTermEqualSelector("metadata.name", w.dsName()).String()
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
	if prev, _ := w.uid.Load().(string); prev != string(ds.UID) {
		w.uid.Store(string(ds.UID))
		if w.gone.Swap(false) {
			klog.InfoS("The agent's DaemonSet is back: not uninstalling", "daemonSet", w.namespace+"/"+w.dsName(), "uid", ds.UID)
		}
	}
	if ds.DeletionTimestamp != nil {
		w.markGone("being deleted")
	}
}

func (w *Watcher) markGone(why string) {
	if !w.gone.Swap(true) {
		klog.InfoS("The agent's DaemonSet is going away: Antrea is being uninstalled; the node is cleaned up when the agent stops",
			"daemonSet", w.namespace+"/"+w.dsName(), "why", why)
	}
}

func (w *Watcher) dsName() string {
	n, _ := w.name.Load().(string)
	return n
}

// Uninstalling reports whether the DaemonSet went away. Called at shutdown:
// one last read settles it when it can be made (a DaemonSet that exists
// and is not being deleted means a restart, even if the watch saw an
// earlier one go); when it cannot (e.g. the ServiceAccount is already
// gone), what the watch saw decides.
func (w *Watcher) Uninstalling(ctx context.Context) bool {
	if !w.seen.Load() {
		return false // never found nor seen: not ours to judge
	}
	ds, err := w.client.AppsV1().DaemonSets(w.namespace).Get(ctx, w.dsName(), metav1.GetOptions{})
	switch {
	case err == nil:
		return ds.DeletionTimestamp != nil
	case apierrors.IsNotFound(err):
		return w.seen.Load()
	case w.gone.Load():
		return true
	default:
		klog.ErrorS(err, "Cannot tell whether Antrea is being uninstalled; keeping the node's network", "daemonSet", w.namespace+"/"+w.dsName())
		return false
	}
}
