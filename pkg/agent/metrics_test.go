package agent

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/agent/proxy"
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

// BenchmarkScrape10kFlows serves /metrics as the agent does (promhttp on
// a registry with the agent's collectors: Go and process, bundles, flows
// per table, conntrack, CNI, policy realization, proxy) with 10,000 flows
// installed over 200 owners in the policy tables. Conntrack is faked here:
// on the userspace datapath it is one unixctl call to ovs-vswitchd, timed
// apart in docs/benchmarks.md.
func BenchmarkScrape10kFlows(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	flows := agentof.NewFlowSyncer(newObservedBundler(nopBundler{}, reg), 1)
	tables := []agentof.Table{agentof.EgressRuleTable, agentof.IngressRuleTable, agentof.EgressDefaultTable, agentof.IngressDefaultTable}
	for o := range 200 {
		var fs []of.Flow
		for i := range 50 {
			fs = append(fs, of.Flow{Table: tables[i%len(tables)].ID, Priority: 100,
				Match: []of.MatchField{of.MatchEthType(of.EthTypeIPv4), of.MatchReg(1, uint32(o*50+i), 0xffffffff)}})
		}
		if err := flows.Sync(context.Background(), fmt.Sprintf("rule/%d", o), agentof.CategoryPolicy, fs); err != nil {
			b.Fatal(err)
		}
	}
	counts := flows.CountByTable()
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 10000 {
		b.Fatalf("%d flows installed, want 10000", total)
	}
	reg.MustRegister(stateCollector{flowsByTable: flows.CountByTable, conntrack: func(context.Context) (int, error) { return 10000, nil }})
	cniserver.NewMetrics(reg)
	policysync.NewMetrics(reg)
	proxy.NewMetrics(reg)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	req := httptest.NewRequest("GET", "/metrics", nil)
	// 200 scrapes per iteration, so that `make bench`'s single iteration
	// is not one cold scrape.
	const scrapes = 200
	var size int
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocated := ms.TotalAlloc
	b.ResetTimer()
	for range b.N {
		for range scrapes {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("scrape: %d", rec.Code)
			}
			size = rec.Body.Len()
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	n := float64(b.N * scrapes)
	b.ReportMetric(b.Elapsed().Seconds()*1000/n, "ms/scrape")
	b.ReportMetric(float64(ms.TotalAlloc-allocated)/1024/n, "KiB-allocated/scrape")
	b.ReportMetric(float64(size)/1024, "KiB/scrape")
}
