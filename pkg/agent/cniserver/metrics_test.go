package cniserver

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Observe(Observation{Command: CmdAdd, ContainerID: "c1", Duration: 20 * time.Millisecond})
	m.Observe(Observation{Command: CmdAdd, ContainerID: "c2", Duration: 30 * time.Millisecond})
	m.Observe(Observation{Command: CmdDel, ContainerID: "c1", Duration: 5 * time.Millisecond, Code: 11})
	assert.Equal(t, 2.0, testutil.ToFloat64(m.requests.WithLabelValues(CmdAdd, "0")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues(CmdDel, "11")))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP antrea_agent_cni_requests_total CNI requests served, by command and CNI error code (0: success).
# TYPE antrea_agent_cni_requests_total counter
antrea_agent_cni_requests_total{code="0",command="ADD"} 2
antrea_agent_cni_requests_total{code="11",command="DEL"} 1
`), "antrea_agent_cni_requests_total"))
	assert.Equal(t, 2, testutil.CollectAndCount(m.duration), "one histogram per command")
}
