package policystats

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// fakeSwitch holds installed flows with counters set by the test.
type fakeSwitch struct {
	flows    map[string][]of.Flow // by owner, as the agent installed them
	counters map[string][2]uint64 // flow key -> packets, bytes
	err      error
}

func (f *fakeSwitch) DumpFlowsByCookie(_ context.Context, table int, cookie, mask uint64) ([]of.FlowStats, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []of.FlowStats
	for _, flows := range f.flows {
		for _, fl := range flows {
			if int(fl.Table) != table || fl.Cookie&mask != cookie&mask {
				continue
			}
			c := f.counters[fl.Key()]
			out = append(out, of.FlowStats{Flow: fl, PacketCount: c[0], ByteCount: c[1]})
		}
	}
	return out, nil
}

func (f *fakeSwitch) keyOwners(keep func(string, of.Flow) bool) map[string]string {
	out := map[string]string{}
	for o, flows := range f.flows {
		for _, fl := range flows {
			if keep(o, fl) {
				out[fl.Key()] = o
			}
		}
	}
	return out
}

// count sets the counters of the flows of owner in table whose actions
// are (drop) or are not (allow) empty.
func (f *fakeSwitch) count(t *testing.T, owner string, table uint8, packets, bytes uint64) {
	t.Helper()
	n := 0
	for _, fl := range f.flows[owner] {
		if fl.Table == table {
			f.counters[fl.Key()] = [2]uint64{packets, bytes}
			n++
		}
	}
	require.NotZero(t, n, "no flow of %s in table %d", owner, table)
}

func testState() *networkpolicy.State {
	web := controlplane.GroupMember{Pod: controlplane.PodReference{Namespace: "x", Name: "web"}, Node: "n1", IPs: []string{"10.10.0.5"}}
	client := controlplane.GroupMember{Pod: controlplane.PodReference{Namespace: "x", Name: "client"}, Node: "n2", IPs: []string{"10.10.1.7"}}
	port := intstrPort(8080)
	policy := &controlplane.NetworkPolicy{UID: "u-web", Namespace: "x", Name: "web",
		AppliedToGroups: []string{"atg-web"},
		PolicyTypes:     []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut},
		Rules: []controlplane.NetworkPolicyRule{
			{Direction: controlplane.DirectionIn, From: controlplane.NetworkPolicyPeer{AddressGroups: []string{"ag-client"}},
				Services: []controlplane.Service{{Protocol: controlplane.ProtocolTCP, Port: &port}}},
			{Direction: controlplane.DirectionOut, To: controlplane.NetworkPolicyPeer{AddressGroups: []string{"ag-client"}}},
			{Direction: controlplane.DirectionIn, From: controlplane.NetworkPolicyPeer{AddressGroups: []string{"ag-client"}}},
		}}
	return &networkpolicy.State{
		NodeName:        "n1",
		Policies:        []*controlplane.NetworkPolicy{policy},
		AppliedToGroups: map[string]*controlplane.AppliedToGroup{"atg-web": {Name: "atg-web", Members: []controlplane.GroupMember{web}}},
		AddressGroups:   map[string]*controlplane.AddressGroup{"ag-client": {Name: "ag-client", Members: []controlplane.GroupMember{client}}},
		LocalPods:       map[netip.Addr]uint32{netip.MustParseAddr("10.10.0.5"): 7},
	}
}

func TestCollectorCountsRulesAndDrops(t *testing.T) {
	s := testState()
	sw := &fakeSwitch{flows: networkpolicy.Compile(s), counters: map[string][2]uint64{}}
	c := NewCollector(sw, sw.keyOwners, func() ([]*controlplane.NetworkPolicy, map[string]*controlplane.AppliedToGroup) {
		return s.Policies, s.AppliedToGroups
	})
	ctx := context.Background()

	got, err := c.Collect(ctx, "n1")
	require.NoError(t, err)
	assert.Nil(t, got, "nothing counted yet")

	ingress0 := networkpolicy.RuleOwnerPrefix("u-web") + "in/0"
	egress1 := networkpolicy.RuleOwnerPrefix("u-web") + "out/1"
	ingress2 := networkpolicy.RuleOwnerPrefix("u-web") + "in/2"
	isolation := networkpolicy.IsolationOwner(netip.MustParseAddr("10.10.0.5"))
	established0 := "networkpolicy/established/u-web/in/0"
	sw.count(t, ingress0, 90, 3, 222)
	sw.count(t, established0, 90, 30, 6000) // the rest of those 3 connections
	sw.count(t, egress1, 50, 1, 74)
	sw.count(t, isolation, 100, 2, 148) // ingress drops
	sw.count(t, isolation, 60, 1, 60)   // egress drops

	got, err = c.Collect(ctx, "n1")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "n1", got.Name)
	require.Len(t, got.NetworkPolicies, 1)
	ps := got.NetworkPolicies[0]
	assert.Equal(t, cpv1beta1.NetworkPolicyReference{Namespace: "x", Name: "web", UID: "u-web"}, ps.NetworkPolicy)
	// Rule 2 of the policy is its second ingress rule (index 1); rule 1
	// its first egress rule (index 0).
	assert.Equal(t, []cpv1beta1.RuleTrafficStats{
		{Direction: cpv1beta1.DirectionIn, Index: 0, Allowed: cpv1beta1.TrafficStats{Packets: 33, Bytes: 6222, Sessions: 3}},
		{Direction: cpv1beta1.DirectionOut, Index: 0, Allowed: cpv1beta1.TrafficStats{Packets: 1, Bytes: 74, Sessions: 1}},
	}, ps.Rules)
	assert.Equal(t, cpv1beta1.TrafficStats{Packets: 3, Bytes: 208, Sessions: 3}, ps.Dropped)

	// The next collection counts only what came since; a flow whose
	// counters went back (deleted and added again) counts from zero.
	sw.count(t, ingress0, 90, 5, 370)
	sw.count(t, ingress2, 90, 4, 296)
	sw.count(t, isolation, 100, 1, 74)
	got, err = c.Collect(ctx, "n1")
	require.NoError(t, err)
	require.Len(t, got.NetworkPolicies, 1)
	assert.Equal(t, []cpv1beta1.RuleTrafficStats{
		{Direction: cpv1beta1.DirectionIn, Index: 0, Allowed: cpv1beta1.TrafficStats{Packets: 2, Bytes: 148, Sessions: 2}},
		{Direction: cpv1beta1.DirectionIn, Index: 1, Allowed: cpv1beta1.TrafficStats{Packets: 4, Bytes: 296, Sessions: 4}},
	}, got.NetworkPolicies[0].Rules)
	assert.Equal(t, cpv1beta1.TrafficStats{Packets: 1, Bytes: 74, Sessions: 1}, got.NetworkPolicies[0].Dropped)

	// Nothing new: nothing to report.
	got, err = c.Collect(ctx, "n1")
	require.NoError(t, err)
	assert.Nil(t, got)

	sw.err = errors.New("connection reset")
	_, err = c.Collect(ctx, "n1")
	assert.ErrorContains(t, err, "reading the counters of table EgressRule: connection reset")
}

type recordingSender struct {
	sent []*cpv1beta1.NodeStatsSummary
	fail int
}

func (r *recordingSender) Send(_ context.Context, s *cpv1beta1.NodeStatsSummary) error {
	if r.fail > 0 {
		r.fail--
		return errors.New("controller unavailable")
	}
	r.sent = append(r.sent, s)
	return nil
}

func TestReporterKeepsCountsItCouldNotSend(t *testing.T) {
	s := testState()
	sw := &fakeSwitch{flows: networkpolicy.Compile(s), counters: map[string][2]uint64{}}
	sender := &recordingSender{fail: 1}
	reg := prometheus.NewRegistry()
	r := &Reporter{Node: "n1", Sender: sender, Metrics: NewMetrics(reg), Collector: NewCollector(sw, sw.keyOwners,
		func() ([]*controlplane.NetworkPolicy, map[string]*controlplane.AppliedToGroup) {
			return s.Policies, s.AppliedToGroups
		})}
	ctx := context.Background()
	ingress0 := networkpolicy.RuleOwnerPrefix("u-web") + "in/0"

	sw.count(t, ingress0, 90, 3, 222)
	require.Error(t, r.Report(ctx), "the controller is away")
	sw.count(t, ingress0, 90, 5, 370)
	require.NoError(t, r.Report(ctx))
	require.Len(t, sender.sent, 1)
	assert.Equal(t, int64(5), sender.sent[0].NetworkPolicies[0].Rules[0].Allowed.Sessions, "both intervals in one summary")

	require.NoError(t, r.Report(ctx))
	assert.Len(t, sender.sent, 1, "nothing new, nothing sent")

	// The metrics count every collection, sent or not.
	isolation := networkpolicy.IsolationOwner(netip.MustParseAddr("10.10.0.5"))
	sw.count(t, isolation, 100, 2, 148)
	require.NoError(t, r.Report(ctx))
	assert.Equal(t, 5.0, testutil.ToFloat64(r.Metrics.allowed.WithLabelValues("x", "web")))
	assert.Equal(t, 2.0, testutil.ToFloat64(r.Metrics.denied.WithLabelValues("x", "web")))
	// A policy that is gone loses its series.
	s.Policies = nil
	require.NoError(t, r.Report(ctx))
	n, err := testutil.GatherAndCount(reg, "antrea_agent_networkpolicy_denied_connections_total")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func intstrPort(p int) intstr.IntOrString { return intstr.FromInt(p) }
