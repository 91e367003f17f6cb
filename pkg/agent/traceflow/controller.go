// Package traceflow runs the agent's side of Traceflow (crd.antrea.io
// v1alpha1): the agent of the source pod's node checks the request,
// allocates a dataplane tag, builds the packet and injects it into its
// bridge as if the pod had sent it; every agent installs the Traceflow's
// receive flow while it runs, so that the tagged packet is followed when it
// arrives from the tunnel; each agent that gets the packet back at a final
// point (packet-in) adds its node's observations to the status. See
// docs/traceflow.md.
package traceflow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"golang.org/x/time/rate"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/crdclient"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// FlowInstaller installs and removes flows by owner (openflow.FlowSyncer).
type FlowInstaller interface {
	Sync(ctx context.Context, owner string, category int, flows []of.Flow) error
	Delete(ctx context.Context, owner string) error
}

// PacketSender sends packets into the bridge (openflow.Conn).
type PacketSender interface {
	PacketOut(ctx context.Context, po of.PacketOut) error
}

// LocalPod is a pod connected to this node's bridge.
type LocalPod struct {
	Namespace, Name string
	OFPort          uint32
	MAC             net.HardwareAddr
	IP              netip.Addr
}

// Config is what the controller works with.
type Config struct {
	NodeName string
	Node     agentof.NodeConfig
	Client   crdclient.TraceflowStatusClient
	// Traceflow returns a Traceflow from the informer's cache.
	Traceflow func(name string) (*v1alpha1.Traceflow, bool)
	// NodePods lists the pods scheduled on this node (the source pod of
	// the Traceflows this node runs is one of them).
	NodePods corelisters.PodLister
	// Kube finds destination pods and Services.
	Kube      kubernetes.Interface
	LocalPods func() []LocalPod
	Flows     FlowInstaller
	Out       PacketSender
	Cluster   Cluster
	Policies  Policies
	// ReceiverDelay is how long the sender waits, after publishing the
	// tag, before it injects the packet: the time the other agents have
	// to see the tag and install its receive flow.
	ReceiverDelay time.Duration
	// ResendAfter and MaxInjections: while the sender saw the packet into
	// the tunnel and no receiver reported it, it injects the packet again
	// every ResendAfter, MaxInjections times in all.
	ResendAfter   time.Duration
	MaxInjections int
	// PacketInsPerSecond bounds the traced packet-ins the agent reads.
	PacketInsPerSecond float64
}

// Defaults of Config.
const (
	DefaultReceiverDelay      = time.Second
	DefaultResendAfter        = 2 * time.Second
	DefaultMaxInjections      = 3
	DefaultPacketInsPerSecond = 100
	pollInterval              = 200 * time.Millisecond
	statusWriteTimeout        = 10 * time.Second
	// ownerPrefix starts the flow owners of Traceflows.
	ownerPrefix = "traceflow/"
)

// trace is a running Traceflow this agent takes part in.
type trace struct {
	name string
	uid  types.UID
	// sender: this node runs it; cancel stops its goroutine.
	sender bool
	cancel context.CancelFunc
	// What tells its packet-ins apart (set once the tag is known).
	tag      uint8
	srcIP    netip.Addr
	protocol uint8
	sent     *Sent
	// receiving: its receive flow is installed.
	receiving bool
	// reported: this node added its result (only the first packet-in of
	// a trace on a node counts).
	reported bool
}

// Controller runs Traceflows on this node.
type Controller struct {
	cfg     Config
	tags    *Tags
	queue   workqueue.TypedRateLimitingInterface[string]
	limiter *rate.Limiter

	mu     sync.Mutex
	traces map[string]*trace
}

// New returns a controller; Enqueue feeds it, Run runs it.
func New(cfg Config) *Controller {
	if cfg.ReceiverDelay == 0 {
		cfg.ReceiverDelay = DefaultReceiverDelay
	}
	if cfg.ResendAfter == 0 {
		cfg.ResendAfter = DefaultResendAfter
	}
	if cfg.MaxInjections == 0 {
		cfg.MaxInjections = DefaultMaxInjections
	}
	if cfg.PacketInsPerSecond == 0 {
		cfg.PacketInsPerSecond = DefaultPacketInsPerSecond
	}
	return &Controller{
		cfg:     cfg,
		tags:    NewTags(),
		queue:   workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "traceflow"}),
		limiter: rate.NewLimiter(rate.Limit(cfg.PacketInsPerSecond), int(cfg.PacketInsPerSecond)),
		traces:  map[string]*trace{},
	}
}

// Enqueue asks for the Traceflow name to be looked at (informer events).
func (c *Controller) Enqueue(name string) { c.queue.Add(name) }

// Run handles the queued Traceflows until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for {
		name, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, name); err != nil {
			klog.ErrorS(err, "Traceflow sync failed; retrying", "traceflow", name)
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

func owner(name string) string { return ownerPrefix + name }

// sync brings this node's part of the Traceflow name in line with it.
func (c *Controller) sync(ctx context.Context, name string) error {
	tf, ok := c.cfg.Traceflow(name)
	c.mu.Lock()
	t := c.traces[name]
	c.mu.Unlock()
	if t != nil && (!ok || tf.UID != t.uid || tf.Status.Phase.Terminal()) {
		if err := c.stop(ctx, t); err != nil {
			return err
		}
		t = nil
	}
	if !ok || tf.Status.Phase.Terminal() {
		return nil
	}
	switch tf.Status.Phase {
	case "":
		if t == nil && c.isSource(tf) {
			c.startSender(ctx, tf)
		}
	case v1alpha1.PhaseRunning:
		if tf.Status.SenderNode == c.cfg.NodeName && (t == nil || !t.sender) {
			// Only a sender that lost its memory (the agent restarted)
			// finds its own trace running without it.
			go c.fail(ctx, tf.Name, tf.UID, fmt.Sprintf("the agent of node %s restarted while the trace ran", c.cfg.NodeName))
			return nil
		}
		if t == nil || !t.sender {
			return c.receive(ctx, tf, t)
		}
	}
	return nil
}

// isSource says whether the Traceflow's source pod is scheduled on this
// node, on the pod network (antrea-controller fails the Traceflows of
// other pods).
func (c *Controller) isSource(tf *v1alpha1.Traceflow) bool {
	p, err := c.cfg.NodePods.Pods(tf.Spec.Source.Namespace).Get(tf.Spec.Source.Pod)
	return err == nil && p.Spec.NodeName == c.cfg.NodeName && !p.Spec.HostNetwork
}

// receive installs the receive flow of a running Traceflow whose tag is
// known, so that its packet is followed if the tunnel brings it here.
func (c *Controller) receive(ctx context.Context, tf *v1alpha1.Traceflow, t *trace) error {
	if tf.Status.DataplaneTag == 0 || tf.Status.Packet == nil || (t != nil && t.receiving) {
		return nil
	}
	tag, srcIP, proto, err := tagOf(tf)
	if err != nil {
		klog.ErrorS(err, "Not following a Traceflow", "traceflow", tf.Name)
		return nil
	}
	flows := agentof.TraceflowReceiveFlows(c.cfg.Node, agentof.TraceflowTag{DSCP: tag, SrcIP: srcIP, Protocol: proto})
	if err := c.cfg.Flows.Sync(ctx, owner(tf.Name), agentof.CategoryTraceflow, flows); err != nil {
		return fmt.Errorf("install the receive flow of Traceflow %s: %w", tf.Name, err)
	}
	c.mu.Lock()
	c.traces[tf.Name] = &trace{name: tf.Name, uid: tf.UID, tag: tag, srcIP: srcIP, protocol: proto, receiving: true}
	c.mu.Unlock()
	klog.V(2).InfoS("Following a Traceflow", "traceflow", tf.Name, "tag", tag, "source", srcIP)
	return nil
}

func tagOf(tf *v1alpha1.Traceflow) (uint8, netip.Addr, uint8, error) {
	tag := tf.Status.DataplaneTag
	if tag < 0 || tag > 63 || !IsTag(uint8(tag)) {
		return 0, netip.Addr{}, 0, fmt.Errorf("status.dataplaneTag %d is not a tag", tag)
	}
	src, err := netip.ParseAddr(tf.Status.Packet.SrcIP)
	if err != nil || !src.Is4() {
		return 0, netip.Addr{}, 0, fmt.Errorf("status.packet.srcIP %q is not an IPv4 address", tf.Status.Packet.SrcIP)
	}
	proto, err := protocolNumber(tf.Status.Packet.Protocol)
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	return uint8(tag), src, proto, nil
}

func protocolNumber(p v1alpha1.Protocol) (uint8, error) {
	switch p {
	case v1alpha1.ProtocolTCP, "":
		return of.ProtoTCP, nil
	case v1alpha1.ProtocolUDP:
		return of.ProtoUDP, nil
	case v1alpha1.ProtocolICMP:
		return of.ProtoICMP, nil
	}
	return 0, fmt.Errorf("packet.protocol %q: must be TCP, UDP or ICMP", p)
}

// stop forgets a trace: its sender goroutine, tag and receive flow.
func (c *Controller) stop(ctx context.Context, t *trace) error {
	if t.cancel != nil {
		t.cancel()
	}
	if t.receiving {
		if err := c.cfg.Flows.Delete(ctx, owner(t.name)); err != nil {
			return fmt.Errorf("remove the receive flow of Traceflow %s: %w", t.name, err)
		}
	}
	if t.sender {
		c.tags.Release(t.name)
	}
	c.mu.Lock()
	if c.traces[t.name] == t {
		delete(c.traces, t.name)
	}
	c.mu.Unlock()
	return nil
}

// startSender takes a new Traceflow on: this node sends its packet.
func (c *Controller) startSender(ctx context.Context, tf *v1alpha1.Traceflow) {
	tctx, cancel := context.WithCancel(ctx)
	t := &trace{name: tf.Name, uid: tf.UID, sender: true, cancel: cancel}
	c.mu.Lock()
	c.traces[tf.Name] = t
	c.mu.Unlock()
	go c.runSender(tctx, t, tf.DeepCopy())
}

// plan is a Traceflow's packet, ready to go.
type plan struct {
	packet Packet
	inPort uint32
	sent   Sent
	status v1alpha1.InjectedPacket
}

// runSender runs a Traceflow from this node: checks, tag, status Running,
// the packet (again, while a receiver is missing), and the timeout.
func (c *Controller) runSender(ctx context.Context, t *trace, tf *v1alpha1.Traceflow) {
	start := time.Now()
	p, err := c.plan(ctx, tf)
	if err != nil {
		c.fail(ctx, tf.Name, tf.UID, err.Error())
		return
	}
	c.mu.Lock()
	t.tag, t.srcIP, t.protocol, t.sent = p.packet.DSCP, p.packet.SrcIP, p.packet.Protocol, &p.sent
	c.mu.Unlock()
	started := false
	err = c.updateStatus(ctx, tf.Name, tf.UID, func(st *v1alpha1.TraceflowStatus) bool {
		if st.Phase != "" {
			return false
		}
		now := metav1.NewTime(start)
		*st = v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseRunning, DataplaneTag: int32(p.packet.DSCP),
			StartTime: &now, SenderNode: c.cfg.NodeName, Packet: &p.status}
		started = true
		return true
	})
	if err != nil || !started {
		if err != nil {
			klog.ErrorS(err, "Starting a Traceflow failed", "traceflow", tf.Name)
		}
		return
	}
	klog.InfoS("Traceflow started", "traceflow", tf.Name, "tag", p.packet.DSCP, "source", p.packet.SrcIP, "destination", p.packet.DstIP)
	timeout := tf.Spec.TimeoutDuration()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case <-ctx.Done():
		return
	case <-time.After(c.cfg.ReceiverDelay):
	}
	injections, last := 0, time.Time{}
	inject := func() {
		if err := c.inject(ctx, p); err != nil {
			klog.ErrorS(err, "Injecting a Traceflow packet failed", "traceflow", tf.Name)
		}
		injections, last = injections+1, time.Now()
	}
	inject()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			cur, ok := c.cfg.Traceflow(tf.Name)
			if !ok || cur.Status.Phase.Terminal() {
				return
			}
			c.fail(ctx, tf.Name, tf.UID, timeoutReason(&cur.Status, c.cfg.NodeName, timeout))
			return
		case <-tick.C:
			cur, ok := c.cfg.Traceflow(tf.Name)
			if !ok || cur.Status.Phase.Terminal() {
				return
			}
			if injections < c.cfg.MaxInjections && time.Since(last) >= c.cfg.ResendAfter && waitingForReceiver(&cur.Status, c.cfg.NodeName) {
				klog.InfoS("No receiver reported the Traceflow packet yet; sending it again", "traceflow", tf.Name, "injection", injections+1)
				inject()
			}
		}
	}
}

// plan checks a Traceflow against this node and the cluster and builds its
// packet; errors name the field at fault.
func (c *Controller) plan(ctx context.Context, tf *v1alpha1.Traceflow) (*plan, error) {
	spec := &tf.Spec
	if err := v1alpha1.ValidateSpec(spec); err != nil {
		return nil, err
	}
	src, ok := c.localPod(func(p LocalPod) bool { return p.Namespace == spec.Source.Namespace && p.Name == spec.Source.Pod })
	if !ok {
		return nil, fmt.Errorf("source.pod %s/%s: not connected to the bridge of node %s (not running yet?)",
			spec.Source.Namespace, spec.Source.Pod, c.cfg.NodeName)
	}
	proto, err := protocolNumber(spec.Packet.ProtocolOrDefault())
	if err != nil {
		return nil, err
	}
	dstIP, dstPort, service, err := c.destination(ctx, spec)
	if err != nil {
		return nil, err
	}
	tag, err := c.tags.Allocate(tf.Name)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.cfg.NodeName, err)
	}
	// A pod reaches a pod of its own node directly, anything else through
	// its gateway.
	dstMAC := c.cfg.Node.GatewayMAC
	if p, ok := c.localPod(func(p LocalPod) bool { return p.IP == dstIP }); ok {
		dstMAC = p.MAC
	}
	pkt := Packet{SrcMAC: src.MAC, DstMAC: dstMAC, SrcIP: src.IP, DstIP: dstIP, Protocol: proto,
		DSCP: tag, ID: uint16(rand.Uint32())}
	st := v1alpha1.InjectedPacket{SrcIP: src.IP.String(), DstIP: dstIP.String(), Protocol: spec.Packet.ProtocolOrDefault()}
	if proto != of.ProtoICMP {
		pkt.SrcPort = uint16(spec.Packet.SrcPort)
		if pkt.SrcPort == 0 {
			pkt.SrcPort = uint16(49152 + rand.IntN(16384)) // IANA's ephemeral ports
		}
		pkt.DstPort = dstPort
		st.SrcPort, st.DstPort = int32(pkt.SrcPort), int32(pkt.DstPort)
	}
	if proto == of.ProtoTCP {
		pkt.TCPFlags = spec.Packet.FlagsOrDefault()
		st.Flags = int32(pkt.TCPFlags)
	}
	return &plan{packet: pkt, inPort: src.OFPort, status: st,
		sent: Sent{DstIP: dstIP, DstPort: pkt.DstPort, Service: service}}, nil
}

// destination resolves the spec's destination to an address and port.
func (c *Controller) destination(ctx context.Context, spec *v1alpha1.TraceflowSpec) (netip.Addr, uint16, string, error) {
	d := spec.Destination
	port := uint16(spec.Packet.DstPort)
	if port == 0 {
		port = v1alpha1.DefaultDstPort
	}
	switch {
	case d.IP != "":
		ip, _ := netip.ParseAddr(d.IP) // ValidateSpec checked it
		return ip, port, "", nil
	case d.Pod != "":
		p, err := c.cfg.Kube.CoreV1().Pods(d.Namespace).Get(ctx, d.Pod, metav1.GetOptions{})
		if err != nil {
			return netip.Addr{}, 0, "", fmt.Errorf("destination.pod %s/%s: %w", d.Namespace, d.Pod, notFound(err))
		}
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !ip.Is4() {
			return netip.Addr{}, 0, "", fmt.Errorf("destination.pod %s/%s: has no IPv4 address yet", d.Namespace, d.Pod)
		}
		return ip, port, "", nil
	}
	svc, err := c.cfg.Kube.CoreV1().Services(d.Namespace).Get(ctx, d.Service, metav1.GetOptions{})
	if err != nil {
		return netip.Addr{}, 0, "", fmt.Errorf("destination.service %s/%s: %w", d.Namespace, d.Service, notFound(err))
	}
	name := d.Namespace + "/" + d.Service
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, 0, "", fmt.Errorf("destination.service %s: has no IPv4 ClusterIP (headless?)", name)
	}
	proto := corev1.Protocol(spec.Packet.ProtocolOrDefault())
	var ports []string
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != proto {
			continue
		}
		if spec.Packet.DstPort == 0 || sp.Port == spec.Packet.DstPort {
			return ip, uint16(sp.Port), name, nil
		}
		ports = append(ports, fmt.Sprint(sp.Port))
	}
	if len(ports) == 0 {
		return netip.Addr{}, 0, "", fmt.Errorf("destination.service %s: has no %s port", name, proto)
	}
	return netip.Addr{}, 0, "", fmt.Errorf("packet.dstPort %d: Service %s has no %s port %d (it has %s)",
		spec.Packet.DstPort, name, proto, spec.Packet.DstPort, strings.Join(ports, ", "))
}

func notFound(err error) error {
	if apierrors.IsNotFound(err) {
		return errors.New("not found")
	}
	return err
}

func (c *Controller) localPod(match func(LocalPod) bool) (LocalPod, bool) {
	for _, p := range c.cfg.LocalPods() {
		if match(p) {
			return p, true
		}
	}
	return LocalPod{}, false
}

// inject sends the packet into the bridge as if the source pod had sent
// it.
func (c *Controller) inject(ctx context.Context, p *plan) error {
	frame, err := p.packet.Frame()
	if err != nil {
		return err
	}
	return c.cfg.Out.PacketOut(ctx, of.PacketOut{InPort: p.inPort, Actions: agentof.TraceflowInjectActions(), Data: frame})
}

// fail ends a Traceflow that is not over yet with reason.
func (c *Controller) fail(ctx context.Context, name string, uid types.UID, reason string) {
	err := c.updateStatus(ctx, name, uid, func(st *v1alpha1.TraceflowStatus) bool {
		if st.Phase.Terminal() {
			return false
		}
		st.Phase, st.Reason = v1alpha1.PhaseFailed, reason
		return true
	})
	if err != nil {
		klog.ErrorS(err, "Failing a Traceflow failed", "traceflow", name, "reason", reason)
		return
	}
	klog.InfoS("Traceflow failed", "traceflow", name, "reason", reason)
}

// updateStatus changes the stored Traceflow's status (see
// crdclient.UpdateTraceflowStatus).
func (c *Controller) updateStatus(ctx context.Context, name string, uid types.UID, change func(*v1alpha1.TraceflowStatus) bool) error {
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	return crdclient.UpdateTraceflowStatus(ctx, c.cfg.Client, name, uid, change)
}

// HandlePacketIn reads a traced packet's packet-in and adds this node's
// observations to its Traceflow; it returns false for packets that are
// not traced.
func (c *Controller) HandlePacketIn(ctx context.Context, p of.PacketIn) bool {
	if !Traced(p) {
		return false
	}
	if !c.limiter.Allow() {
		return true
	}
	e, err := Decode(p)
	if err != nil {
		klog.V(2).InfoS("Ignoring a traced packet-in", "reason", err)
		return true
	}
	t, o := c.claim(e)
	if t == nil {
		klog.V(2).InfoS("Ignoring a traced packet-in of no running Traceflow", "tag", e.Header.DSCP, "source", e.Header.SrcIP, "table", e.Table)
		return true
	}
	role := v1alpha1.RoleReceiver
	if t.sender {
		role = v1alpha1.RoleSender
	}
	result := v1alpha1.NodeResult{Node: c.cfg.NodeName, Role: role, Timestamp: metav1.NewTime(time.Now()), Observations: o.observe(e)}
	go func() {
		err := c.updateStatus(ctx, t.name, t.uid, func(st *v1alpha1.TraceflowStatus) bool {
			return addResult(st, result)
		})
		if err != nil {
			klog.ErrorS(err, "Reporting a Traceflow observation failed", "traceflow", t.name)
			return
		}
		klog.V(2).InfoS("Reported a Traceflow observation", "traceflow", t.name, "role", role, "table", e.Table)
	}()
	return true
}

// claim finds the running trace of a traced packet and marks it reported
// on this node; nil if there is none, or this node reported it already.
func (c *Controller) claim(e Event) (*trace, observer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.traces {
		if t.tag == 0 || t.tag != e.Header.DSCP || t.srcIP != e.Header.SrcIP || t.reported {
			continue
		}
		t.reported = true
		o := observer{node: c.cfg.Node, pods: c.cfg.LocalPods(), cluster: c.cfg.Cluster, policies: c.cfg.Policies}
		if t.sender {
			o.sent = t.sent
		}
		cp := *t
		return &cp, o
	}
	return nil, observer{}
}
