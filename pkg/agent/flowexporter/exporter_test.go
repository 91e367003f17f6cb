package flowexporter

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

type fakeSource struct {
	conns []connection.Conn
	err   error
}

func (f *fakeSource) Dump(context.Context) ([]connection.Conn, error) {
	return append([]connection.Conn(nil), f.conns...), f.err
}

type fakeEnricher struct{ refreshed, enriched int }

func (f *fakeEnricher) Refresh() { f.refreshed++ }
func (f *fakeEnricher) Enrich(c *connection.Conn) connection.Enrichment {
	f.enriched++
	return connection.Enrichment{Source: connection.Pod{Namespace: "ns", Name: "pod-" + c.Orig.Src.String()}}
}

type fakeSink struct {
	batches [][]connection.Record
	err     error
}

func (f *fakeSink) Export(_ context.Context, rs []connection.Record) error {
	if f.err != nil {
		return f.err
	}
	f.batches = append(f.batches, rs)
	return nil
}

func (f *fakeSink) last() []connection.Record {
	if len(f.batches) == 0 {
		return nil
	}
	return f.batches[len(f.batches)-1]
}

func tcpConn(sport uint16, origPkts, replyPkts uint64, state string) connection.Conn {
	src, dst := netip.MustParseAddr("10.10.0.3"), netip.MustParseAddr("10.10.0.2")
	return connection.Conn{Zone: 65520,
		Orig:         connection.Tuple{Proto: 6, Src: src, SrcPort: sport, Dst: dst, DstPort: 80},
		Reply:        connection.Tuple{Proto: 6, Src: dst, SrcPort: 80, Dst: src, DstPort: sport},
		OrigCounters: connection.Counters{Packets: origPkts, Bytes: 100 * origPkts}, ReplyCounters: connection.Counters{Packets: replyPkts, Bytes: 1000 * replyPkts},
		HasCounters: true, TCPState: state}
}

type harness struct {
	clock  *clocktesting.FakeClock
	source *fakeSource
	enr    *fakeEnricher
	sink   *fakeSink
	exp    *Exporter
	reg    *prometheus.Registry
}

func newHarness() *harness {
	h := &harness{clock: clocktesting.NewFakeClock(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)), source: &fakeSource{}, enr: &fakeEnricher{}, sink: &fakeSink{}, reg: prometheus.NewRegistry()}
	h.exp = New(Config{PollInterval: time.Second, ActiveTimeout: 5 * time.Second, IdleTimeout: 3 * time.Second, Clock: h.clock},
		h.source, h.enr, h.sink, NewMetrics(h.reg))
	return h
}

// poll advances the clock by one interval and polls.
func (h *harness) poll(t *testing.T) {
	t.Helper()
	h.clock.Step(time.Second)
	require.NoError(t, h.exp.Poll(context.Background()))
}

func TestActiveTimeoutExportsDeltas(t *testing.T) {
	h := newHarness()
	start := h.clock.Now().Add(time.Second)
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "ESTABLISHED")}
	h.poll(t)
	assert.Empty(t, h.sink.batches, "nothing due at first sight")
	assert.Equal(t, 1, h.enr.enriched)
	for i := 0; i < 4; i++ {
		h.source.conns = []connection.Conn{tcpConn(40000, uint64(4+i), uint64(3+i), "ESTABLISHED")}
		h.poll(t)
	}
	assert.Empty(t, h.sink.batches, "4s after first sight: not yet")
	h.source.conns = []connection.Conn{tcpConn(40000, 10, 8, "ESTABLISHED")}
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	r := h.sink.last()[0]
	assert.Equal(t, connection.EndActiveTimeout, r.EndReason)
	assert.Equal(t, start, r.Start)
	assert.Equal(t, h.clock.Now(), r.End)
	assert.Equal(t, connection.Counters{Packets: 10, Bytes: 1000}, r.OrigDelta, "everything since the start")
	assert.Equal(t, connection.Counters{Packets: 8, Bytes: 8000}, r.ReplyDelta)
	assert.Equal(t, "pod-10.10.0.3", r.Source.Name)

	// The next record carries only what moved since.
	for i := 0; i < 5; i++ {
		h.source.conns = []connection.Conn{tcpConn(40000, uint64(11+i), 8, "ESTABLISHED")}
		h.poll(t)
	}
	require.Len(t, h.sink.batches, 2)
	assert.Equal(t, connection.Counters{Packets: 5, Bytes: 500}, h.sink.last()[0].OrigDelta)
	assert.Zero(t, h.sink.last()[0].ReplyDelta)
	assert.Equal(t, 1, h.enr.enriched, "a connection is enriched once")
	assert.Equal(t, 11, h.enr.refreshed, "the enricher is refreshed at every poll")
	assert.Equal(t, 2.0, testutil.ToFloat64(h.exp.metrics.exported))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.exp.metrics.connections))
}

func TestIdleTimeoutExportsOnce(t *testing.T) {
	h := newHarness()
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "ESTABLISHED")}
	for range 3 {
		h.poll(t)
	}
	assert.Empty(t, h.sink.batches)
	h.poll(t) // 3 s without new packets
	require.Len(t, h.sink.batches, 1)
	assert.Equal(t, connection.EndIdleTimeout, h.sink.last()[0].EndReason)
	for range 10 {
		h.poll(t)
	}
	assert.Len(t, h.sink.batches, 1, "an idle connection is exported once")

	// Traffic again, long after the last record: exported at once (the
	// active timeout has passed), then idle once more.
	h.source.conns = []connection.Conn{tcpConn(40000, 4, 3, "ESTABLISHED")}
	h.poll(t)
	require.Len(t, h.sink.batches, 2)
	assert.Equal(t, connection.EndActiveTimeout, h.sink.last()[0].EndReason)
	assert.Equal(t, connection.Counters{Packets: 1, Bytes: 100}, h.sink.last()[0].OrigDelta)
	for range 3 {
		h.poll(t)
	}
	require.Len(t, h.sink.batches, 3)
	assert.Equal(t, connection.EndIdleTimeout, h.sink.last()[0].EndReason)
	assert.Zero(t, h.sink.last()[0].OrigDelta)
}

func TestEndOfFlow(t *testing.T) {
	h := newHarness()
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "ESTABLISHED"), tcpConn(40001, 1, 1, "ESTABLISHED")}
	h.poll(t)
	// The first closes (TIME_WAIT), the second disappears from conntrack.
	h.source.conns = []connection.Conn{tcpConn(40000, 6, 5, "TIME_WAIT")}
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	require.Len(t, h.sink.last(), 1, "the gone connection at once")
	assert.Equal(t, uint16(40001), h.sink.last()[0].Conn.Orig.SrcPort)
	// The closed one's counters move once more (statistics lag), then
	// hold still: its end goes out then.
	h.source.conns = []connection.Conn{tcpConn(40000, 7, 6, "TIME_WAIT")}
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	h.poll(t)
	require.Len(t, h.sink.batches, 2)
	require.Len(t, h.sink.last(), 1)
	assert.Equal(t, connection.EndOfFlow, h.sink.last()[0].EndReason)
	assert.Equal(t, connection.Counters{Packets: 7, Bytes: 700}, h.sink.last()[0].OrigDelta)
	assert.Equal(t, connection.EndOfFlow, h.sink.batches[0][0].EndReason, "a TCP connection gone from conntrack ended")
	// TIME_WAIT stays in conntrack for a while: no more records.
	for range 10 {
		h.poll(t)
	}
	assert.Len(t, h.sink.batches, 2)
	h.source.conns = nil
	h.poll(t)
	assert.Len(t, h.sink.batches, 2, "its end was sent already")
	assert.Zero(t, h.exp.Connections())
}

func TestUDPGoneIsIdle(t *testing.T) {
	h := newHarness()
	c := tcpConn(5353, 1, 1, "")
	c.Orig.Proto, c.Reply.Proto = 17, 17
	h.source.conns = []connection.Conn{c}
	h.poll(t)
	h.source.conns = nil
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	assert.Equal(t, connection.EndIdleTimeout, h.sink.last()[0].EndReason)
}

func TestCountersUnknownThisPollAreKept(t *testing.T) {
	h := newHarness()
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "ESTABLISHED")}
	h.poll(t)
	blind := tcpConn(40000, 0, 0, "ESTABLISHED")
	blind.HasCounters = false
	h.source.conns = []connection.Conn{blind}
	for range 2 {
		h.poll(t)
	}
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "TIME_WAIT")}
	h.poll(t)
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	assert.Equal(t, connection.Counters{Packets: 3, Bytes: 300}, h.sink.last()[0].OrigDelta, "no made-up reset to zero")
}

func TestFailedExportIsRetriedWithTheSameDeltas(t *testing.T) {
	h := newHarness()
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "ESTABLISHED")}
	h.poll(t)
	h.source.conns = []connection.Conn{tcpConn(40000, 5, 2, "TIME_WAIT")}
	h.poll(t)
	h.sink.err = errors.New("collector unreachable")
	h.clock.Step(time.Second)
	assert.ErrorContains(t, h.exp.Poll(context.Background()), "export 1 records: collector unreachable")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.exp.metrics.exportErrors))
	h.sink.err = nil
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	assert.Equal(t, connection.Counters{Packets: 5, Bytes: 500}, h.sink.last()[0].OrigDelta)
	assert.Equal(t, connection.EndOfFlow, h.sink.last()[0].EndReason)
}

func TestFailedDumpKeepsState(t *testing.T) {
	h := newHarness()
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "ESTABLISHED")}
	h.poll(t)
	h.source.err = errors.New("ovs-vswitchd is restarting")
	h.clock.Step(time.Second)
	assert.Error(t, h.exp.Poll(context.Background()))
	assert.Equal(t, 1, h.exp.Connections(), "a failed dump ends no connection")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.exp.metrics.pollErrors))
	assert.Empty(t, h.sink.batches)
}

func TestStartFromConntrack(t *testing.T) {
	h := newHarness()
	c := tcpConn(40000, 3, 2, "TIME_WAIT")
	c.Start = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	h.source.conns = []connection.Conn{c}
	h.poll(t)
	h.poll(t)
	require.Len(t, h.sink.batches, 1)
	assert.Equal(t, c.Start, h.sink.last()[0].Start, "the kernel's start time wins over first sight")
}

// TestRunPollsOnTheClock drives Run with the fake clock and checks the
// poll delay metric.
func TestRunPollsOnTheClock(t *testing.T) {
	h := newHarness()
	h.source.conns = []connection.Conn{tcpConn(40000, 3, 2, "TIME_WAIT")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.exp.Run(ctx)
	}()
	require.Eventually(t, h.clock.HasWaiters, time.Second, time.Millisecond)
	h.clock.Step(time.Second)
	require.Eventually(t, func() bool { return h.exp.Connections() == 1 }, time.Second, time.Millisecond, "the first tick polled")
	h.clock.Step(time.Second)
	require.Eventually(t, func() bool { return testutil.ToFloat64(h.exp.metrics.exported) == 1 }, time.Second, time.Millisecond, "the second exported the closed connection")
	cancel()
	<-done
	assert.Zero(t, testutil.ToFloat64(h.exp.metrics.pollDelay), "the fake clock does not move during the poll")
}
