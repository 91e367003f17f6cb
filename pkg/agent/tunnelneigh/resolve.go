package tunnelneigh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
)

// KernelNeighbor returns the interface the node routes ip through and the
// MAC the kernel knows for ip there, nil when it knows none.
func KernelNeighbor(ip netip.Addr) (string, net.HardwareAddr, error) {
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 {
		return "", nil, fmt.Errorf("route to %s: %w", ip, errors.Join(err, errors.New("no route")))
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", nil, fmt.Errorf("route to %s: interface %d: %w", ip, routes[0].LinkIndex, err)
	}
	name := link.Attrs().Name
	if routes[0].Gw != nil {
		return name, nil, nil // routed: not a neighbor of the uplink
	}
	neighs, err := netlink.NeighList(routes[0].LinkIndex, netlink.FAMILY_V4)
	if err != nil {
		return name, nil, fmt.Errorf("neighbors of %s: %w", name, err)
	}
	for _, n := range neighs {
		if n.IP.Equal(ip.AsSlice()) && len(n.HardwareAddr) == 6 &&
			n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT) != 0 {
			return name, n.HardwareAddr, nil
		}
	}
	return name, nil, nil
}

// OVSNudge resolves ip for ovs-vswitchd (control socket vswitchdSocket):
// when the kernel knows ip's MAC on the uplink, it is given to OVS's
// neighbor cache (tnl/neigh/set on the bridge of that name); otherwise a
// datagram makes the kernel ask, and OVS learns the answer as it passes
// through the bridge.
func OVSNudge(vswitchdSocket func() (string, error)) Nudge {
	return func(ip netip.Addr) error {
		bridge, mac, err := KernelNeighbor(ip)
		if err != nil || mac == nil {
			return UDPNudge(ip)
		}
		sock, err := vswitchdSocket()
		if err != nil {
			return fmt.Errorf("setting tunnel neighbor %s: %w", ip, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := unixctl.Call(ctx, sock, "tnl/neigh/set", bridge, ip.String(), mac.String()); err != nil {
			// Not an OVS bridge, say: let the kernel's ARP pass by.
			return errors.Join(err, UDPNudge(ip))
		}
		return nil
	}
}
