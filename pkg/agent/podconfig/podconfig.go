// Package podconfig does the work behind the CNI commands on a node: it
// connects a pod to the bridge (address from IPAM, veth pair, OVS port with
// the pod's identity in external_ids, the pod's flows in one bundle) and
// disconnects it, keeps the pods it connected in memory, and rebuilds that
// state from OVSDB after a restart.
package podconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podnet"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

// Keys of the pod's identity in the OVS port's external_ids.
const (
	KeyContainerID  = "antrea/container-id"
	KeyPodNamespace = "antrea/pod-namespace"
	KeyPodName      = "antrea/pod-name"
	KeyIP           = "antrea/ip"
	KeyMAC          = "antrea/mac"
	KeyIfName       = "antrea/if-name"
	KeyNetns        = "antrea/netns"
)

// Bridge is the part of the OVSDB client pods need.
type Bridge interface {
	EnsurePort(ctx context.Context, cfg ovsdb.PortConfig) (int32, error)
	DeletePort(ctx context.Context, name string) error
	ListPorts(ctx context.Context) ([]ovsdb.PortInfo, error)
}

// Flows installs flows by owner.
type Flows interface {
	Sync(ctx context.Context, owner string, category int, flows []of.Flow) error
}

// IPAM allocates pod addresses.
type IPAM interface {
	Add(ctx context.Context, r podnet.IPAMRequest) (*current.Result, error)
	Del(ctx context.Context, r podnet.IPAMRequest) error
	GC(ctx context.Context, valid []types.GCAttachment) error
}

// Admission decides whether a new pod's port may forward. Admit runs
// once the pod has its port and address, before its forwarding flows are
// installed; it may install flows that hold the port (and release them
// later on its own). Forget runs when the pod is disconnected.
type Admission interface {
	Admit(ctx context.Context, p Pod) error
	Forget(ctx context.Context, p Pod) error
}

// Config wires a Configurator.
type Config struct {
	Node              openflow.NodeConfig
	MTU               int
	DisableTxChecksum bool // the userspace datapath needs it
	Bridge            Bridge
	Flows             Flows
	IPAM              IPAM
	// Admission, when set, is asked before a new pod's port forwards.
	Admission Admission
	// OnChange, when set, is called after a pod is connected or
	// disconnected (it must not block).
	OnChange func()
	// Ready reports whether the agent can serve ADDs (OVS connected, base
	// pipeline installed).
	Ready func() error
}

// Pod is one connected pod interface.
type Pod struct {
	ContainerID  string
	IfName       string
	PodNamespace string
	PodName      string
	Netns        string
	HostIf       string
	IP           netip.Addr
	MAC          net.HardwareAddr
	OFPort       uint32
}

// Configurator implements cniserver.PodConfigurator.
type Configurator struct {
	cfg  Config
	mu   sync.Mutex
	pods map[string]*Pod // by container ID
}

var _ cniserver.PodConfigurator = (*Configurator)(nil)

// New returns a Configurator with no pods; call Restore after a restart.
func New(cfg Config) *Configurator {
	return &Configurator{cfg: cfg, pods: map[string]*Pod{}}
}

// Owner owns the flows of the pod of containerID.
func Owner(containerID string) string { return "pod/" + containerID }

func (c *Configurator) get(id string) *Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[id]
}

func (c *Configurator) put(p *Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pods[p.ContainerID] = p
}

func (c *Configurator) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pods, id)
}

// Pods returns the connected pods sorted by namespace and name.
func (c *Configurator) Pods() []Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Pod, 0, len(c.pods))
	for _, p := range c.pods {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PodNamespace != out[j].PodNamespace {
			return out[i].PodNamespace < out[j].PodNamespace
		}
		return out[i].PodName < out[j].PodName
	})
	return out
}

// Status implements cniserver.PodConfigurator.
func (c *Configurator) Status(context.Context) error {
	if c.cfg.Ready == nil {
		return nil
	}
	return c.cfg.Ready()
}

// Add implements cniserver.PodConfigurator. A failed ADD undoes every step
// it made, so nothing leaks.
func (c *Configurator) Add(ctx context.Context, req cniserver.PodRequest) (res *current.Result, err error) {
	if err := c.Status(ctx); err != nil {
		return nil, cniserver.NewError(types.ErrTryAgainLater, "the agent is not ready", err.Error())
	}
	if p := c.get(req.ContainerID); p != nil && p.IfName == req.IfName {
		return c.result(p), nil // the runtime repeated ADD: answer from state
	}
	if !podnet.NetnsExists(req.Netns) {
		return nil, cniserver.NewError(types.ErrInvalidEnvironmentVariables, "CNI_NETNS "+req.Netns+" does not exist", "")
	}
	p := &Pod{
		ContainerID: req.ContainerID, IfName: req.IfName, Netns: req.Netns,
		PodNamespace: req.PodNamespace, PodName: req.PodName,
		HostIf: podnet.HostVethName(req.PodNamespace, req.PodName, req.ContainerID),
	}
	ipamReq := podnet.IPAMRequest{ContainerID: req.ContainerID, Netns: req.Netns, IfName: req.IfName}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	ipamRes, err := c.cfg.IPAM.Add(ctx, ipamReq)
	if err != nil {
		return nil, cniserver.Errorf(cniv1.CodeIPAMFailure, "allocate an address: %w", err)
	}
	undo = append(undo, func() { c.logUndo(c.cfg.IPAM.Del(context.Background(), ipamReq), "release address") })
	if len(ipamRes.IPs) == 0 {
		return nil, cniserver.NewError(cniv1.CodeIPAMFailure, "allocate an address", "IPAM returned no address")
	}
	ip, ok := netip.AddrFromSlice(ipamRes.IPs[0].Address.IP)
	if !ok {
		return nil, fmt.Errorf("IPAM returned an invalid address %v", ipamRes.IPs[0].Address)
	}
	p.IP = ip.Unmap()

	// Each undo is registered before its step: a step that fails half-way
	// (the veth made, its offload setting refused; the port in OVSDB, its
	// ofport never assigned) is undone too. The undos accept "not there".
	undo = append(undo, func() { c.logUndo(podnet.DeleteVeth(p.HostIf), "delete veth") })
	veth, err := podnet.SetupVeth(req.Netns, req.IfName, p.HostIf, c.cfg.MTU, c.cfg.DisableTxChecksum)
	if err != nil {
		return nil, cniserver.Errorf(cniv1.CodeInterfaceFailure, "create the pod's interface: %w", err)
	}
	p.MAC = veth.PodMAC
	// The result is the same one a repeated ADD gets from state.
	out := c.result(p)
	if err := podnet.ConfigureIP(req.Netns, req.IfName, out); err != nil {
		return nil, cniserver.Errorf(cniv1.CodeInterfaceFailure, "configure the pod's interface: %w", err)
	}

	undo = append(undo, func() { c.logUndo(c.cfg.Bridge.DeletePort(context.Background(), p.HostIf), "delete OVS port") })
	ofport, err := c.cfg.Bridge.EnsurePort(ctx, ovsdb.PortConfig{Name: p.HostIf, ExternalIDs: externalIDs(p)})
	if err != nil {
		return nil, cniserver.Errorf(cniv1.CodeOVSFailure, "attach %s to the bridge: %w", p.HostIf, err)
	}
	p.OFPort = uint32(ofport)

	if c.cfg.Admission != nil {
		undo = append(undo, func() { c.logUndo(c.cfg.Admission.Forget(context.Background(), *p), "forget admission") })
		if err := c.cfg.Admission.Admit(ctx, *p); err != nil {
			return nil, cniserver.Errorf(cniv1.CodeOVSFailure, "admit the pod under its NetworkPolicies: %w", err)
		}
	}
	if err := c.cfg.Flows.Sync(ctx, Owner(p.ContainerID), openflow.CategoryPod, c.podFlows(p)); err != nil {
		return nil, cniserver.Errorf(cniv1.CodeOVSFailure, "install the pod's flows: %w", err)
	}
	c.put(p)
	c.changed()
	klog.InfoS("Pod connected", "pod", klog.KRef(p.PodNamespace, p.PodName), "containerID", p.ContainerID, "ip", p.IP, "ofport", p.OFPort, "interface", p.HostIf)
	return out, nil
}

func (c *Configurator) podFlows(p *Pod) []of.Flow {
	return openflow.PodFlows(c.cfg.Node, openflow.PodPort{OFPort: p.OFPort, MAC: p.MAC, IP: p.IP})
}

func (c *Configurator) logUndo(err error, what string) {
	if err != nil {
		klog.ErrorS(err, "Rolling back a failed ADD left something behind", "step", what)
	}
}

// result is the CNI result of a connected pod.
func (c *Configurator) result(p *Pod) *current.Result {
	bits := c.cfg.Node.PodCIDR.Bits()
	gw := c.cfg.Node.GatewayIP
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: p.HostIf},
			{Name: p.IfName, Mac: p.MAC.String(), Sandbox: p.Netns},
		},
		IPs: []*current.IPConfig{{
			Interface: current.Int(1),
			Address:   net.IPNet{IP: p.IP.AsSlice(), Mask: net.CIDRMask(bits, 32)},
			Gateway:   gw.AsSlice(),
		}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw.AsSlice()}},
	}
}

func externalIDs(p *Pod) map[string]string {
	return map[string]string{
		KeyContainerID: p.ContainerID, KeyPodNamespace: p.PodNamespace, KeyPodName: p.PodName,
		KeyIP: p.IP.String(), KeyMAC: p.MAC.String(), KeyIfName: p.IfName, KeyNetns: p.Netns,
	}
}

// Del implements cniserver.PodConfigurator. Everything is attempted even
// when a step fails, and what is already gone counts as done.
func (c *Configurator) Del(ctx context.Context, req cniserver.PodRequest) error {
	p := c.get(req.ContainerID)
	if p == nil {
		// Unknown here (e.g. ADD failed, or a restart lost nothing since
		// Restore read OVSDB): clean up what the request names.
		p = &Pod{ContainerID: req.ContainerID, IfName: req.IfName, Netns: req.Netns,
			PodNamespace: req.PodNamespace, PodName: req.PodName}
		if req.PodName != "" {
			p.HostIf = podnet.HostVethName(req.PodNamespace, req.PodName, req.ContainerID)
		}
	}
	if err := c.disconnect(ctx, p, req.Netns); err != nil {
		return err
	}
	klog.InfoS("Pod disconnected", "pod", klog.KRef(p.PodNamespace, p.PodName), "containerID", p.ContainerID)
	return nil
}

func (c *Configurator) disconnect(ctx context.Context, p *Pod, netns string) error {
	var errs []error
	if c.cfg.Admission != nil {
		if err := c.cfg.Admission.Forget(ctx, *p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.cfg.Flows.Sync(ctx, Owner(p.ContainerID), openflow.CategoryPod, nil); err != nil {
		errs = append(errs, err)
	}
	if p.HostIf != "" {
		if err := c.cfg.Bridge.DeletePort(ctx, p.HostIf); err != nil {
			errs = append(errs, err)
		}
		if err := podnet.DeleteVeth(p.HostIf); err != nil {
			errs = append(errs, err)
		}
	}
	if netns == "" {
		netns = p.Netns
	}
	ifName := p.IfName
	if ifName == "" {
		ifName = "eth0"
	}
	if err := c.cfg.IPAM.Del(ctx, podnet.IPAMRequest{ContainerID: p.ContainerID, Netns: netns, IfName: ifName}); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.remove(p.ContainerID)
	c.changed()
	return nil
}

func (c *Configurator) changed() {
	if c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
}

// Check implements cniserver.PodConfigurator.
func (c *Configurator) Check(ctx context.Context, req cniserver.PodRequest) error {
	p := c.get(req.ContainerID)
	if p == nil {
		return cniserver.NewError(types.ErrUnknownContainer, "container "+req.ContainerID+" is not connected", "")
	}
	ports, err := c.cfg.Bridge.ListPorts(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, port := range ports {
		if port.Name == p.HostIf && port.OFPort > 0 && uint32(port.OFPort) == p.OFPort {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("OVS port %s of container %s is missing or changed", p.HostIf, p.ContainerID)
	}
	want := req.PrevResult
	if want == nil {
		want = c.result(p)
	}
	return podnet.CheckVeth(req.Netns, req.IfName, p.MAC, want)
}

// GC implements cniserver.PodConfigurator: pods the runtime no longer
// knows are disconnected, and IPAM forgets every other allocation.
func (c *Configurator) GC(ctx context.Context, valid []cniserver.Attachment) error {
	keep := map[string]bool{}
	var gcValid []types.GCAttachment
	for _, a := range valid {
		keep[a.ContainerID] = true
		gcValid = append(gcValid, types.GCAttachment{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	var errs []error
	for _, p := range c.Pods() {
		if !keep[p.ContainerID] {
			klog.InfoS("Garbage-collecting a pod the runtime no longer knows", "pod", klog.KRef(p.PodNamespace, p.PodName), "containerID", p.ContainerID)
			pp := p
			if err := c.disconnect(ctx, &pp, ""); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := c.cfg.IPAM.GC(ctx, gcValid); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
