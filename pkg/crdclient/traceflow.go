// Package crdclient is a small typed client of antrea's custom resources
// (crd.antrea.io/v1alpha1), served by the kube-apiserver as JSON: Traceflow
// get, list, watch, create, delete and status updates, and an informer.
package crdclient

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
)

var (
	scheme         = runtime.NewScheme()
	parameterCodec = runtime.NewParameterCodec(scheme)
)

func init() { utilruntime.Must(v1alpha1.AddToScheme(scheme)) }

// Traceflows is the client of the cluster-scoped resource traceflows.
type Traceflows struct {
	client rest.Interface
}

// NewTraceflows returns a Traceflow client with the identity and server of
// base.
func NewTraceflows(base *rest.Config) (*Traceflows, error) {
	cfg := rest.CopyConfig(base)
	cfg.GroupVersion = &v1alpha1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.AcceptContentTypes = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	c, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", v1alpha1.SchemeGroupVersion, err)
	}
	return &Traceflows{client: c}, nil
}

// Get returns the Traceflow name.
func (c *Traceflows) Get(ctx context.Context, name string) (*v1alpha1.Traceflow, error) {
	out := &v1alpha1.Traceflow{}
	err := c.client.Get().Resource(v1alpha1.TraceflowResource).Name(name).Do(ctx).Into(out)
	return out, err
}

// List lists Traceflows.
func (c *Traceflows) List(ctx context.Context, opts metav1.ListOptions) (*v1alpha1.TraceflowList, error) {
	out := &v1alpha1.TraceflowList{}
	err := c.client.Get().Resource(v1alpha1.TraceflowResource).VersionedParams(&opts, parameterCodec).Do(ctx).Into(out)
	return out, err
}

// Watch watches Traceflows.
func (c *Traceflows) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	req := c.client.Get().Resource(v1alpha1.TraceflowResource).VersionedParams(&opts, parameterCodec)
	if opts.TimeoutSeconds != nil {
		req = req.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	return req.Watch(ctx)
}

// Create creates tf (its status is ignored by the server).
func (c *Traceflows) Create(ctx context.Context, tf *v1alpha1.Traceflow) (*v1alpha1.Traceflow, error) {
	out := &v1alpha1.Traceflow{}
	err := c.client.Post().Resource(v1alpha1.TraceflowResource).Body(tf).Do(ctx).Into(out)
	return out, err
}

// Delete deletes the Traceflow name.
func (c *Traceflows) Delete(ctx context.Context, name string) error {
	return c.client.Delete().Resource(v1alpha1.TraceflowResource).Name(name).Do(ctx).Error()
}

// UpdateStatus writes tf's status; it fails with a conflict when tf's
// resourceVersion is not the stored one.
func (c *Traceflows) UpdateStatus(ctx context.Context, tf *v1alpha1.Traceflow) (*v1alpha1.Traceflow, error) {
	out := &v1alpha1.Traceflow{}
	err := c.client.Put().Resource(v1alpha1.TraceflowResource).Name(tf.Name).SubResource("status").Body(tf).Do(ctx).Into(out)
	return out, err
}

// NewInformer returns an informer of every Traceflow (not started).
func (c *Traceflows) NewInformer(resync time.Duration) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return c.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, opts)
		},
	}
	return cache.NewSharedIndexInformer(lw, &v1alpha1.Traceflow{}, resync, cache.Indexers{})
}

// TraceflowStatusClient reads a Traceflow and writes its status.
type TraceflowStatusClient interface {
	Get(ctx context.Context, name string) (*v1alpha1.Traceflow, error)
	UpdateStatus(ctx context.Context, tf *v1alpha1.Traceflow) (*v1alpha1.Traceflow, error)
}

// UpdateTraceflowStatus changes the status of the stored Traceflow name
// with change, which says whether it changed anything, and retries on
// conflicts with the other writers (the agents of the nodes the packet
// crosses write the same status). A Traceflow that is gone, or was
// recreated under the same name (another uid), is left alone.
func UpdateTraceflowStatus(ctx context.Context, c TraceflowStatusClient, name string, uid types.UID, change func(*v1alpha1.TraceflowStatus) bool) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tf, err := c.Get(ctx, name)
		if err != nil {
			return err
		}
		if tf.UID != uid || !change(&tf.Status) {
			return nil
		}
		_, err = c.UpdateStatus(ctx, tf)
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update the status of Traceflow %s: %w", name, err)
	}
	return nil
}
