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
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
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
	client    kubernetes.Interface
	namespace string
	// name is set before the watch starts, and read only once seen says
	// the watch has delivered the DaemonSet.
	name       string
	seen, gone atomic.Bool
	// uid of the DaemonSet last seen (touched by the watch's handlers
	// only): one deleted with --cascade=orphan and created again (a
	// selector change) is not an uninstall.
	uid types.UID
}

// NewWatcher watches the DaemonSet namespace/name.
func NewWatcher(client kubernetes.Interface, namespace, name string) *Watcher {
	return &Watcher{client: client, namespace: namespace, name: name}
}

// Watch follows the DaemonSet that owns the pod namespace/pod (the agent's
// own), looking it up until it is found, until ctx ends. The Watcher is
// returned at once; until the DaemonSet is seen it reports no uninstall.
func Watch(ctx context.Context, client kubernetes.Interface, namespace, pod string) *Watcher {
	w := &Watcher{client: client, namespace: namespace}
	go func() {
		err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
			owner, err := Owner(ctx, client, namespace, pod)
			if err != nil {
				klog.ErrorS(err, "Cannot find the agent's DaemonSet yet; retrying")
				return false, nil
			}
			w.name = owner
			return true, nil
		})
		if err == nil {
			w.Run(ctx)
		}
	}()
	return w
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
	if w.uid != ds.UID {
		w.uid = ds.UID
		if w.gone.Swap(false) {
			klog.InfoS("The agent's DaemonSet is back: not uninstalling", "daemonSet", w.namespace+"/"+w.name, "uid", ds.UID)
		}
	}
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
// one last read settles it when it can be made (a DaemonSet that exists
// and is not being deleted means a restart, even if the watch saw an
// earlier one go); when it cannot (e.g. the ServiceAccount is already
// gone), what the watch saw decides.
func (w *Watcher) Uninstalling(ctx context.Context) bool {
	if !w.seen.Load() {
		return false // never found nor seen: not ours to judge
	}
	ds, err := w.client.AppsV1().DaemonSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
	switch {
	case err == nil:
		return ds.DeletionTimestamp != nil
	case apierrors.IsNotFound(err):
		return w.seen.Load()
	case w.gone.Load():
		return true
	default:
		klog.ErrorS(err, "Cannot tell whether Antrea is being uninstalled; keeping the node's network", "daemonSet", w.namespace+"/"+w.name)
		return false
	}
}
