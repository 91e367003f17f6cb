package agent

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

func TestAgentMetricsCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	b := newObservedBundler(nopBundler{}, reg)
	flows := agentof.NewFlowSyncer(b, 1)
	require.NoError(t, flows.Sync(context.Background(), "pod/a", agentof.CategoryPod, []of.Flow{
		{Table: agentof.SpoofGuardTable.ID, Priority: 200, Match: []of.MatchField{of.MatchInPort(3)}},
		{Table: agentof.SpoofGuardTable.ID, Priority: 200, Match: []of.MatchField{of.MatchInPort(4)}},
	}))
	reg.MustRegister(stateCollector{flowsByTable: flows.CountByTable, conntrack: func(context.Context) (int, error) { return 42, nil }})
	fams, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		got[f.GetName()] = f
	}
	var spoof float64
	for _, m := range got["antrea_agent_ovs_flows"].GetMetric() {
		if m.GetLabel()[0].GetValue() == "SpoofGuard" {
			spoof = m.GetGauge().GetValue()
		}
	}
	assert.Equal(t, 2.0, spoof)
	assert.Len(t, got["antrea_agent_ovs_flows"].GetMetric(), len(agentof.Tables), "every table, empty ones at 0")
	assert.Equal(t, 42.0, got["antrea_agent_conntrack_entries"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, uint64(1), got["antrea_agent_openflow_bundle_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	assert.Equal(t, 2.0, got["antrea_agent_openflow_bundle_flows_total"].GetMetric()[0].GetCounter().GetValue())
}
