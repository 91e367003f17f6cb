package openflow

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// ErrDisconnected is returned for requests whose connection went away
// before they were answered.
var ErrDisconnected = errors.New("openflow: connection lost")

// ErrClosed is returned once Run has returned.
var ErrClosed = errors.New("openflow: connection closed")

// Conn is an OpenFlow 1.5 connection to one bridge's management socket
// (<OVS_RUNDIR>/<bridge>.mgmt). Run keeps it connected; one reader
// goroutine decodes the switch's messages in order and hands replies and
// errors to the requests waiting for them by xid. Conn implements Client.
type Conn struct {
	path      string
	onConnect func(ctx context.Context) error

	// MinBackoff and MaxBackoff bound the wait between reconnect attempts
	// (doubling from min to max); EchoInterval is how often Run checks a
	// quiet connection with ECHO_REQUEST. Set them before Run.
	MinBackoff, MaxBackoff time.Duration
	EchoInterval           time.Duration

	// packetIn, when set, gets the switch's packet-ins (see
	// SetPacketInHandler).
	packetIn      func(PacketIn)
	packetInQueue int

	xid      atomic.Uint32
	bundleID atomic.Uint32
	opMu     sync.Mutex // one bundle at a time

	mu      sync.Mutex
	sess    *session
	ready   bool          // onConnect returned for sess
	closed  bool          // Run returned
	changed chan struct{} // closed and replaced whenever the fields above change
}

// NewConn returns a connection to the OpenFlow unix socket at socketPath.
// onConnect (may be nil) runs after every successful (re)connect, before
// other callers may use the connection; requests made with the ctx it
// receives go through. If it fails, Run drops the connection and tries
// again after a backoff. The agent replays all its flows there.
func NewConn(socketPath string, onConnect func(ctx context.Context) error) *Conn {
	return &Conn{
		path:         socketPath,
		onConnect:    onConnect,
		MinBackoff:   100 * time.Millisecond,
		MaxBackoff:   5 * time.Second,
		EchoInterval: 15 * time.Second,
		changed:      make(chan struct{}),
	}
}

type sessionKey struct{}

// Connected reports whether the connection is up and onConnect has
// completed on it.
func (c *Conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil && c.ready
}

// WaitConnected blocks until Connected or ctx ends.
func (c *Conn) WaitConnected(ctx context.Context) error {
	_, err := c.session(ctx)
	return err
}

func (c *Conn) setState(s *session, ready, closed bool) {
	c.mu.Lock()
	c.sess, c.ready, c.closed = s, ready, closed
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// session returns the usable session, waiting for one until ctx ends.
// Inside onConnect (ctx carries the session) the not-yet-ready session is
// usable.
func (c *Conn) session(ctx context.Context) (*session, error) {
	own, _ := ctx.Value(sessionKey{}).(*session)
	for {
		c.mu.Lock()
		s, ready, closed, ch := c.sess, c.ready, c.closed, c.changed
		c.mu.Unlock()
		switch {
		case own != nil && own == s:
			return s, nil
		case own != nil:
			return nil, ErrDisconnected
		case closed:
			return nil, ErrClosed
		case s != nil && ready:
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("openflow: waiting for the connection to %s: %w", c.path, ctx.Err())
		}
	}
}

// nextXIDs reserves n consecutive xids and returns the first.
func (c *Conn) nextXIDs(n int) uint32 {
	return c.xid.Add(uint32(n)) - uint32(n) + 1
}

// Run connects and keeps reconnecting, with backoff, until ctx ends; then
// it closes the connection and returns nil.
func (c *Conn) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("socket", c.path)
	backoff := c.MinBackoff
	defer c.setState(nil, false, true)
	for {
		queue := 0
		if c.packetIn != nil {
			queue = max(c.packetInQueue, 1)
		}
		s, err := dial(ctx, c.path, c.nextXIDs(1), queue)
		if err == nil && c.packetIn != nil {
			err = c.enablePacketIns(ctx, s)
		}
		if err == nil {
			logger.Info("OpenFlow connection up", "datapathID", fmt.Sprintf("%016x", s.features.DatapathID))
			var ok bool
			ok, err = c.serve(ctx, s)
			if ok {
				backoff = c.MinBackoff
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		logger.Error(err, "OpenFlow connection down; reconnecting", "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, c.MaxBackoff)
	}
}

// enablePacketIns asks the switch for packet-ins on s and starts their
// delivery.
func (c *Conn) enablePacketIns(ctx context.Context, s *session) error {
	go s.deliverPacketIns(c.packetIn)
	for _, m := range asyncConfigMsgs(c.nextXIDs(2)) {
		if err := s.write(ctx, m); err != nil {
			s.close(ErrDisconnected)
			return fmt.Errorf("openflow: enable packet-ins: %w", err)
		}
	}
	return nil
}

// PacketInDrops is how many packet-ins the current connection dropped
// because the handler was behind.
func (c *Conn) PacketInDrops() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return 0
	}
	return c.sess.packetInDrops.Load()
}

// serve runs onConnect on s and then watches it until it fails or ctx
// ends. ok tells whether onConnect succeeded.
func (c *Conn) serve(ctx context.Context, s *session) (ok bool, err error) {
	c.setState(s, false, false)
	defer c.setState(nil, false, false)
	sctx, cancel := context.WithCancel(context.WithValue(ctx, sessionKey{}, s))
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-sctx.Done():
		}
	}()
	if c.onConnect != nil {
		if err := c.onConnect(sctx); err != nil {
			s.close(ErrDisconnected)
			return false, fmt.Errorf("openflow: on-connect callback: %w", err)
		}
	}
	c.setState(s, true, false)
	t := time.NewTicker(c.EchoInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.close(ErrDisconnected)
			return true, nil
		case <-s.done:
			return true, s.err
		case <-t.C:
			ectx, ecancel := context.WithTimeout(ctx, c.EchoInterval)
			_, err := s.request(ectx, simpleMsg(typeEchoRequest, c.nextXIDs(1), nil))
			ecancel()
			if err != nil && ctx.Err() == nil {
				s.close(fmt.Errorf("openflow: echo: %w", err))
			}
		}
	}
}

// session is one live connection.
type session struct {
	conn     net.Conn
	features Features

	wmu sync.Mutex // serializes writes of whole messages

	pmu     sync.Mutex
	pending map[uint32]*pending
	sinks   map[*errSink]struct{}

	// packetIns queues packet-ins for the handler (nil: none wanted).
	packetIns     chan PacketIn
	packetInDrops atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	err       error // why the session ended; set before done is closed
}

// pending is a request waiting for its reply (all parts of a multipart
// reply) or error.
type pending struct {
	done chan struct{}
	msgs [][]byte
	err  error
}

// errSink collects errors for a range of xids of messages that get no
// reply on success (bundle adds, flow mods followed by a barrier).
type errSink struct {
	lo, n uint32
	errs  []*Error
}

// dial connects, exchanges HELLOs, starts the reader and asks for the
// switch features.
// A packetInQueue above zero makes room for that many packet-ins.
func dial(ctx context.Context, path string, xid uint32, packetInQueue int) (*session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("openflow: dial %s: %w", path, err)
	}
	s := &session{conn: conn, pending: map[uint32]*pending{}, sinks: map[*errSink]struct{}{}, done: make(chan struct{})}
	if packetInQueue > 0 {
		s.packetIns = make(chan PacketIn, packetInQueue)
	}
	r := bufio.NewReaderSize(conn, 1<<16)
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(helloMsg(xid)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("openflow: send HELLO to %s: %w", path, err)
	}
	hello, err := readMsg(r)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("openflow: read HELLO from %s: %w", path, err)
	}
	if h := parseHeader(hello); h.typ != typeHello || !helloSupports(hello) {
		conn.Close()
		return nil, fmt.Errorf("openflow: %s does not speak OpenFlow 1.5 (got %s version %d)", path, typeName(h.typ), h.version)
	}
	_ = conn.SetDeadline(time.Time{})
	go s.readLoop(r)
	fctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	msgs, err := s.request(fctx, simpleMsg(typeFeaturesReq, xid+1, nil))
	if err == nil {
		s.features, err = parseFeatures(msgs[0])
	}
	if err != nil {
		s.close(ErrDisconnected)
		return nil, fmt.Errorf("openflow: features of %s: %w", path, err)
	}
	return s, nil
}

func readMsg(r *bufio.Reader) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(parseHeader(h[:]).length)
	if n < headerLen {
		return nil, fmt.Errorf("openflow: message length %d too short", n)
	}
	msg := make([]byte, n)
	copy(msg, h[:])
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func (s *session) readLoop(r *bufio.Reader) {
	for {
		msg, err := readMsg(r)
		if err != nil {
			s.close(fmt.Errorf("%w: read: %w", ErrDisconnected, err))
			return
		}
		s.dispatch(msg)
	}
}

// dispatch handles one message from the switch, in arrival order.
func (s *session) dispatch(msg []byte) {
	h := parseHeader(msg)
	switch h.typ {
	case typeEchoRequest:
		reply := simpleMsg(typeEchoReply, h.xid, msg[headerLen:])
		// Never write from the reader: a writer blocked on a full socket
		// would stop us from draining the switch's replies.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.write(ctx, reply)
		}()
		return
	case typeError:
		e := parseError(msg)
		s.pmu.Lock()
		defer s.pmu.Unlock()
		if p, ok := s.pending[h.xid]; ok {
			delete(s.pending, h.xid)
			p.err = e
			close(p.done)
			return
		}
		for k := range s.sinks {
			if h.xid-k.lo < k.n {
				k.errs = append(k.errs, e)
				return
			}
		}
		klog.ErrorS(e, "Unsolicited OpenFlow error")
		return
	case typePacketIn:
		s.queuePacketIn(msg)
		return
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	p, ok := s.pending[h.xid]
	if !ok {
		klog.V(4).InfoS("Ignoring unsolicited OpenFlow message", "type", typeName(h.typ), "xid", h.xid)
		return
	}
	p.msgs = append(p.msgs, msg)
	if h.typ == typeMultipartReply && multipartHasMore(msg) {
		return
	}
	delete(s.pending, h.xid)
	close(p.done)
}

// close ends the session with err, failing everything that waits on it.
func (s *session) close(err error) {
	s.closeOnce.Do(func() {
		s.err = err
		_ = s.conn.Close()
		s.pmu.Lock()
		for xid, p := range s.pending {
			p.err = err
			close(p.done)
			delete(s.pending, xid)
		}
		s.pmu.Unlock()
		close(s.done)
	})
}

// write sends complete messages.
func (s *session) write(ctx context.Context, b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return s.err
	default:
	}
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(b); err != nil {
		// A partial write leaves the stream unusable.
		s.close(fmt.Errorf("%w: write: %w", ErrDisconnected, err))
		return fmt.Errorf("openflow: write: %w", err)
	}
	return nil
}

// request sends msg and waits for the reply with the same xid (all parts
// of a multipart reply) or the error for it.
func (s *session) request(ctx context.Context, msg []byte) ([][]byte, error) {
	h := parseHeader(msg)
	p := &pending{done: make(chan struct{})}
	s.pmu.Lock()
	select {
	case <-s.done:
		s.pmu.Unlock()
		return nil, s.err
	default:
	}
	s.pending[h.xid] = p
	s.pmu.Unlock()
	if err := s.write(ctx, msg); err != nil {
		s.forget(h.xid)
		return nil, err
	}
	select {
	case <-p.done:
		return p.msgs, p.err
	case <-ctx.Done():
		s.forget(h.xid)
		return nil, fmt.Errorf("openflow: %s xid %d: %w", typeName(h.typ), h.xid, ctx.Err())
	}
}

func (s *session) forget(xid uint32) {
	s.pmu.Lock()
	delete(s.pending, xid)
	s.pmu.Unlock()
}

func (s *session) addSink(lo uint32, n int) *errSink {
	k := &errSink{lo: lo, n: uint32(n)}
	s.pmu.Lock()
	s.sinks[k] = struct{}{}
	s.pmu.Unlock()
	return k
}

// takeSink unregisters k and returns the errors it collected.
func (s *session) takeSink(k *errSink) []*Error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	delete(s.sinks, k)
	return k.errs
}

// sinkErrors returns a copy of the errors k collected so far.
func (s *session) sinkErrors(k *errSink) []*Error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return append([]*Error(nil), k.errs...)
}
