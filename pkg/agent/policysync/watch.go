package policysync

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// resourceSync lists and watches one resource for one node into a cache.
type resourceSync struct {
	client   rest.Interface
	resource string
	node     string
	newList  func() runtime.Object
	cache    *Cache
	// watchTimeout bounds one watch request; the loop resumes after it.
	watchTimeout time.Duration
}

func (r *resourceSync) options(rv string, watch bool) *metav1.ListOptions {
	o := &metav1.ListOptions{FieldSelector: v1beta1.NodeNameField + "=" + r.node, ResourceVersion: rv, Watch: watch}
	if watch {
		secs := int64(r.watchTimeout / time.Second)
		o.TimeoutSeconds = &secs
	}
	return o
}

// list replaces the resource's objects and returns the list's
// resourceVersion.
func (r *resourceSync) list(ctx context.Context) (string, error) {
	list := r.newList()
	if err := r.client.Get().Resource(r.resource).VersionedParams(r.options("", false), metav1.ParameterCodec).Do(ctx).Into(list); err != nil {
		return "", fmt.Errorf("list %s: %w", r.resource, err)
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", r.resource, err)
	}
	r.cache.Replace(r.resource, list)
	return lm.GetResourceVersion(), nil
}

// errRelist ends a watch whose resourceVersion the server no longer has.
type errRelist struct{ cause error }

func (e errRelist) Error() string { return "relist: " + e.cause.Error() }

// watch applies events from rv until the watch ends; it returns the last
// resourceVersion seen.
func (r *resourceSync) watch(ctx context.Context, rv string) (string, error) {
	w, err := r.client.Get().Resource(r.resource).VersionedParams(r.options(rv, true), metav1.ParameterCodec).Watch(ctx)
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return rv, errRelist{err}
		}
		return rv, fmt.Errorf("watch %s: %w", r.resource, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, ctx.Err()
		case e, ok := <-w.ResultChan():
			if !ok {
				return rv, nil
			}
			switch e.Type {
			case watch.Error:
				err := apierrors.FromObject(e.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return rv, errRelist{err}
				}
				return rv, fmt.Errorf("watch %s: %w", r.resource, err)
			case watch.Bookmark:
			default:
				if !r.cache.Apply(e.Type, e.Object) {
					return rv, errRelist{fmt.Errorf("unexpected %T in a watch of %s", e.Object, r.resource)}
				}
			}
			if a, err := meta.Accessor(e.Object); err == nil && a.GetResourceVersion() != "" {
				rv = a.GetResourceVersion()
			}
		}
	}
}

// run lists and watches until ctx ends, retrying with backoff.
func (r *resourceSync) run(ctx context.Context) {
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6, Cap: 5 * time.Second}
	delay := func() time.Duration {
		d := backoff.Step()
		if backoff.Steps == 0 {
			backoff.Steps = 1 // stay at the cap
		}
		return d
	}
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = r.list(ctx); err != nil {
				klog.ErrorS(err, "Listing from antrea-controller failed; keeping the last known objects", "resource", r.resource)
				sleep(ctx, delay())
				continue
			}
			klog.V(2).InfoS("Listed", "resource", r.resource, "resourceVersion", rv)
		}
		started := time.Now()
		next, err := r.watch(ctx, rv)
		switch err.(type) {
		case nil:
		case errRelist:
			klog.InfoS("Relisting", "resource", r.resource, "reason", err)
			rv = ""
			continue
		default:
			if ctx.Err() == nil {
				klog.ErrorS(err, "Watch of antrea-controller failed; resuming", "resource", r.resource)
			}
		}
		rv = next
		if time.Since(started) > 10*time.Second {
			backoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6, Cap: 5 * time.Second}
		}
		if err != nil {
			sleep(ctx, delay())
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
