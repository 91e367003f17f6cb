package tunnelneigh

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type recorder struct {
	mu  sync.Mutex
	got []netip.Addr
}

func (r *recorder) nudge(ip netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ip)
	return nil
}

func (r *recorder) take() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func TestWarmerNudgesNewPeersThenAllPeriodically(t *testing.T) {
	a, b, c := netip.MustParseAddr("172.18.0.11"), netip.MustParseAddr("172.18.0.12"), netip.MustParseAddr("172.18.0.13")
	r := &recorder{}
	w := New(r.nudge)
	w.SetPeers([]netip.Addr{a, b})
	assert.Equal(t, []netip.Addr{a, b}, r.take())
	w.SetPeers([]netip.Addr{a, b, c})
	assert.Equal(t, []netip.Addr{c}, r.take(), "only the new peer")
	w.SetPeers([]netip.Addr{c})
	assert.Empty(t, r.take(), "a peer leaving is nothing to nudge")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, 10*time.Millisecond); close(done) }()
	require.Eventually(t, func() bool { return len(r.take()) > 0 }, time.Second, 5*time.Millisecond)
	cancel()
	<-done
}

func TestUDPNudgeSendsADatagram(t *testing.T) {
	// A listener on loopback stands for the peer's discard port: the
	// nudge reaches it.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: DiscardPort})
	if err != nil {
		t.Fatalf("the test needs UDP port %d on loopback (root): %v", DiscardPort, err)
	}
	defer pc.Close()
	require.NoError(t, UDPNudge(netip.MustParseAddr("127.0.0.1")))
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, from, err := pc.ReadFromUDP(make([]byte, 16))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", from.IP.String())
}
