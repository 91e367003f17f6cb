// Package tunnelneigh keeps the userspace datapath's tunnel neighbors
// resolved. With ovsDatapathType netdev, OVS encapsulates tunnel packets
// itself and resolves the outer destination's MAC from its own neighbor
// cache, which it fills by snooping ARP on the uplink bridge; a packet
// to a node it has no entry for is dropped while OVS sends an ARP
// request. The first packet of the first connection to a node (a TCP SYN,
// retried only after a second) would be lost. The kernel datapath queues
// such packets in the kernel's neighbor table instead, so this is for
// netdev only.
//
// A Warmer resolves each peer node for OVS when it appears and then every
// interval (OVSNudge): it hands OVS the MAC the kernel knows for the peer
// (tnl/neigh/set), or makes the node's own stack send the peer a datagram,
// so that the kernel asks through the uplink bridge and OVS learns the
// answer.
package tunnelneigh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// DiscardPort is where nudges go (the discard service; nobody needs to
// listen, the ARP exchange is what matters).
const DiscardPort = 9

// Nudge sends something to ip from the node's own stack.
type Nudge func(ip netip.Addr) error

// UDPNudge sends one empty UDP datagram to ip's discard port.
func UDPNudge(ip netip.Addr) error {
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, DiscardPort)))
	if err != nil {
		return fmt.Errorf("nudging tunnel peer %s: %w", ip, err)
	}
	defer conn.Close()
	if _, err := conn.Write(nil); err != nil {
		return fmt.Errorf("nudging tunnel peer %s: %w", ip, err)
	}
	return nil
}

// Warmer nudges the tunnel peers. Safe for concurrent use.
type Warmer struct {
	nudge Nudge

	mu    sync.Mutex
	peers []netip.Addr
}

// New returns a Warmer that nudges with nudge.
func New(nudge Nudge) *Warmer { return &Warmer{nudge: nudge} }

// SetPeers sets the peer nodes' IPs and nudges those that are new.
func (w *Warmer) SetPeers(peers []netip.Addr) {
	w.mu.Lock()
	var fresh []netip.Addr
	for _, p := range peers {
		if !slices.Contains(w.peers, p) {
			fresh = append(fresh, p)
		}
	}
	w.peers = slices.Clone(peers)
	w.mu.Unlock()
	w.nudgeAll(fresh)
}

func (w *Warmer) nudgeAll(peers []netip.Addr) {
	for _, p := range peers {
		if err := w.nudge(p); err != nil {
			klog.V(2).InfoS("Could not nudge a tunnel peer", "peer", p, "err", err)
		}
	}
}

// Run nudges every peer every interval until ctx ends: OVS forgets a
// neighbor some minutes after it last saw it.
func (w *Warmer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		peers := slices.Clone(w.peers)
		w.mu.Unlock()
		w.nudgeAll(peers)
	}
}
