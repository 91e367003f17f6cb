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

// NodePort is one node port the node's stack hands to the bridge.
type NodePort struct {
	// Protocol is tcp, udp or sctp.
	Protocol string
	Port     uint16
	// Local: externalTrafficPolicy Local, the client's address is kept
	// (except for pods of this node, which are masqueraded so that the
	// reply comes back through the node's stack).
	Local bool
}

func (p NodePort) element() []string { return []string{p.Protocol, fmt.Sprint(p.Port)} }

// NodePortMasqueradeMark marks the node-port packets to masquerade as
// they leave through the gateway.
const NodePortMasqueradeMark = 0x00040000

// Names of the node-port objects in the agent's nftables table.
const (
	nodePortsClusterSet = "nodeports-cluster"
	nodePortsLocalSet   = "nodeports-local"
	nodePortPrerouting  = "nodeport-prerouting"
	nodePortOutput      = "nodeport-output"
	nodePortPostrouting = "nodeport-postrouting"
)

// EnsureNodePortRoute makes the node's stack send packets for vip out of
// the gateway to mac: a link route and a permanent neighbour entry (no
// ARP: the address exists on no interface).
func (n *Netlink) EnsureNodePortRoute(vip netip.Addr, mac net.HardwareAddr) error {
	link, err := netlink.LinkByName(n.gateway)
	if err != nil {
		return fmt.Errorf("find gateway %s: %w", n.gateway, err)
	}
	if err := n.routeToMAC(link, vip, mac); err != nil {
		return err
	}
	n.nodePortVIP = vip
	return nil
}

// routeToMAC routes ip into the gateway with a permanent neighbour entry
// to mac; nodePortCleanup removes both.
func (n *Netlink) routeToMAC(link netlink.Link, ip netip.Addr, mac net.HardwareAddr) error {
	neigh := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: ip.AsSlice(), HardwareAddr: mac}
	if err := netlink.NeighSet(neigh); err != nil {
		return fmt.Errorf("neighbour %s lladdr %s dev %s: %w", ip, mac, n.gateway, err)
	}
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s dev %s: %w", ip, n.gateway, err)
	}
	return nil
}

// SyncNodePorts makes the node-port rules exactly ports, in one nftables
// transaction: packets for a local address on one of the ports are
// destination-NATed to vip (the port stays), which routes them into the
// bridge; those of cluster-policy ports, and those from pods, are marked
// for masquerading as they leave through the gateway.
func (n *Netlink) SyncNodePorts(ctx context.Context, vip netip.Addr, ports []NodePort) error {
	tx := n.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("antrea-agent: pod network")})
	sets := map[bool]string{false: nodePortsClusterSet, true: nodePortsLocalSet}
	for _, name := range sets {
		set := &knftables.Set{Name: name, Type: "inet_proto . inet_service"}
		tx.Add(set)
		tx.Flush(set)
	}
	for _, p := range ports {
		tx.Add(&knftables.Element{Set: sets[p.Local], Key: p.element()})
	}
	mark := fmt.Sprintf("meta mark set meta mark | %#08x", NodePortMasqueradeMark)
	dnat := "dnat ip to " + vip.String()
	isNodePort := func(set string) string {
		return knftables.Concat("fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport", "@"+set)
	}
	for _, c := range []struct {
		name     string
		hook     knftables.BaseChainHook
		priority knftables.BaseChainPriority
		rules    []string
	}{
		{nodePortPrerouting, knftables.PreroutingHook, knftables.DNATPriority, []string{
			knftables.Concat(isNodePort(nodePortsClusterSet), mark, dnat),
			knftables.Concat(isNodePort(nodePortsLocalSet), "iifname", n.gateway, mark, dnat),
			knftables.Concat(isNodePort(nodePortsLocalSet), dnat),
		}},
		// The node's own connections to its node ports.
		{nodePortOutput, knftables.OutputHook, "-100", []string{
			knftables.Concat(isNodePort(nodePortsClusterSet), mark, dnat),
			knftables.Concat(isNodePort(nodePortsLocalSet), dnat),
		}},
		{nodePortPostrouting, knftables.PostroutingHook, knftables.SNATPriority, []string{
			knftables.Concat("oifname", n.gateway, fmt.Sprintf("meta mark & %#08x != 0", NodePortMasqueradeMark), "masquerade"),
		}},
	} {
		chain := &knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.NATType),
			Hook: knftables.PtrTo(c.hook), Priority: knftables.PtrTo(c.priority)}
		tx.Add(chain)
		tx.Flush(chain)
		for _, r := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
		}
	}
	if err := n.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables node-port rules (%d ports): %w", len(ports), err)
	}
	return nil
}

// nodePortCleanup removes the route and neighbour of vip (routeToMAC).
func (n *Netlink) nodePortCleanup(vip netip.Addr) error {
	link, err := netlink.LinkByName(n.gateway)
	if err != nil {
		return nil // no gateway, nothing to remove
	}
	var errs []error
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		errs = append(errs, fmt.Errorf("remove route %s: %w", vip, err))
	}
	neigh := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_INET, IP: vip.AsSlice()}
	if err := netlink.NeighDel(neigh); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("remove neighbour %s: %w", vip, err))
	}
	return errors.Join(errs...)
}

// EnsureServiceRoutes implements Client. The node's connections to
// Services leave by the gateway (from the gateway's address) towards
// nextHop's MAC, the global virtual MAC, which the bridge rewrites to the
// gateway's as it does for node ports. Those the bridge sends back out of
// the gateway towards endpoints outside the pod network carry snatIP as
// their source; the replies, un-masqueraded by the node, come back to the
// bridge through the route and neighbour of snatIP.
func (n *Netlink) EnsureServiceRoutes(serviceCIDR netip.Prefix, nextHop, snatIP netip.Addr, mac net.HardwareAddr) error {
	link, err := netlink.LinkByName(n.gateway)
	if err != nil {
		return fmt.Errorf("find gateway %s: %w", n.gateway, err)
	}
	if err := n.routeToMAC(link, snatIP, mac); err != nil {
		return err
	}
	svc := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: nextHop.AsSlice(), Flags: int(netlink.FLAG_ONLINK),
		Dst: &net.IPNet{IP: serviceCIDR.Addr().AsSlice(), Mask: net.CIDRMask(serviceCIDR.Bits(), 32)}}
	if err := netlink.RouteReplace(svc); err != nil {
		return fmt.Errorf("route %s via %s dev %s: %w", serviceCIDR, nextHop, n.gateway, err)
	}
	n.serviceCIDR, n.serviceNextHop, n.serviceSNAT = serviceCIDR, nextHop, snatIP
	return nil
}

// serviceRoutesCleanup removes what EnsureServiceRoutes made.
func (n *Netlink) serviceRoutesCleanup() error {
	link, err := netlink.LinkByName(n.gateway)
	if err != nil {
		return nil // no gateway, nothing to remove
	}
	var errs []error
	svc := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.serviceNextHop.AsSlice(),
		Dst: &net.IPNet{IP: n.serviceCIDR.Addr().AsSlice(), Mask: net.CIDRMask(n.serviceCIDR.Bits(), 32)}}
	if err := netlink.RouteDel(svc); err != nil && !errors.Is(err, unix.ESRCH) {
		errs = append(errs, fmt.Errorf("remove route %s: %w", n.serviceCIDR, err))
	}
	if err := n.nodePortCleanup(n.serviceSNAT); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
