package openflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSwitch accepts connections on a unix socket, does the handshake and
// hands each further message to handle, which may write replies.
type fakeSwitch struct {
	ln     net.Listener
	conns  chan net.Conn
	handle func(w net.Conn, msg []byte)
}

func newFakeSwitch(t *testing.T, handle func(w net.Conn, msg []byte)) (*fakeSwitch, string) {
	path := filepath.Join(t.TempDir(), "br.mgmt")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	s := &fakeSwitch{ln: ln, conns: make(chan net.Conn, 10), handle: handle}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
			go s.serve(c)
		}
	}()
	return s, path
}

func (s *fakeSwitch) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		msg, err := readMsg(r)
		if err != nil {
			return
		}
		hd := parseHeader(msg)
		switch hd.typ {
		case typeHello:
			_, _ = c.Write(helloMsg(hd.xid))
		case typeFeaturesReq:
			body := make([]byte, 24)
			binary.BigEndian.PutUint64(body, 0xabc)
			body[12] = 254
			_, _ = c.Write(simpleMsg(typeFeaturesReply, hd.xid, body))
		default:
			s.handle(c, msg)
		}
	}
}

func runConn(t *testing.T, path string, onConnect func(ctx context.Context, c *Conn) error) *Conn {
	c := NewConn(path, nil)
	if onConnect != nil {
		c.onConnect = func(ctx context.Context) error { return onConnect(ctx, c) }
	}
	c.MinBackoff, c.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(t, c.Run(ctx))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		assert.False(t, c.Connected())
	})
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	require.NoError(t, c.WaitConnected(wctx))
	return c
}

func flowDescPart(xid uint32, more bool, tables ...uint8) []byte {
	body := []byte{0, 1, 0, 0, 0, 0, 0, 0}
	if more {
		body[3] = 1
	}
	for _, tbl := range tables {
		d := make([]byte, 24)
		d[4] = tbl
		d, _ = appendMatch(d, []MatchField{MatchInPort(uint32(tbl))})
		d = append(d, 0, 0, 0, 4, 0, 0, 0, 0) // empty ofp_stats
		binary.BigEndian.PutUint16(d, uint16(len(d)))
		body = append(body, d...)
	}
	return simpleMsg(typeMultipartReply, xid, body)
}

func TestConnRequests(t *testing.T) {
	var echoed atomic.Uint32
	_, path := newFakeSwitch(t, func(w net.Conn, msg []byte) {
		hd := parseHeader(msg)
		switch hd.typ {
		case typeMultipartReq:
			// Ask for an echo first: the client must answer it while
			// waiting, then get a two-part reply.
			_, _ = w.Write(simpleMsg(typeEchoRequest, 777, []byte("hi")))
			_, _ = w.Write(append(flowDescPart(hd.xid, true, 1, 2), flowDescPart(hd.xid, false, 3)...))
		case typeEchoReply:
			if hd.xid == 777 && string(msg[headerLen:]) == "hi" {
				echoed.Add(1)
			}
		case typeFlowMod:
			// Refuse every flow mod.
			e := binary.BigEndian.AppendUint16(nil, 5)
			e = binary.BigEndian.AppendUint16(e, 6)
			_, _ = w.Write(simpleMsg(typeError, hd.xid, append(e, msg[:headerLen]...)))
		case typeBarrierReq:
			_, _ = w.Write(simpleMsg(typeBarrierReply, hd.xid, nil))
		}
		// Anything else (e.g. bundle control) is never answered.
	})
	c := runConn(t, path, nil)
	ctx := context.Background()
	feats, err := c.Features(ctx)
	require.NoError(t, err)
	assert.Equal(t, Features{DatapathID: 0xabc, NTables: 254}, feats)

	stats, err := c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	require.Len(t, stats, 3)
	for i, fs := range stats {
		assert.Equal(t, uint8(i+1), fs.Table, "replies decoded in order")
	}
	assert.Eventually(t, func() bool { return echoed.Load() == 1 }, 2*time.Second, 5*time.Millisecond)

	err = c.DeleteByCookie(ctx, 1, 1)
	var ofErr *Error
	require.ErrorAs(t, err, &ofErr)
	assert.Equal(t, "FLOW_MOD_FAILED/BAD_COMMAND", ofErr.Name())
	assert.Equal(t, typeFlowMod, ofErr.FailedType)

	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = c.Bundle(tctx, []Flow{{Table: 1}}, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, c.Connected(), "a timed-out request does not break the connection")

	_, err = c.DumpFlows(ctx, 300)
	assert.Error(t, err)
}

func TestConnReconnect(t *testing.T) {
	sw, path := newFakeSwitch(t, func(w net.Conn, msg []byte) {
		if hd := parseHeader(msg); hd.typ == typeBarrierReq {
			_, _ = w.Write(simpleMsg(typeBarrierReply, hd.xid, nil))
		}
	})
	var connects atomic.Int32
	c := runConn(t, path, func(ctx context.Context, c *Conn) error {
		connects.Add(1)
		// Requests with the callback's ctx go through before the
		// connection is declared ready.
		assert.False(t, c.Connected())
		s, err := c.session(ctx)
		if err != nil {
			return err
		}
		return s.barrier(ctx, c.nextXIDs(1))
	})
	assert.Equal(t, int32(1), connects.Load())
	first := <-sw.conns
	first.Close()
	require.Eventually(t, func() bool { return connects.Load() == 2 && c.Connected() }, 5*time.Second, 5*time.Millisecond)
}

func TestConnWaitsForConnection(t *testing.T) {
	c := NewConn(filepath.Join(t.TempDir(), "missing.mgmt"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go func() { _ = c.Run(ctx) }()
	_, err := c.DumpFlows(ctx, 0)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, c.Connected())
}
