// Package route configures the node's own network stack for the pod
// network: the gateway interface's address, a host route to each other
// node's pod CIDR through the tunnel (via that node's gateway address,
// which the ARP responder answers), and masquerading of pod traffic that
// leaves the cluster, in nftables.
package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// NFTTable is the nftables table (family ip) the agent owns.
const NFTTable = "antrea"

// Client is what the agent needs from the node's network stack.
type Client interface {
	// ConfigureGateway gives the gateway interface its address and MTU,
	// sets it up, and returns its MAC.
	ConfigureGateway(name string, addr netip.Prefix, mtu int) (net.HardwareAddr, error)
	// EnsureRoutes makes the host routes through the gateway exactly
	// routes: remote pod CIDR -> remote gateway IP.
	EnsureRoutes(routes map[netip.Prefix]netip.Addr) error
	// EnsureMasquerade masquerades traffic from sources (the pod CIDR,
	// the services' source NAT address) that does not leave through the
	// gateway.
	EnsureMasquerade(ctx context.Context, sources []netip.Prefix) error
	// EnsureNodePortRoute routes the node-port virtual IP into the
	// gateway, to mac.
	EnsureNodePortRoute(vip netip.Addr, mac net.HardwareAddr) error
	// EnsureServiceRoutes routes the node's own connections to Services
	// into the gateway: serviceCIDR through nextHop (an address routed
	// to the gateway with a permanent neighbour), and snatIP, the source
	// the bridge gives them towards endpoints outside the pod network, to
	// mac.
	EnsureServiceRoutes(serviceCIDR netip.Prefix, nextHop, snatIP netip.Addr, mac net.HardwareAddr) error
	// SyncNodePorts hands the node ports to vip.
	SyncNodePorts(ctx context.Context, vip netip.Addr, ports []NodePort) error
	// Cleanup removes the routes and the nftables table.
	Cleanup(ctx context.Context) error
}

// Netlink implements Client on the running kernel.
type Netlink struct {
	gateway string
	nft     knftables.Interface
	// nodePortVIP is set once EnsureNodePortRoute ran, for Cleanup.
	nodePortVIP netip.Addr
	// serviceCIDR, serviceNextHop and serviceSNAT are set once
	// EnsureServiceRoutes ran, for Cleanup.
	serviceCIDR    netip.Prefix
	serviceNextHop netip.Addr
	serviceSNAT    netip.Addr
}

// New returns a Client for the gateway interface gateway.
func New(gateway string) (*Netlink, error) {
	nft, err := knftables.New(knftables.IPv4Family, NFTTable)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &Netlink{gateway: gateway, nft: nft}, nil
}

// ConfigureGateway implements Client.
func (n *Netlink) ConfigureGateway(name string, addr netip.Prefix, mtu int) (net.HardwareAddr, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find gateway %s: %w", name, err)
	}
	if mtu > 0 && link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("set MTU %d on %s: %w", mtu, name, err)
		}
	}
	want := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == want.IPNet.String() {
			found = true
			continue
		}
		// A stale address (the node's podCIDR changed): remove it.
		if err := netlink.AddrDel(link, &a); err != nil {
			return nil, fmt.Errorf("remove stale address %s from %s: %w", a.IPNet, name, err)
		}
	}
	if !found {
		if err := netlink.AddrAdd(link, want); err != nil {
			return nil, fmt.Errorf("add %s to %s: %w", addr, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	return link.Attrs().HardwareAddr, nil
}

// EnsureRoutes implements Client. Routes through the gateway that are not
// wanted (nodes that left) are removed; the gateway's own connected route
// and the Services' route are left alone.
func (n *Netlink) EnsureRoutes(routes map[netip.Prefix]netip.Addr) error {
	link, err := netlink.LinkByName(n.gateway)
	if err != nil {
		return fmt.Errorf("find gateway %s: %w", n.gateway, err)
	}
	existing, err := netlink.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", n.gateway, err)
	}
	var errs []error
	for _, r := range existing {
		if r.Gw == nil || r.Dst == nil {
			continue // connected route of the gateway's own subnet
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		p := netip.PrefixFrom(dst.Unmap(), ones)
		gw, _ := netip.AddrFromSlice(r.Gw)
		if want, ok := routes[p]; ok && want == gw.Unmap() {
			continue
		}
		if p == n.serviceCIDR && gw.Unmap() == n.serviceNextHop {
			continue // the Services' route (EnsureServiceRoutes)
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s via %s: %w", p, gw, err))
		}
	}
	for dst, gw := range routes {
		r := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)},
			Gw:        gw.AsSlice(),
			Flags:     int(netlink.FLAG_ONLINK),
		}
		if err := netlink.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s dev %s: %w", dst, gw, n.gateway, err))
		}
	}
	return errors.Join(errs...)
}

// EnsureMasquerade implements Client. Its chain (postrouting) is flushed
// and rewritten in one nftables transaction; the node-port chains of the
// same table are left alone.
func (n *Netlink) EnsureMasquerade(ctx context.Context, sources []netip.Prefix) error {
	tx := n.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("antrea-agent: pod network")})
	chain := &knftables.Chain{
		Name:     "postrouting",
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	}
	tx.Add(chain)
	tx.Flush(chain)
	for _, src := range sources {
		tx.Add(&knftables.Rule{
			Chain:   "postrouting",
			Rule:    knftables.Concat("ip saddr", src.String(), "oifname !=", n.gateway, "masquerade"),
			Comment: knftables.PtrTo("traffic from " + src.String() + " leaving the node"),
		})
	}
	if err := n.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables masquerade rule: %w", err)
	}
	return nil
}

// Cleanup implements Client.
func (n *Netlink) Cleanup(ctx context.Context) error {
	var errs []error
	if err := n.EnsureRoutes(nil); err != nil {
		errs = append(errs, err)
	}
	if n.serviceCIDR.IsValid() {
		if err := n.serviceRoutesCleanup(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.nodePortVIP.IsValid() {
		if err := n.nodePortCleanup(n.nodePortVIP); err != nil {
			errs = append(errs, err)
		}
	}
	tx := n.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := n.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete nftables table %s: %w", NFTTable, err))
	}
	return errors.Join(errs...)
}
