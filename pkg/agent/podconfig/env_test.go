package podconfig_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/podnet"
	"github.com/ovs-cni/antrea/pkg/ovs/openflow/openflowtest"
	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb/ovsdbtest"
)

// The node every test runs as.
var (
	podCIDR  = netip.MustParsePrefix("10.10.1.0/24")
	gwIP     = netip.MustParseAddr("10.10.1.1")
	gwMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	nodeConf = openflow.NodeConfig{GatewayOFPort: 2, TunnelOFPort: 1, GatewayMAC: gwMAC, GatewayIP: gwIP, PodCIDR: podCIDR}
)

const (
	testMTU   = 1450
	gwPort    = "antrea-gw0"
	tunPort   = "antrea-tun0"
	ifName    = "eth0"
	namespace = "default"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the podconfig tests need root: they create network namespaces and veth pairs; run them as root (e.g. through 'make test')")
	}
}

// fakeIPAM hands out addresses of podCIDR (from .2, the gateway is .1),
// the same one again for an attachment it knows, like host-local, and
// records every call.
type fakeIPAM struct {
	mu      sync.Mutex
	failAdd error
	byKey   map[string]netip.Addr // containerID/ifName -> address
	adds    []podnet.IPAMRequest
	dels    []podnet.IPAMRequest
	gcs     [][]types.GCAttachment
}

var _ podconfig.IPAM = (*fakeIPAM)(nil)

func newFakeIPAM() *fakeIPAM { return &fakeIPAM{byKey: map[string]netip.Addr{}} }

func ipamKey(containerID, ifName string) string { return containerID + "/" + ifName }

func (f *fakeIPAM) Add(_ context.Context, r podnet.IPAMRequest) (*current.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, r)
	if f.failAdd != nil {
		return nil, f.failAdd
	}
	k := ipamKey(r.ContainerID, r.IfName)
	ip, ok := f.byKey[k]
	if !ok {
		used := map[netip.Addr]bool{}
		for _, a := range f.byKey {
			used[a] = true
		}
		base := podCIDR.Addr().As4()
		for i := 2; i < 255; i++ {
			a := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(i)})
			if !used[a] {
				ip = a
				break
			}
		}
		if !ip.IsValid() {
			return nil, errors.New("fake IPAM: no free address in " + podCIDR.String())
		}
		f.byKey[k] = ip
	}
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		IPs: []*current.IPConfig{{
			Address: net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(podCIDR.Bits(), 32)},
			Gateway: gwIP.AsSlice(),
		}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}},
	}, nil
}

func (f *fakeIPAM) Del(_ context.Context, r podnet.IPAMRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dels = append(f.dels, r)
	delete(f.byKey, ipamKey(r.ContainerID, r.IfName))
	return nil
}

func (f *fakeIPAM) GC(_ context.Context, valid []types.GCAttachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gcs = append(f.gcs, slices.Clone(valid))
	keep := map[string]bool{}
	for _, a := range valid {
		keep[ipamKey(a.ContainerID, a.IfName)] = true
	}
	for k := range f.byKey {
		if !keep[k] {
			delete(f.byKey, k)
		}
	}
	return nil
}

// allocated returns the address of an attachment, if it holds one.
func (f *fakeIPAM) allocated(containerID string) (netip.Addr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.byKey[ipamKey(containerID, ifName)]
	return a, ok
}

func (f *fakeIPAM) calls() (adds, dels []podnet.IPAMRequest, gcs [][]types.GCAttachment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.adds), slices.Clone(f.dels), slices.Clone(f.gcs)
}

func (f *fakeIPAM) addsOf(containerID string) int {
	adds, _, _ := f.calls()
	n := 0
	for _, r := range adds {
		if r.ContainerID == containerID {
			n++
		}
	}
	return n
}

func (f *fakeIPAM) delsOf(containerID string) []podnet.IPAMRequest {
	_, dels, _ := f.calls()
	var out []podnet.IPAMRequest
	for _, r := range dels {
		if r.ContainerID == containerID {
			out = append(out, r)
		}
	}
	return out
}

// failingBridge wraps the fake bridge to fail EnsurePort.
type failingBridge struct {
	*ovsdbtest.Fake
	ensureErr error
}

func (b *failingBridge) EnsurePort(ctx context.Context, cfg ovsdb.PortConfig) (int32, error) {
	if b.ensureErr != nil {
		return 0, b.ensureErr
	}
	return b.Fake.EnsurePort(ctx, cfg)
}

// env is one node: its network namespace, a fake bridge with the gateway
// and tunnel ports, a fake OpenFlow switch with the base pipeline, a fake
// IPAM and a Configurator over them.
type env struct {
	t        *testing.T
	nodeNS   ns.NetNS
	bridge   *ovsdbtest.Fake
	ofc      *openflowtest.Fake
	ipam     *fakeIPAM
	cfg      podconfig.Config
	c        *podconfig.Configurator
	baseDump string
}

func newEnv(t *testing.T, mutate ...func(*podconfig.Config)) *env {
	t.Helper()
	requireRoot(t)
	nodeNS, err := testutils.NewNS()
	require.NoError(t, err, "create the node netns")
	t.Cleanup(func() {
		_ = nodeNS.Close()
		_ = testutils.UnmountNS(nodeNS)
	})
	ctx := context.Background()
	bridge := ovsdbtest.New("br-int")
	require.NoError(t, bridge.EnsureBridge(ctx, ovsdb.BridgeConfig{}))
	_, err = bridge.EnsurePort(ctx, ovsdb.PortConfig{Name: tunPort, Type: "geneve", OFPortRequest: 1, Options: map[string]string{"remote_ip": "flow"}})
	require.NoError(t, err)
	_, err = bridge.EnsurePort(ctx, ovsdb.PortConfig{Name: gwPort, Type: "internal", OFPortRequest: 2})
	require.NoError(t, err)
	e := &env{t: t, nodeNS: nodeNS, bridge: bridge, ipam: newFakeIPAM()}
	e.cfg = podconfig.Config{Node: nodeConf, MTU: testMTU, Bridge: bridge, IPAM: e.ipam}
	e.ofc, e.cfg.Flows = e.newFlows()
	for _, m := range mutate {
		m(&e.cfg)
	}
	e.c = podconfig.New(e.cfg)
	e.baseDump = e.ofc.Dump()
	return e
}

// newFlows returns a fresh OpenFlow fake with the base pipeline and a
// syncer over it.
func (e *env) newFlows() (*openflowtest.Fake, *openflow.FlowSyncer) {
	ofc := openflowtest.NewFake()
	s := openflow.NewFlowSyncer(ofc, 1)
	require.NoError(e.t, s.Sync(context.Background(), "base", openflow.CategoryBase, openflow.BaseFlows(nodeConf)))
	return ofc, s
}

// do runs fn inside the node netns.
func (e *env) do(fn func() error) error {
	return e.nodeNS.Do(func(ns.NetNS) error { return fn() })
}

func (e *env) add(c *podconfig.Configurator, p *pod) (*current.Result, error) {
	var res *current.Result
	err := e.do(func() error {
		var err error
		res, err = c.Add(context.Background(), p.req(cniserver.CmdAdd))
		return err
	})
	return res, err
}

func (e *env) mustAdd(p *pod) *current.Result {
	e.t.Helper()
	res, err := e.add(e.c, p)
	require.NoError(e.t, err, "ADD %s", p.name)
	require.NotNil(e.t, res)
	return res
}

func (e *env) del(c *podconfig.Configurator, req cniserver.PodRequest) error {
	return e.do(func() error { return c.Del(context.Background(), req) })
}

func (e *env) check(c *podconfig.Configurator, req cniserver.PodRequest) error {
	return e.do(func() error { return c.Check(context.Background(), req) })
}

// hostLink returns the link name in the node netns (nil if missing).
func (e *env) hostLink(name string) netlink.Link {
	e.t.Helper()
	var link netlink.Link
	require.NoError(e.t, e.do(func() error {
		l, err := netlink.LinkByName(name)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		link = l
		return err
	}))
	return link
}

// port returns the bridge's port name.
func (e *env) port(name string) (ovsdb.PortInfo, bool) {
	e.t.Helper()
	info, ok, err := e.bridge.GetPort(context.Background(), name)
	require.NoError(e.t, err)
	return info, ok
}

// podPorts returns the names of the bridge's ports that are pods.
func (e *env) podPorts() []string {
	e.t.Helper()
	ports, err := e.bridge.ListPorts(context.Background())
	require.NoError(e.t, err)
	var names []string
	for _, p := range ports {
		if p.ExternalIDs[podconfig.KeyContainerID] != "" {
			names = append(names, p.Name)
		}
	}
	return names
}

// pod is a pod sandbox: a network namespace of its own.
type pod struct {
	name string
	id   string
	ns   ns.NetNS
	path string
	once sync.Once
}

func (e *env) newPod(name string) *pod {
	e.t.Helper()
	podNS, err := testutils.NewNS()
	require.NoError(e.t, err, "create the pod netns")
	p := &pod{name: name, id: "ctr-" + name, ns: podNS, path: podNS.Path()}
	e.t.Cleanup(p.destroy)
	return p
}

// destroy deletes the pod's netns (the kernel then deletes its veth).
func (p *pod) destroy() {
	p.once.Do(func() {
		_ = p.ns.Close()
		_ = testutils.UnmountNS(p.ns)
	})
}

func (p *pod) hostIf() string { return podnet.HostVethName(namespace, p.name, p.id) }

func (p *pod) req(cmd string) cniserver.PodRequest {
	return cniserver.PodRequest{
		Command: cmd, ContainerID: p.id, Netns: p.path, IfName: ifName,
		PodNamespace: namespace, PodName: p.name, PodUID: "uid-" + p.name,
		Args:       map[string]string{"K8S_POD_NAMESPACE": namespace, "K8S_POD_NAME": p.name},
		CNIVersion: "1.1.0", NetworkName: "antrea",
	}
}

// podView is the pod side as seen inside the pod netns.
type podView struct {
	hasIf     bool
	mac       string
	addrs     []string
	defaultGW string
}

func (p *pod) view(t *testing.T) podView {
	t.Helper()
	var v podView
	require.NoError(t, p.ns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			return err
		}
		v.hasIf = true
		v.mac = link.Attrs().HardwareAddr.String()
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			v.addrs = append(v.addrs, a.IPNet.String())
		}
		routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				v.defaultGW = r.Gw.String()
			}
		}
		return nil
	}))
	return v
}

// flushAddrs removes every address of the pod's interface.
func (p *pod) flushAddrs() error {
	return p.ns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if err := netlink.AddrDel(link, &a); err != nil {
				return err
			}
		}
		return nil
	})
}

// podFlowLines are the distinctive parts of a pod's flows in a Dump: its
// classifier, spoofguard (IP and ARP) and L2 forwarding flows.
func podFlowLines(ofport uint32, mac, ip string) []string {
	return []string{
		fmt.Sprintf("table=0,priority=190,in_port=%d actions=", ofport),
		fmt.Sprintf("table=10,priority=200,in_port=%d,dl_src=%s,dl_type=0x800,nw_src=%s actions=", ofport, mac, ip),
		fmt.Sprintf("table=10,priority=200,in_port=%d,dl_src=%s,dl_type=0x806,arp_spa=%s,arp_sha=%s actions=", ofport, mac, ip, mac),
		fmt.Sprintf("table=80,priority=200,dl_dst=%s actions=load:%#x->NXM_NX_REG1[0..31]", mac, ofport),
	}
}
