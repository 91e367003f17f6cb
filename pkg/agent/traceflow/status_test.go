package traceflow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
)

func result(node string, role v1alpha1.Role, obs ...v1alpha1.Observation) v1alpha1.NodeResult {
	return v1alpha1.NodeResult{Node: node, Role: role, Observations: obs}
}

var (
	intoTunnel = v1alpha1.Observation{Component: v1alpha1.ComponentForwarding, Action: v1alpha1.ActionForwarded,
		TunnelDstIP: "172.18.0.12", TunnelDstNode: "node-2"}
	delivered = v1alpha1.Observation{Component: v1alpha1.ComponentOutput, Action: v1alpha1.ActionDelivered, Pod: "ns/server"}
	received  = v1alpha1.Observation{Component: v1alpha1.ComponentClassification, Action: v1alpha1.ActionReceived}
)

func TestAddResult(t *testing.T) {
	st := &v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseRunning}
	assert.True(t, addResult(st, result("node-1", v1alpha1.RoleSender, intoTunnel)))
	assert.Equal(t, v1alpha1.PhaseRunning, st.Phase, "the tunnel is not a final point")
	assert.True(t, waitingForReceiver(st, "node-1"))
	assert.False(t, addResult(st, result("node-1", v1alpha1.RoleSender, delivered)), "one result per node")
	assert.True(t, addResult(st, result("node-2", v1alpha1.RoleReceiver, received, delivered)))
	assert.Equal(t, v1alpha1.PhaseSucceeded, st.Phase)
	assert.False(t, waitingForReceiver(st, "node-1"))
	assert.Len(t, st.Results, 2)
}

func TestAddResultInAnyOrder(t *testing.T) {
	// The receiver's write lands first: the trace goes on until the
	// sender's result is in, which goes first in the list.
	st := &v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseRunning}
	assert.True(t, addResult(st, result("node-2", v1alpha1.RoleReceiver, received, delivered)))
	assert.Equal(t, v1alpha1.PhaseRunning, st.Phase, "every hop, or no success")
	assert.True(t, addResult(st, result("node-1", v1alpha1.RoleSender, intoTunnel)))
	assert.Equal(t, v1alpha1.PhaseSucceeded, st.Phase)
	assert.Equal(t, []string{"node-1", "node-2"}, []string{st.Results[0].Node, st.Results[1].Node})

	// A late result of a trace that failed is dropped; one that
	// succeeded takes it.
	failed := &v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseFailed}
	assert.False(t, addResult(failed, result("node-1", v1alpha1.RoleSender, delivered)))
	assert.Empty(t, failed.Results)
	assert.True(t, addResult(st, result("node-3", v1alpha1.RoleReceiver, received, delivered)))
	assert.Equal(t, v1alpha1.PhaseSucceeded, st.Phase)
}

func TestTimeoutReason(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []v1alpha1.NodeResult
		want    string
	}{
		{"nothing reported", nil,
			"timed out after 20s: no node reported the packet (it was dropped where no Traceflow flow reports it)"},
		{"the receiver never reported", []v1alpha1.NodeResult{result("node-1", v1alpha1.RoleSender, intoTunnel)},
			"timed out after 20s: the packet left node-1 through the tunnel to node-2 (172.18.0.12), which did not report it (is its agent running?)"},
		{"a receiver reported, not finally", []v1alpha1.NodeResult{result("node-1", v1alpha1.RoleSender, intoTunnel), result("node-2", v1alpha1.RoleReceiver, received)},
			"timed out after 20s: the packet did not reach a final point"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, timeoutReason(&v1alpha1.TraceflowStatus{Results: tc.results}, "node-1", 20*time.Second))
		})
	}
}
