// Package traceflow is antrea-controller's part of Traceflow: the
// Traceflows that no agent can take on. An agent runs a Traceflow when its
// source pod runs on the agent's node; so a Traceflow whose source pod does
// not exist, is not scheduled, or uses the host network belongs to no
// agent, and one whose node has no running agent would wait forever. The
// controller, which sees every pod, fails those with a reason that names
// the field at fault. Everything else (the tag, the packet, the
// observations, the timeout of a running trace) is the agents'.
package traceflow

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/crdclient"
)

// DefaultStartGrace is how long, beyond its own timeout, a Traceflow may
// wait for its sender's agent to start it.
const DefaultStartGrace = 10 * time.Second

// Controller fails the Traceflows no agent takes on.
type Controller struct {
	client crdclient.TraceflowStatusClient
	// traceflow reads the informer's cache.
	traceflow func(name string) (*v1alpha1.Traceflow, bool)
	pods      PodGetter
	grace     time.Duration
	now       func() time.Time
	queue     workqueue.TypedRateLimitingInterface[string]
}

// PodGetter returns a pod (a NotFound error when there is none); the
// controller reads its node, host network and phase.
type PodGetter func(namespace, name string) (*corev1.Pod, error)

// New returns a controller; Enqueue feeds it, Run runs it.
func New(client crdclient.TraceflowStatusClient, traceflow func(string) (*v1alpha1.Traceflow, bool), pods PodGetter) *Controller {
	return &Controller{client: client, traceflow: traceflow, pods: pods, grace: DefaultStartGrace, now: time.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "traceflow"})}
}

// Enqueue asks for the Traceflow name to be looked at.
func (c *Controller) Enqueue(name string) { c.queue.Add(name) }

// Run handles the queued Traceflows until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for {
		name, quit := c.queue.Get()
		if quit {
			return
		}
		after, err := c.sync(ctx, name)
		switch {
		case err != nil:
			klog.ErrorS(err, "Traceflow check failed; retrying", "traceflow", name)
			c.queue.AddRateLimited(name)
		case after > 0:
			c.queue.Forget(name)
			c.queue.AddAfter(name, after)
		default:
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

// sync fails the Traceflow name if no agent can take it on, and says when
// to look again at one that waits for its agent.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	tf, ok := c.traceflow(name)
	if !ok || tf.Status.Phase != "" {
		return 0, nil
	}
	reason, node := c.orphaned(tf)
	if reason == "" {
		deadline := tf.CreationTimestamp.Add(tf.Spec.TimeoutDuration() + c.grace)
		if wait := deadline.Sub(c.now()); wait > 0 {
			return wait, nil
		}
		reason = fmt.Sprintf("no agent started the trace within %s: is antrea-agent running on node %s?",
			tf.Spec.TimeoutDuration()+c.grace, node)
	}
	err := crdclient.UpdateTraceflowStatus(ctx, c.client, name, tf.UID, func(st *v1alpha1.TraceflowStatus) bool {
		if st.Phase != "" {
			return false
		}
		st.Phase, st.Reason = v1alpha1.PhaseFailed, reason
		return true
	})
	if err == nil {
		klog.InfoS("Traceflow failed", "traceflow", name, "reason", reason)
	}
	return 0, err
}

// orphaned says why no agent can run tf ("" if the agent of node can).
func (c *Controller) orphaned(tf *v1alpha1.Traceflow) (reason, node string) {
	if err := v1alpha1.ValidateSpec(&tf.Spec); err != nil {
		return err.Error(), ""
	}
	src := tf.Spec.Source
	pod, err := c.pods(src.Namespace, src.Pod)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("source.pod %s/%s: not found", src.Namespace, src.Pod), ""
	case err != nil:
		return fmt.Sprintf("source.pod %s/%s: %v", src.Namespace, src.Pod, err), ""
	case pod.Spec.NodeName == "":
		return fmt.Sprintf("source.pod %s/%s: not scheduled on a node yet", src.Namespace, src.Pod), ""
	case pod.Spec.HostNetwork:
		return fmt.Sprintf("source.pod %s/%s: uses the host network; Traceflow starts from pods on the pod network", src.Namespace, src.Pod), ""
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return fmt.Sprintf("source.pod %s/%s: is not running (phase %s)", src.Namespace, src.Pod, pod.Status.Phase), ""
	}
	return "", pod.Spec.NodeName
}
