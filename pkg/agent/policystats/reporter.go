package policystats

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// Sender delivers a summary to the controller.
type Sender interface {
	Send(ctx context.Context, s *cpv1beta1.NodeStatsSummary) error
}

// RESTSender creates summaries through the controller's
// controlplane.antrea.io REST client.
type RESTSender struct{ Client rest.Interface }

// Send implements Sender.
func (r RESTSender) Send(ctx context.Context, s *cpv1beta1.NodeStatsSummary) error {
	if err := r.Client.Post().Resource("nodestatssummaries").Body(s).Do(ctx).Error(); err != nil {
		return fmt.Errorf("creating the NodeStatsSummary of %s: %w", s.Name, err)
	}
	return nil
}

// Reporter collects every Interval and sends what was counted; counts it
// could not send are added to the next summary, so none is lost while
// the controller is away (they are lost if the agent stops).
type Reporter struct {
	Collector *Collector
	Sender    Sender
	Node      string
	Interval  time.Duration
	// Metrics, when set, counts each collection.
	Metrics *Metrics

	pending *cpv1beta1.NodeStatsSummary
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.Report(ctx); err != nil {
			klog.ErrorS(err, "Reporting NetworkPolicy statistics failed; the counts are kept for the next report")
		}
	}
}

// Report collects once and sends what is pending.
func (r *Reporter) Report(ctx context.Context) error {
	s, err := r.Collector.Collect(ctx, r.Node)
	if err != nil {
		return err
	}
	if r.Metrics != nil {
		policies, _ := r.Collector.realized()
		live := make(map[[2]string]bool, len(policies))
		for _, p := range policies {
			live[[2]string{p.Namespace, p.Name}] = true
		}
		r.Metrics.observe(s, live)
	}
	r.pending = merge(r.pending, s)
	if r.pending == nil {
		return nil
	}
	if err := r.Sender.Send(ctx, r.pending); err != nil {
		return err
	}
	r.pending = nil
	return nil
}

// merge adds b's counts to a's; either may be nil.
func merge(a, b *cpv1beta1.NodeStatsSummary) *cpv1beta1.NodeStatsSummary {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	byUID := map[types.UID]*cpv1beta1.NetworkPolicyStats{}
	for _, s := range [][]cpv1beta1.NetworkPolicyStats{a.NetworkPolicies, b.NetworkPolicies} {
		for _, p := range s {
			e := byUID[p.NetworkPolicy.UID]
			if e == nil {
				e = &cpv1beta1.NetworkPolicyStats{NetworkPolicy: p.NetworkPolicy}
				byUID[p.NetworkPolicy.UID] = e
			}
			addTraffic(&e.Dropped, p.Dropped)
			for _, rule := range p.Rules {
				e.Rules = addRule(e.Rules, rule.Direction, rule.Index, rule.Allowed)
			}
		}
	}
	return newSummary(a.Name, byUID)
}
