// Package underlay builds the lab's physical network: one namespace holding a
// Linux bridge, and a veth from that bridge into each host namespace (the
// control plane, every node, the external host), where it appears as eth0
// with the host's underlay address.
package underlay

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

// BridgeName is the underlay switch inside the underlay namespace.
const BridgeName = "br-underlay"

// HostIfName is the name of the underlay interface inside each host.
const HostIfName = "eth0"

// Host is one machine plugged into the underlay.
type Host struct {
	Netns string       // the host's namespace, created by the caller
	Port  string       // short name of its bridge port, at most 15 characters
	Addr  netip.Prefix // address and subnet on eth0
	MTU   int          // 0 means 1500
}

// CreateSwitch creates the underlay namespace and its bridge.
func CreateSwitch(ns string) error {
	if err := netnsutil.Create(ns); err != nil {
		return err
	}
	h, err := handleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("create underlay bridge: %w", err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("set underlay bridge up: %w", err)
	}
	return nil
}

// Attach plugs host into the underlay switch living in switchNs.
func Attach(switchNs string, host Host) error {
	if len(host.Port) > 15 || host.Port == "" {
		return fmt.Errorf("underlay port name %q: must be 1-15 characters", host.Port)
	}
	sw, err := handleAt(switchNs)
	if err != nil {
		return err
	}
	defer sw.Close()
	hostNs, err := netns.GetFromPath(netnsutil.Path(host.Netns))
	if err != nil {
		return fmt.Errorf("open host namespace %q: %w", host.Netns, err)
	}
	defer hostNs.Close()

	mtu := host.MTU
	if mtu == 0 {
		mtu = 1500
	}
	peerTmp := "h-" + host.Port
	if len(peerTmp) > 15 {
		peerTmp = peerTmp[:15]
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: host.Port, MTU: mtu},
		PeerName:  peerTmp,
	}
	if err := sw.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s for %s: %w", host.Port, host.Netns, err)
	}
	br, err := sw.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("find underlay bridge: %w", err)
	}
	port, err := sw.LinkByName(host.Port)
	if err != nil {
		return fmt.Errorf("find veth %s: %w", host.Port, err)
	}
	if err := sw.LinkSetMaster(port, br); err != nil {
		return fmt.Errorf("attach %s to the underlay bridge: %w", host.Port, err)
	}
	if err := sw.LinkSetUp(port); err != nil {
		return fmt.Errorf("set %s up: %w", host.Port, err)
	}
	peer, err := sw.LinkByName(peerTmp)
	if err != nil {
		return fmt.Errorf("find veth peer %s: %w", peerTmp, err)
	}
	if err := sw.LinkSetNsFd(peer, int(hostNs)); err != nil {
		return fmt.Errorf("move %s into %s: %w", peerTmp, host.Netns, err)
	}

	hh, err := netlink.NewHandleAt(hostNs)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", host.Netns, err)
	}
	defer hh.Close()
	in, err := hh.LinkByName(peerTmp)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", peerTmp, host.Netns, err)
	}
	if err := hh.LinkSetName(in, HostIfName); err != nil {
		return fmt.Errorf("rename %s to %s in %s: %w", peerTmp, HostIfName, host.Netns, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: host.Addr.Addr().AsSlice(), Mask: net.CIDRMask(host.Addr.Bits(), 32)}}
	if err := hh.AddrAdd(in, addr); err != nil {
		return fmt.Errorf("add %s to %s in %s: %w", host.Addr, HostIfName, host.Netns, err)
	}
	if err := hh.LinkSetUp(in); err != nil {
		return fmt.Errorf("set %s up in %s: %w", HostIfName, host.Netns, err)
	}
	return nil
}

// EnableForwarding turns on IPv4 forwarding inside the namespace, as a node
// that routes pod traffic needs.
func EnableForwarding(ns string) error {
	return netnsutil.Do(ns, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enable ip_forward in %s: %w", ns, err)
		}
		return nil
	})
}

func handleAt(ns string) (*netlink.Handle, error) {
	h, err := netns.GetFromPath(netnsutil.Path(ns))
	if err != nil {
		return nil, fmt.Errorf("open namespace %q: %w", ns, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink in %q: %w", ns, err)
	}
	return nh, nil
}
