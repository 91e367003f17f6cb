package apiserver

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeInspector struct{ lastQuery FlowQuery }

func (f *fakeInspector) PodInterfaces() []PodInterface {
	return []PodInterface{{Namespace: "x", Name: "a", OFPort: 3}, {Namespace: "y", Name: "a", OFPort: 4}}
}

func (f *fakeInspector) Flows(q FlowQuery) ([]Flow, error) {
	f.lastQuery = q
	switch {
	case q.Pod == "x/none":
		return nil, fmt.Errorf("pod x/none: %w", ErrNotFound)
	case q.Table == "bad":
		return nil, fmt.Errorf("table %q: no such table", q.Table)
	}
	return []Flow{{Owner: "pod/c", Table: 10, TableName: "SpoofGuard", Flow: "table=10,in_port=3"}}, nil
}

func (f *fakeInspector) Info() AgentInfo { return AgentInfo{NodeName: "n1", Ready: true} }

func (f *fakeInspector) TracePacket(_ context.Context, q TraceQuery) (*TraceResult, error) {
	if q.Source == "x/none" {
		return nil, fmt.Errorf("source pod x/none: %w", ErrNotFound)
	}
	return &TraceResult{Packet: fmt.Sprintf("%s %s %s %d", q.Source, q.Destination, q.Protocol, q.DstPort), Outcome: "delivered"}, nil
}

func TestInspectOverUnixSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := &fakeInspector{}
	go func() { _ = Serve(ctx, socket, Sources{NetworkPolicies: nil, Inspector: in}) }()
	c := NewClient(socket)
	require.Eventually(t, func() bool { return c.Check(ctx, PathHealthz) == nil }, 5*time.Second, 20*time.Millisecond)

	pods, err := c.PodInterfaces(ctx, "y", "")
	require.NoError(t, err)
	assert.Equal(t, []PodInterface{{Namespace: "y", Name: "a", OFPort: 4}}, pods)
	pods, err = c.PodInterfaces(ctx, "", "")
	require.NoError(t, err)
	assert.Len(t, pods, 2)

	flows, err := c.Flows(ctx, FlowQuery{Pod: "x/a", Table: "10"})
	require.NoError(t, err)
	assert.Equal(t, FlowQuery{Pod: "x/a", Table: "10"}, in.lastQuery)
	assert.Equal(t, "SpoofGuard", flows[0].TableName)
	_, err = c.Flows(ctx, FlowQuery{Pod: "x/none"})
	assert.ErrorContains(t, err, "404 Not Found: pod x/none: not found")
	_, err = c.Flows(ctx, FlowQuery{Table: "bad"})
	assert.ErrorContains(t, err, "400 Bad Request")

	tr, err := c.TracePacket(ctx, TraceQuery{Source: "x/a", Destination: "10.0.0.1", Protocol: "udp", DstPort: 53})
	require.NoError(t, err)
	assert.Equal(t, "x/a 10.0.0.1 udp 53", tr.Packet)
	_, err = c.TracePacket(ctx, TraceQuery{Source: "x/none", Destination: "y/b"})
	assert.ErrorContains(t, err, "404 Not Found")

	info, err := c.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, "n1", info.NodeName)
}

func TestSplitNamespacedName(t *testing.T) {
	for in, want := range map[string]bool{"x/a": true, "x": false, "/a": false, "x/": false, "x/a/b": false} {
		_, _, ok := SplitNamespacedName(in)
		assert.Equal(t, want, ok, in)
	}
}
