package openflow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// Client is what the agent programs a bridge through. Conn implements it
// against OVS; openflowtest.Fake in memory.
type Client interface {
	// Bundle applies, all or nothing, in one OpenFlow bundle: deletes
	// (strict: by table, priority and match) then adds (a flow with the
	// same Key is replaced). It is Apply(ctx, Change{DelFlows: del,
	// AddFlows: add}).
	Bundle(ctx context.Context, add, del []Flow) error
	// Apply applies flow and group changes, all or nothing, in one bundle,
	// in this order: DelFlows, AddGroups, AddFlows, ModFlows, DelGroups.
	Apply(ctx context.Context, ch Change) error
	// DeleteByCookie deletes the flows of every table whose cookie has the
	// bits of cookie under mask.
	DeleteByCookie(ctx context.Context, cookie, mask uint64) error
	// DumpFlows returns the flows of table, or of all tables for -1.
	DumpFlows(ctx context.Context, table int) ([]FlowStats, error)
	// Connected reports whether the switch connection is up (and, for
	// Conn, its on-connect callback has completed).
	Connected() bool
}

// Change is a set of flow and group modifications applied atomically.
type Change struct {
	// DelFlows are deleted strictly (table, priority, match); deleting a
	// flow that does not exist is not an error.
	DelFlows []Flow
	// AddGroups are installed, replacing the group with the same ID. A
	// group too large for one message (thousands of buckets) is sent as
	// one add-or-modify followed by insert-bucket messages, in the same
	// bundle.
	AddGroups []GroupEntry
	// AddFlows are added, replacing flows with the same Key (and resetting
	// their counters).
	AddFlows []Flow
	// ModFlows change the actions of existing flows (modify-strict; the
	// cookie and counters are kept; a missing flow is not added).
	ModFlows []Flow
	// DelGroups are deleted, with the flows that use them.
	DelGroups []uint32
}

// Empty reports whether ch changes nothing.
func (ch *Change) Empty() bool {
	return len(ch.DelFlows)+len(ch.AddGroups)+len(ch.AddFlows)+len(ch.ModFlows)+len(ch.DelGroups) == 0
}

var _ Client = (*Conn)(nil)

// Bundle implements Client.
func (c *Conn) Bundle(ctx context.Context, add, del []Flow) error {
	return c.Apply(ctx, Change{DelFlows: del, AddFlows: add})
}

// opRef says which element of a Change a bundle message came from.
type opRef struct {
	kind  uint8
	index int32
}

const (
	refDelFlow uint8 = iota
	refAddGroup
	refAddFlow
	refModFlow
	refDelGroup
)

func (r opRef) describe(ch *Change) string {
	switch r.kind {
	case refDelFlow:
		return "delete flow " + ch.DelFlows[r.index].Key()
	case refAddGroup:
		return fmt.Sprintf("install group %d", ch.AddGroups[r.index].ID)
	case refAddFlow:
		return "add flow " + ch.AddFlows[r.index].String()
	case refModFlow:
		return "modify flow " + ch.ModFlows[r.index].String()
	default:
		return fmt.Sprintf("delete group %d", ch.DelGroups[r.index])
	}
}

// writeChunk is how many bytes of bundle adds go out per write; other
// requests can interleave between chunks.
const writeChunk = 256 << 10

// errStopSending stops the encoding of a bundle the switch has already
// refused a message of.
var errStopSending = errors.New("the switch refused a message of the bundle")

// sendError is a failure to write a chunk, as opposed to one to encode a
// message.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// bundleEncoder lays out the BUNDLE_ADD messages of one bundle and hands
// them to flush a chunk at a time, so that the switch parses a chunk
// while the next is encoded.
type bundleEncoder struct {
	id    uint32
	base  uint32
	buf   []byte
	refs  []opRef
	flush func([]byte) error
}

func (e *bundleEncoder) add(ref opRef, enc func(b []byte, xid uint32) ([]byte, error)) error {
	xid := e.base + uint32(len(e.refs))
	start := len(e.buf)
	b := appendHeader(e.buf, typeBundleAdd, xid)
	b = binary.BigEndian.AppendUint32(b, e.id)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, bundleFlags)
	b, err := enc(b, xid)
	if err != nil {
		e.buf = b[:start]
		return err
	}
	if b, err = finish(b, start); err != nil {
		e.buf = b[:start]
		return err
	}
	e.buf = b
	e.refs = append(e.refs, ref)
	if len(e.buf) >= writeChunk {
		return e.send()
	}
	return nil
}

// send flushes what is buffered.
func (e *bundleEncoder) send() error {
	if len(e.buf) == 0 {
		return nil
	}
	err := e.flush(e.buf)
	e.buf = e.buf[:0]
	return err
}

// encodeGroups encodes the group mods of ch up front (a group may need
// several messages) and returns them with the number of messages of the
// whole bundle.
func encodeGroups(ch *Change) ([][]groupModBody, int, error) {
	groupMods := make([][]groupModBody, len(ch.AddGroups))
	n := len(ch.DelFlows) + len(ch.AddFlows) + len(ch.ModFlows) + len(ch.DelGroups)
	for i := range ch.AddGroups {
		mods, err := encodeGroupMods(&ch.AddGroups[i])
		if err != nil {
			return nil, 0, err
		}
		groupMods[i] = mods
		n += len(mods)
	}
	return groupMods, n, nil
}

// encodeChange encodes every message of ch, in bundle order, and sends
// the rest of the buffer at the end.
func (e *bundleEncoder) encodeChange(ch *Change, groupMods [][]groupModBody) error {
	for i := range ch.DelFlows {
		f := &ch.DelFlows[i]
		if err := e.add(opRef{refDelFlow, int32(i)}, func(b []byte, xid uint32) ([]byte, error) { return appendDeleteFlow(b, xid, f) }); err != nil {
			return err
		}
	}
	for i, mods := range groupMods {
		for _, m := range mods {
			if err := e.add(opRef{refAddGroup, int32(i)}, func(b []byte, xid uint32) ([]byte, error) { return appendGroupMod(b, xid, m) }); err != nil {
				return fmt.Errorf("group %d: %w", ch.AddGroups[i].ID, err)
			}
		}
	}
	for i := range ch.AddFlows {
		f := &ch.AddFlows[i]
		if err := e.add(opRef{refAddFlow, int32(i)}, func(b []byte, xid uint32) ([]byte, error) { return appendAddFlow(b, xid, f) }); err != nil {
			return err
		}
	}
	for i := range ch.ModFlows {
		f := &ch.ModFlows[i]
		if err := e.add(opRef{refModFlow, int32(i)}, func(b []byte, xid uint32) ([]byte, error) { return appendModifyFlow(b, xid, f) }); err != nil {
			return err
		}
	}
	for i, id := range ch.DelGroups {
		if err := e.add(opRef{refDelGroup, int32(i)}, func(b []byte, xid uint32) ([]byte, error) {
			return appendGroupMod(b, xid, encodeGroupDelete(id))
		}); err != nil {
			return err
		}
	}
	return e.send()
}

// Apply implements Client. The bundle is opened, its messages are encoded
// and streamed a chunk at a time without waiting for replies (the switch
// parses one chunk while the next is encoded), a barrier collects any
// per-message errors, and the bundle is committed only if there were
// none and everything encoded; otherwise it is discarded.
func (c *Conn) Apply(ctx context.Context, ch Change) error {
	if ch.Empty() {
		return nil
	}
	groupMods, n, err := encodeGroups(&ch)
	if err != nil {
		return fmt.Errorf("openflow: encode bundle: %w", err)
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	start := time.Now()
	e := &bundleEncoder{id: c.bundleID.Add(1), base: c.nextXIDs(n), refs: make([]opRef, 0, n), buf: make([]byte, 0, min(192*n, writeChunk+4096))}
	sink := s.addSink(e.base, n)
	defer s.takeSink(sink)
	fail := func(op string, err error) error {
		return fmt.Errorf("openflow: bundle %d of %d messages: %s: %w", e.id, n, op, err)
	}
	msgs, err := s.request(ctx, bundleControlMsg(c.nextXIDs(1), e.id, bundleOpen))
	if err != nil {
		return fail("open", err)
	}
	if t := bundleControlType(msgs[0]); t != bundleOpen+1 {
		return fail("open", fmt.Errorf("unexpected bundle control reply type %d", t))
	}
	committed := false
	defer func() {
		if !committed {
			c.discard(s, e.id)
		}
	}()
	bytes := 0
	e.flush = func(b []byte) error {
		if err := s.write(ctx, b); err != nil {
			return &sendError{err}
		}
		bytes += len(b)
		if len(s.sinkErrors(sink)) > 0 {
			return errStopSending // no point in sending the rest
		}
		return nil
	}
	if err := e.encodeChange(&ch, groupMods); err != nil {
		var se *sendError
		switch {
		case errors.Is(err, errStopSending):
			// The barrier collects what the switch refused.
		case errors.As(err, &se):
			return fail("add", se.err)
		default:
			return fail("encode", err)
		}
	}
	if err := s.barrier(ctx, c.nextXIDs(1)); err != nil {
		return fail("barrier", err)
	}
	if errs := s.sinkErrors(sink); len(errs) > 0 {
		return fail("add", describeErrors(errs, e, &ch))
	}
	if _, err := s.request(ctx, bundleControlMsg(c.nextXIDs(1), e.id, bundleCommit)); err != nil {
		// After a commit reply, error or not, the switch has dropped the
		// bundle; only a commit we gave up waiting for needs a discard.
		committed = ctx.Err() == nil
		if errs := s.sinkErrors(sink); len(errs) > 0 {
			err = errors.Join(err, describeErrors(errs, e, &ch))
		}
		return fail("commit", err)
	}
	committed = true
	klog.FromContext(ctx).V(2).Info("OpenFlow bundle committed", "bundle", e.id, "messages", n, "bytes", bytes, "duration", time.Since(start))
	return nil
}

// discard drops an open bundle, best effort.
func (c *Conn) discard(s *session, id uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.request(ctx, bundleControlMsg(c.nextXIDs(1), id, bundleDiscard)); err != nil {
		klog.V(2).InfoS("Discarding OpenFlow bundle failed", "bundle", id, "err", err)
	}
}

// describeErrors names the failing messages of a bundle (at most 10).
func describeErrors(errs []*Error, e *bundleEncoder, ch *Change) error {
	var out []error
	for i, er := range errs {
		if i == 10 {
			out = append(out, fmt.Errorf("and %d more errors", len(errs)-10))
			break
		}
		if idx := er.FailedXID - e.base; idx < uint32(len(e.refs)) {
			er.Context = e.refs[idx].describe(ch)
		}
		out = append(out, er)
	}
	return errors.Join(out...)
}

// barrier waits until the switch has processed everything sent before.
func (s *session) barrier(ctx context.Context, xid uint32) error {
	_, err := s.request(ctx, simpleMsg(typeBarrierReq, xid, nil))
	return err
}

// DeleteByCookie implements Client.
func (c *Conn) DeleteByCookie(ctx context.Context, cookie, mask uint64) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	xid := c.nextXIDs(1)
	msg, err := appendDeleteByCookie(nil, xid, cookie, mask)
	if err != nil {
		return err
	}
	sink := s.addSink(xid, 1)
	defer s.takeSink(sink)
	if err := s.write(ctx, msg); err != nil {
		return fmt.Errorf("openflow: delete flows by cookie %#x/%#x: %w", cookie, mask, err)
	}
	if err := s.barrier(ctx, c.nextXIDs(1)); err != nil {
		return fmt.Errorf("openflow: delete flows by cookie %#x/%#x: %w", cookie, mask, err)
	}
	if errs := s.sinkErrors(sink); len(errs) > 0 {
		return fmt.Errorf("openflow: delete flows by cookie %#x/%#x: %w", cookie, mask, errs[0])
	}
	return nil
}

// DumpFlows implements Client.
func (c *Conn) DumpFlows(ctx context.Context, table int) ([]FlowStats, error) {
	return c.DumpFlowsByCookie(ctx, table, 0, 0)
}

// DumpFlowsByCookie is DumpFlows for the flows whose cookie has the bits
// of cookie under mask: the switch filters them.
func (c *Conn) DumpFlowsByCookie(ctx context.Context, table int, cookie, mask uint64) ([]FlowStats, error) {
	if table < -1 || table > 254 {
		return nil, fmt.Errorf("openflow: dump flows: table %d out of range", table)
	}
	t := tableAll
	if table >= 0 {
		t = uint8(table)
	}
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := s.request(ctx, flowStatsRequest(c.nextXIDs(1), t, cookie, mask))
	if err != nil {
		return nil, fmt.Errorf("openflow: dump flows of table %d: %w", table, err)
	}
	var out []FlowStats
	for _, m := range msgs {
		fs, err := decodeFlowDescs(m)
		if err != nil {
			return nil, fmt.Errorf("openflow: dump flows of table %d: %w", table, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// Features returns what the switch reported at the last connect.
func (c *Conn) Features(ctx context.Context) (Features, error) {
	s, err := c.session(ctx)
	if err != nil {
		return Features{}, err
	}
	return s.features, nil
}
