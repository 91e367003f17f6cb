package policysync

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// slowRealizer takes a while and fails as many times as told.
type slowRealizer struct {
	delay    time.Duration
	failures int
}

func (r *slowRealizer) Realize(context.Context, *networkpolicy.State) error {
	time.Sleep(r.delay)
	if r.failures > 0 {
		r.failures--
		return errors.New("bundle rejected")
	}
	return nil
}

func TestRealizationMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := &slowRealizer{delay: 20 * time.Millisecond, failures: 1}
	c := New(Config{NodeName: "n1", Realizer: r, Metrics: NewMetrics(reg),
		LocalPods: func() map[netip.Addr]uint32 { return nil }})
	c.cache.Replace(ResourceNetworkPolicies, &v1beta1.NetworkPolicyList{Items: []v1beta1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p1"}},
	}})
	ctx := context.Background()

	// The first attempt fails: counted, no latency yet.
	require.Error(t, c.realize(ctx))
	assert.Equal(t, 1.0, testutil.ToFloat64(c.cfg.Metrics.realizations.WithLabelValues("error")))
	assert.Equal(t, uint64(0), histogramCount(t, reg), "no latency observed for a failed realization")

	// The retry succeeds: its latency runs from the change, through both
	// attempts (at least 40 ms).
	require.NoError(t, c.realize(ctx))
	assert.Equal(t, uint64(1), histogramCount(t, reg))
	assert.GreaterOrEqual(t, histogramSum(t, reg), 0.04)
	assert.Equal(t, 1.0, testutil.ToFloat64(c.cfg.Metrics.policies))

	// Nothing changed since: a recheck observes no latency.
	require.NoError(t, c.realize(ctx))
	assert.Equal(t, uint64(1), histogramCount(t, reg))
	assert.Equal(t, 2.0, testutil.ToFloat64(c.cfg.Metrics.realizations.WithLabelValues("ok")))

	// A watch event is one more change.
	require.True(t, c.cache.Apply(watch.Deleted, &v1beta1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p1"}}))
	require.NoError(t, c.realize(ctx))
	assert.Equal(t, uint64(2), histogramCount(t, reg))
	assert.Equal(t, 0.0, testutil.ToFloat64(c.cfg.Metrics.policies))

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP antrea_agent_networkpolicy_realizations_total Realizations of the node's NetworkPolicies (compile, diff, one bundle), by result.
# TYPE antrea_agent_networkpolicy_realizations_total counter
antrea_agent_networkpolicy_realizations_total{result="error"} 1
antrea_agent_networkpolicy_realizations_total{result="ok"} 3
`), "antrea_agent_networkpolicy_realizations_total"))
}

func histogram(t *testing.T, reg *prometheus.Registry) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "antrea_agent_networkpolicy_realization_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no realization latency histogram")
	return 0, 0
}

func histogramCount(t *testing.T, reg *prometheus.Registry) uint64 {
	n, _ := histogram(t, reg)
	return n
}

func histogramSum(t *testing.T, reg *prometheus.Registry) float64 {
	_, s := histogram(t, reg)
	return s
}
