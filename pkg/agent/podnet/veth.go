// Package podnet plumbs a pod into the node: the veth pair between the
// pod's network namespace and the node, the pod side's address and routes,
// and the pod's address from host-local IPAM. It knows nothing about OVS.
package podnet

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"unsafe"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostVethName names the node side of a pod's veth as the seed documents
// show it (nginx6db-fd32cf): up to 8 letters and digits of the pod name, a
// dash, and 6 hex digits of a hash of namespace/name/container. It fits the
// 15-character limit of interface names and is stable for a container.
func HostVethName(podNamespace, podName, containerID string) string {
	var prefix strings.Builder
	for _, r := range podName {
		if prefix.Len() == 8 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			prefix.WriteRune(r)
		}
	}
	sum := sha1.Sum([]byte(podNamespace + "/" + podName + "/" + containerID))
	return prefix.String() + "-" + hex.EncodeToString(sum[:])[:6]
}

// Veth is a created veth pair.
type Veth struct {
	HostName string
	HostMAC  net.HardwareAddr
	PodMAC   net.HardwareAddr
	PodIndex int
}

// SetupVeth creates the pair with ifName inside the namespace at netnsPath
// and hostName in the caller's namespace, both up with mtu. With
// disableTxChecksum the pod side stops offloading TX checksums, which the
// userspace datapath needs (else TCP SYNs are invalid in conntrack). The
// host side answers no ARP: OVS answers for it.
func SetupVeth(netnsPath, ifName, hostName string, mtu int, disableTxChecksum bool) (Veth, error) {
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return Veth{}, fmt.Errorf("open pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	var v Veth
	err = podNS.Do(func(hostNS ns.NetNS) error {
		hostIf, podIf, err := ip.SetupVethWithName(ifName, hostName, mtu, "", hostNS)
		if err != nil {
			return err
		}
		v = Veth{HostName: hostIf.Name, HostMAC: hostIf.HardwareAddr, PodMAC: podIf.HardwareAddr, PodIndex: podIf.Index}
		if disableTxChecksum {
			if err := setTxChecksum(ifName, false); err != nil {
				return fmt.Errorf("disable TX checksum offload on %s: %w", ifName, err)
			}
		}
		return nil
	})
	if err != nil {
		return Veth{}, fmt.Errorf("create veth %s/%s: %w", hostName, ifName, err)
	}
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return Veth{}, fmt.Errorf("find host veth %s: %w", hostName, err)
	}
	if err := netlink.LinkSetARPOff(host); err != nil {
		return Veth{}, fmt.Errorf("disable ARP on %s: %w", hostName, err)
	}
	return v, nil
}

// ConfigureIP gives the pod side its addresses and routes from res.
func ConfigureIP(netnsPath, ifName string, res *current.Result) error {
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return fmt.Errorf("open pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	return podNS.Do(func(ns.NetNS) error {
		if err := ipam.ConfigureIface(ifName, res); err != nil {
			return fmt.Errorf("configure %s: %w", ifName, err)
		}
		return nil
	})
}

// DeleteVeth removes the pair by its host side; a missing link is fine.
func DeleteVeth(hostName string) error {
	if err := ip.DelLinkByName(hostName); err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
		return fmt.Errorf("delete veth %s: %w", hostName, err)
	}
	return nil
}

// CheckVeth verifies that the pod side exists in the namespace with the
// expected MAC and carries the addresses of res.
func CheckVeth(netnsPath, ifName string, mac net.HardwareAddr, res *current.Result) error {
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return fmt.Errorf("open pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	return podNS.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("pod interface %s: %w", ifName, err)
		}
		if mac != nil && link.Attrs().HardwareAddr.String() != mac.String() {
			return fmt.Errorf("pod interface %s has MAC %s, want %s", ifName, link.Attrs().HardwareAddr, mac)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses of %s: %w", ifName, err)
		}
		for _, want := range res.IPs {
			found := false
			for _, a := range addrs {
				if a.IPNet.String() == want.Address.String() {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("pod interface %s lacks address %s", ifName, want.Address.String())
			}
		}
		return nil
	})
}

// NetnsExists reports whether the namespace path still exists.
func NetnsExists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// setTxChecksum is `ethtool -K <if> tx on|off` through the ethtool ioctl.
func setTxChecksum(ifName string, on bool) error {
	const ethtoolSTXCSUM = 0x17
	type ethtoolValue struct {
		cmd  uint32
		data uint32
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	val := ethtoolValue{cmd: ethtoolSTXCSUM}
	if on {
		val.data = 1
	}
	// struct ifreq: the name, then a pointer to the ethtool command. A
	// typed pointer keeps val alive and correct for the garbage collector.
	ifr := struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}{data: unsafe.Pointer(&val)}
	copy(ifr.name[:unix.IFNAMSIZ-1], ifName)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("ioctl SIOCETHTOOL on %s: %w", ifName, errno)
	}
	return nil
}
