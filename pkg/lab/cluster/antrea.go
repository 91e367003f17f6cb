package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/ovsnode"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
	"github.com/ovs-cni/antrea/pkg/lab/underlay"
)

// antreaBinaries are what --cni antrea needs in bin/.
var antreaBinaries = []string{"antrea-agent", "antrea-controller", "antrea-cni", "antrea-ovs", "cni/host-local"}

// UplinkBridge is the OVS bridge that holds a node's underlay NIC when the
// datapath is userspace: OVS's userspace tunnels route through it.
const UplinkBridge = "br-phy"

// prepareUplink moves the node's underlay address from eth0 onto an OVS
// netdev bridge br-phy that has eth0 as a port, as OVS's userspace tunnels
// need (a plain kernel underlay fails with "native tunnel routing failed").
func prepareUplink(lab layout.Lab, node string, addr netip.Prefix) error {
	inst := ovsnode.Instance{Netns: lab.NodeNetns(node), Dir: lab.OVSDir(node)}
	steps := [][]string{
		{"ovs-vsctl", "--db=unix:" + inst.DBSocket(), "--may-exist", "add-br", UplinkBridge,
			"--", "set", "bridge", UplinkBridge, "datapath_type=netdev", "other_config:hwaddr=" + macOf(lab, node),
			"--", "--may-exist", "add-port", UplinkBridge, underlay.HostIfName},
		{"ip", "addr", "flush", "dev", underlay.HostIfName},
		{"ip", "addr", "add", addr.String(), "dev", UplinkBridge},
		{"ip", "link", "set", UplinkBridge, "up"},
		{"ethtool", "-K", underlay.HostIfName, "tx", "off"},
	}
	for _, s := range steps {
		cmd := exec.Command("ip", append([]string{"netns", "exec", lab.NodeNetns(node)}, s...)...)
		cmd.Env = append(os.Environ(), inst.Env()...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("node %s uplink: %s: %w: %s", node, strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	// The userspace datapath reads eth0 frame by frame and drops what is
	// larger than the MTU ("Dropped packet: Too big" in its log): the
	// underlay's port towards the node segments TCP itself (the API
	// server's answers, the external host's) rather than hand it
	// segmentation-offload frames.
	port := underlayPort(node)
	if out, err := exec.Command("ip", "netns", "exec", lab.UnderlayNetns(), "ethtool", "-K", port, "tso", "off", "gso", "off").CombinedOutput(); err != nil {
		return fmt.Errorf("node %s uplink: ethtool -K %s tso off gso off: %w: %s", node, port, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// macOf gives br-phy the MAC of eth0, so the node keeps its L2 identity.
func macOf(lab layout.Lab, node string) string {
	out, err := exec.Command("ip", "netns", "exec", lab.NodeNetns(node), "cat", "/sys/class/net/"+underlay.HostIfName+"/address").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// AgentAPISocket is where a node's agent serves its local API, as the
// machine sees it (the manifest's apiSocket, in the node's own paths).
func AgentAPISocket(lab layout.Lab, node string) string {
	return lab.NodePath(node, "/var/run/antrea/agent.sock")
}

// primeNeighbors makes every node resolve every other node's underlay MAC.
// OVS's userspace tunnels drop the first packet to a peer they have not
// resolved yet; resolving at start keeps that out of the first pod
// connections.
func primeNeighbors(lab layout.Lab, nodes []string) {
	var wg sync.WaitGroup
	for _, from := range nodes {
		for j := range nodes {
			if nodes[j] == from {
				continue
			}
			wg.Add(1)
			go func(from string, to netip.Addr) {
				defer wg.Done()
				_ = exec.Command("ip", "netns", "exec", lab.NodeNetns(from), "ping", "-c1", "-W1", to.String()).Run()
			}(from, layout.NodeIP(j+1))
		}
	}
	wg.Wait()
}

// RestartVswitchd kills a node's ovs-vswitchd and starts it again on the
// same database, as a crash and a restart by the init system would. With
// --cni antrea it then gives br-phy back the node's address (its tap device
// is re-created with the daemon), as the node's network configuration
// would; the agent restores its own gateway when it reconnects.
func RestartVswitchd(lab layout.Lab, node string) error {
	st, err := LoadState(lab)
	if err != nil {
		return err
	}
	idx := -1
	for i, n := range st.Nodes {
		if n == node {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("unknown node %q: the lab has %s", node, strings.Join(st.Nodes, ", "))
	}
	recs, err := proc.Load(lab.PIDDir())
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Name == node+"-ovs-vswitchd" {
			if err := proc.Kill(r.PID, 0); err != nil {
				return fmt.Errorf("kill ovs-vswitchd of %s: %w", node, err)
			}
		}
	}
	inst := ovsnode.Instance{Netns: lab.NodeNetns(node), Dir: lab.OVSDir(node)}
	if err := inst.StartVswitchd(lab.PIDDir(), node+"-"); err != nil {
		return err
	}
	if st.CNI != CNIAntrea {
		return nil
	}
	addr := netip.PrefixFrom(layout.NodeIP(idx+1), layout.UnderlayPrefix.Bits())
	for _, s := range [][]string{
		{"ip", "addr", "replace", addr.String(), "dev", UplinkBridge},
		{"ip", "link", "set", UplinkBridge, "up"},
	} {
		var out []byte
		// The tap device appears once ovs-vswitchd has read its database.
		for i := 0; i < 100; i++ {
			if out, err = exec.Command("ip", append([]string{"netns", "exec", lab.NodeNetns(node)}, s...)...).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("node %s: %s: %w: %s", node, strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
