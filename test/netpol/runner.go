package netpol

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Cluster is the environment the suite drives: the model's namespaces and
// pods already run (see [Model.NamespaceObject] and [Model.PodObject]).
// The runner calls a Cluster from one goroutine at a time, but a [Prober]
// or a [Tracer] from several goroutines at once.
type Cluster interface {
	// ApplyPolicy creates the policy, or updates it when one of the same
	// namespace and name exists. The policy is the caller's copy.
	ApplyPolicy(ctx context.Context, policy *networkingv1.NetworkPolicy) error
	// DeletePolicy deletes one policy; deleting a missing policy is an
	// error.
	DeletePolicy(ctx context.Context, namespace, name string) error
	// DeleteAllPolicies deletes every policy of a namespace.
	DeleteAllPolicies(ctx context.Context, namespace string) error
	// SetNamespaceLabels replaces the labels of a namespace (the
	// apiserver keeps kubernetes.io/metadata.name anyway). An
	// implementation may keep labels of its own that no policy of the
	// suite selects on, such as pod security admission labels.
	SetNamespaceLabels(ctx context.Context, namespace string, labels map[string]string) error
	// SetPodLabels replaces the labels of a pod.
	SetPodLabels(ctx context.Context, pod PodID, labels map[string]string) error
	// PodIPs returns the IP of each of pods.
	PodIPs(ctx context.Context, pods []PodID) (PodIPs, error)
	// WaitRealized returns once the changes made so far are expected to be
	// enforced by the dataplane, or with an error. It is called after
	// every step's changes, before probing; the runner still retries
	// mismatching matrices.
	WaitRealized(ctx context.Context) error
}

// Prober opens connections between pods.
type Prober interface {
	// Probe tells whether from can connect to ip, the IP of pod to, on
	// proto/port. A connection refused, reset or timed out is (false,
	// nil); an error means the probe itself could not be run, and the cell
	// is then unknown.
	Probe(ctx context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error)
}

// Tracer decides reachability without a socket, for instance from a trace
// of the dataplane pipeline. The runner uses it for SCTP probes when set,
// since SCTP sockets are often unavailable (kernel module, images).
type Tracer interface {
	// Trace has the contract of [Prober.Probe].
	Trace(ctx context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error)
}

// Reporter receives the runner's logs; *testing.T implements it.
type Reporter interface {
	Logf(format string, args ...any)
}

// Options tunes RunCase, RunScenario and CrossCheck. The zero value is
// usable.
type Options struct {
	// Tracer, when set, replaces the Prober for SCTP probes.
	Tracer Tracer
	// Workers bounds the probes run at once (default 3, as upstream).
	Workers int
	// Attempts is how many times a mismatching matrix is probed in total
	// before it fails (default 3). Upstream probes twice.
	Attempts int
	// RetryDelay is the pause before probing a mismatching matrix again
	// (default 1s).
	RetryDelay time.Duration
	// ProbeSelf also checks the connections from a pod to itself, which
	// upstream ignores because CNIs disagree on hairpin traffic.
	ProbeSelf bool
	// KeepState skips the final Cleanup of RunCase and RunScenario.
	KeepState bool
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 3
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	return o
}

// RunCase runs the steps of c against cl and checks every probe's full
// matrix, probing with p (and opts.Tracer for SCTP). It returns an error
// listing the mismatching probes, or the first error of the cluster, which
// stops the case. Unless opts.KeepState is set, it ends with [Cleanup];
// it expects the cluster to start clean too.
func RunCase(ctx context.Context, r Reporter, m *Model, cl Cluster, p Prober, c Case, opts Options) (err error) {
	opts = opts.withDefaults()
	if !opts.KeepState {
		defer func() {
			if cerr := Cleanup(context.WithoutCancel(ctx), m, cl); cerr != nil {
				err = errors.Join(err, fmt.Errorf("case %s: %w", c.Name, cerr))
			}
		}()
	}
	ips, err := cl.PodIPs(ctx, m.PodIDs())
	if err != nil {
		return fmt.Errorf("case %s: get pod IPs: %w", c.Name, err)
	}
	var failed []error
	for i, step := range c.Steps {
		where := fmt.Sprintf("case %s step %d (%s)", c.Name, i+1, step.Name)
		r.Logf("%s at %s", where, time.Now().Format("15:04:05.000"))
		if err := applyStep(ctx, m, cl, step, ips); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := cl.WaitRealized(ctx); err != nil {
			return fmt.Errorf("%s: wait for realization: %w", where, err)
		}
		for _, probe := range step.Probes {
			if err := checkMatrix(ctx, r, p, ips, probe, opts); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				failed = append(failed, fmt.Errorf("%s: %w", where, err))
			}
		}
	}
	return errors.Join(failed...)
}

// applyStep makes the changes of step, in the documented order. Policies
// are deep-copied before being handed to the cluster.
func applyStep(ctx context.Context, m *Model, cl Cluster, step Step, ips PodIPs) error {
	if step.DeleteAllPolicies {
		for _, ns := range m.Namespaces() {
			if err := cl.DeleteAllPolicies(ctx, ns); err != nil {
				return fmt.Errorf("delete policies of %s: %w", ns, err)
			}
		}
	}
	for _, ref := range step.Delete {
		if err := cl.DeletePolicy(ctx, ref.Namespace, ref.Name); err != nil {
			return fmt.Errorf("delete policy %s/%s: %w", ref.Namespace, ref.Name, err)
		}
	}
	for ns, labels := range step.NamespaceLabels {
		if err := cl.SetNamespaceLabels(ctx, ns, labels); err != nil {
			return fmt.Errorf("set labels of namespace %s: %w", ns, err)
		}
	}
	for pod, labels := range step.PodLabels {
		if err := cl.SetPodLabels(ctx, pod, labels); err != nil {
			return fmt.Errorf("set labels of pod %s: %w", pod, err)
		}
	}
	policies := step.Apply
	if step.ApplyForIPs != nil {
		more, err := step.ApplyForIPs(ips)
		if err != nil {
			return fmt.Errorf("build policies from pod IPs: %w", err)
		}
		policies = append(append([]*networkingv1.NetworkPolicy(nil), policies...), more...)
	}
	for _, policy := range policies {
		if err := cl.ApplyPolicy(ctx, policy.DeepCopy()); err != nil {
			return fmt.Errorf("apply policy %s/%s: %w", policy.Namespace, policy.Name, err)
		}
	}
	return nil
}

// Cleanup brings the cluster back to the model's initial state: no
// policies in the model's namespaces, initial namespace and pod labels. It
// waits for the changes to be realized.
func Cleanup(ctx context.Context, m *Model, cl Cluster) error {
	for _, ns := range m.Namespaces() {
		if err := cl.DeleteAllPolicies(ctx, ns); err != nil {
			return fmt.Errorf("cleanup: delete policies of %s: %w", ns, err)
		}
		if err := cl.SetNamespaceLabels(ctx, ns, m.NamespaceLabels(ns)); err != nil {
			return fmt.Errorf("cleanup: reset labels of namespace %s: %w", ns, err)
		}
	}
	for _, pod := range m.PodIDs() {
		if err := cl.SetPodLabels(ctx, pod, m.PodLabels(pod)); err != nil {
			return fmt.Errorf("cleanup: reset labels of pod %s: %w", pod, err)
		}
	}
	if err := cl.WaitRealized(ctx); err != nil {
		return fmt.Errorf("cleanup: wait for realization: %w", err)
	}
	return nil
}
