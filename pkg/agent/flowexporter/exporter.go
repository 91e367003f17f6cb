// Package flowexporter exports the node's connections as IPFIX records:
// it polls the datapath's conntrack (a Source), follows each connection
// between polls, names its ends once (an Enricher), and hands records to
// a Sink on the active and idle timeouts and when the connection ends.
//
//	Source ──Dump──▶ Exporter ──Records──▶ Sink (IPFIX to the collector)
//	                    │
//	                    └─Enrich (new connections)
package flowexporter

import (
	"context"
	"fmt"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

// Source lists the datapath's connections of the pod network.
type Source interface {
	Dump(ctx context.Context) ([]connection.Conn, error)
}

// Enricher names the ends of connections. Refresh runs once per poll,
// before the poll's new connections are enriched.
type Enricher interface {
	Refresh()
	Enrich(c *connection.Conn) connection.Enrichment
}

// Sink sends records to the collector; all or nothing.
type Sink interface {
	Export(ctx context.Context, records []connection.Record) error
}

// Config is the exporter's timing.
type Config struct {
	// PollInterval is how often conntrack is read.
	PollInterval time.Duration
	// ActiveTimeout: a connection with traffic since its last record gets
	// a record at least this often.
	ActiveTimeout time.Duration
	// IdleTimeout: a connection without traffic for this long gets one
	// record, then none until it has traffic again.
	IdleTimeout time.Duration
	// Clock is the time source (a fake one in tests); nil is the real
	// clock.
	Clock clock.WithTicker
}

// Exporter follows connections from poll to poll. Poll and Run must not
// be called concurrently.
type Exporter struct {
	cfg     Config
	source  Source
	enrich  Enricher
	sink    Sink
	metrics *Metrics
	conns   map[connection.Key]*tracked
}

// tracked is one connection as the exporter follows it.
type tracked struct {
	conn       connection.Conn
	enrichment connection.Enrichment
	start      time.Time
	// When the last record was sent, with the counters it carried.
	lastExport    time.Time
	exportedOrig  connection.Counters
	exportedReply connection.Counters
	// lastActivity is the poll at which the counters last grew (or the
	// connection appeared).
	lastActivity time.Time
	// idleSent: an idle record went out and nothing moved since.
	idleSent bool
	// closedSeen: the last poll saw the TCP connection closed.
	closedSeen bool
	// closedSent: the end-of-flow record of a closed TCP connection went
	// out; conntrack keeps the entry a while longer, we send no more.
	closedSent bool
}

// New returns an exporter; metrics may be nil.
func New(cfg Config, source Source, enrich Enricher, sink Sink, metrics *Metrics) *Exporter {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Exporter{cfg: cfg, source: source, enrich: enrich, sink: sink, metrics: metrics, conns: map[connection.Key]*tracked{}}
}

// Run polls every PollInterval until ctx ends.
func (e *Exporter) Run(ctx context.Context) {
	ticker := e.cfg.Clock.NewTicker(e.cfg.PollInterval)
	defer ticker.Stop()
	klog.InfoS("Flow exporter started", "pollInterval", e.cfg.PollInterval, "activeTimeout", e.cfg.ActiveTimeout, "idleTimeout", e.cfg.IdleTimeout)
	for {
		select {
		case <-ctx.Done():
			return
		case tick := <-ticker.C():
			e.metrics.pollDelay.Set(e.cfg.Clock.Since(tick).Seconds())
			if err := e.Poll(ctx); err != nil {
				klog.ErrorS(err, "Flow exporter poll failed; trying again at the next one")
			}
		}
	}
}

// update is what a record changes in its connection's state once the
// sink has taken it.
type update struct {
	t      *tracked
	reason uint8
}

// Poll reads conntrack once and exports what is due.
func (e *Exporter) Poll(ctx context.Context) error {
	begin := e.cfg.Clock.Now()
	defer func() { e.metrics.pollDuration.Set(e.cfg.Clock.Since(begin).Seconds()) }()
	conns, err := e.source.Dump(ctx)
	if err != nil {
		e.metrics.pollErrors.Inc()
		return err
	}
	now := e.cfg.Clock.Now()
	e.enrich.Refresh()
	var records []connection.Record
	var updates []update
	due := func(t *tracked, reason uint8) {
		records = append(records, t.record(now, reason))
		updates = append(updates, update{t: t, reason: reason})
	}
	seen := make(map[connection.Key]bool, len(conns))
	for i := range conns {
		c := &conns[i]
		k := c.Key()
		seen[k] = true
		t := e.conns[k]
		moved := false
		if t == nil {
			t = &tracked{conn: *c, start: c.Start, lastExport: now, lastActivity: now}
			if t.start.IsZero() {
				t.start = now
			}
			t.enrichment = e.enrich.Enrich(c)
			e.conns[k] = t
		} else {
			if !c.HasCounters {
				// Counters unknown this time: keep the last ones.
				c.OrigCounters, c.ReplyCounters, c.HasCounters = t.conn.OrigCounters, t.conn.ReplyCounters, t.conn.HasCounters
			}
			if c.OrigCounters != t.conn.OrigCounters || c.ReplyCounters != t.conn.ReplyCounters {
				t.lastActivity = now
				t.idleSent = false
				moved = true
			}
			t.conn = *c
		}
		switch {
		case t.closedSent:
		case c.Closed():
			// The end of flow goes out once the counters of a closed
			// connection held still for a poll: flow statistics (the
			// userspace datapath's counters) lag the packets by up to a
			// revalidation cycle.
			if t.closedSeen && !moved {
				due(t, connection.EndOfFlow)
			}
			t.closedSeen = true
		case t.moved() && now.Sub(t.lastExport) >= e.cfg.ActiveTimeout:
			due(t, connection.EndActiveTimeout)
		case !t.idleSent && now.Sub(t.lastActivity) >= e.cfg.IdleTimeout:
			due(t, connection.EndIdleTimeout)
		}
	}
	for k, t := range e.conns {
		if seen[k] {
			continue
		}
		// Gone from conntrack: its last record, unless a closed TCP
		// connection already had it.
		if !t.closedSent {
			reason := connection.EndIdleTimeout
			if t.conn.Orig.Proto == 6 {
				reason = connection.EndOfFlow
			}
			due(t, reason)
		}
		delete(e.conns, k)
	}
	e.metrics.connections.Set(float64(len(e.conns)))
	if len(records) == 0 {
		return nil
	}
	if err := e.sink.Export(ctx, records); err != nil {
		// Live connections send the same deltas again at the next poll;
		// the last records of connections that are gone are lost.
		e.metrics.exportErrors.Inc()
		return fmt.Errorf("export %d records: %w", len(records), err)
	}
	e.metrics.exported.Add(float64(len(records)))
	for _, u := range updates {
		t := u.t
		t.lastExport = now
		t.exportedOrig, t.exportedReply = t.conn.OrigCounters, t.conn.ReplyCounters
		switch u.reason {
		case connection.EndOfFlow:
			t.closedSent = true
		case connection.EndIdleTimeout:
			t.idleSent = true
		}
	}
	return nil
}

// moved reports whether the connection has traffic that no record
// carried yet.
func (t *tracked) moved() bool {
	return t.conn.OrigCounters != t.exportedOrig || t.conn.ReplyCounters != t.exportedReply
}

func (t *tracked) record(now time.Time, reason uint8) connection.Record {
	return connection.Record{
		Conn:       t.conn,
		Enrichment: t.enrichment,
		Start:      t.start,
		End:        now,
		OrigDelta:  t.conn.OrigCounters.Sub(t.exportedOrig),
		ReplyDelta: t.conn.ReplyCounters.Sub(t.exportedReply),
		EndReason:  reason,
	}
}

// Connections is how many connections the exporter follows.
func (e *Exporter) Connections() int { return len(e.conns) }
