package traceflow

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// fakeClient stores Traceflows like the API server (resourceVersion
// conflicts included); its cache is always up to date.
type fakeClient struct {
	mu   sync.Mutex
	objs map[string]*v1alpha1.Traceflow
	rv   int
	// conflicts is how many status updates to refuse with a conflict.
	conflicts int
}

func newFakeClient(tfs ...*v1alpha1.Traceflow) *fakeClient {
	c := &fakeClient{objs: map[string]*v1alpha1.Traceflow{}}
	for _, tf := range tfs {
		c.rv++
		tf.ResourceVersion = fmt.Sprint(c.rv)
		c.objs[tf.Name] = tf.DeepCopy()
	}
	return c
}

func (c *fakeClient) Get(_ context.Context, name string) (*v1alpha1.Traceflow, error) {
	tf, ok := c.cached(name)
	if !ok {
		return nil, apierrors.NewNotFound(v1alpha1.Resource(v1alpha1.TraceflowResource), name)
	}
	return tf, nil
}

func (c *fakeClient) UpdateStatus(_ context.Context, tf *v1alpha1.Traceflow) (*v1alpha1.Traceflow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	have, ok := c.objs[tf.Name]
	if !ok {
		return nil, apierrors.NewNotFound(v1alpha1.Resource(v1alpha1.TraceflowResource), tf.Name)
	}
	if c.conflicts > 0 || have.ResourceVersion != tf.ResourceVersion {
		c.conflicts = max(0, c.conflicts-1)
		return nil, apierrors.NewConflict(v1alpha1.Resource(v1alpha1.TraceflowResource), tf.Name, fmt.Errorf("stale"))
	}
	c.rv++
	stored := have.DeepCopy()
	stored.Status = *tf.Status.DeepCopy()
	stored.ResourceVersion = fmt.Sprint(c.rv)
	c.objs[tf.Name] = stored
	return stored.DeepCopy(), nil
}

func (c *fakeClient) cached(name string) (*v1alpha1.Traceflow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tf, ok := c.objs[name]
	if !ok {
		return nil, false
	}
	return tf.DeepCopy(), true
}

// modify changes a stored Traceflow as another writer would.
func (c *fakeClient) modify(name string, f func(*v1alpha1.Traceflow)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rv++
	f(c.objs[name])
	c.objs[name].ResourceVersion = fmt.Sprint(c.rv)
}

type fakeFlows struct {
	mu     sync.Mutex
	owners map[string][]of.Flow
	events []string
}

func (f *fakeFlows) Sync(_ context.Context, owner string, category int, flows []of.Flow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owners[owner] = flows
	f.events = append(f.events, fmt.Sprintf("sync %s category %d", owner, category))
	return nil
}

func (f *fakeFlows) Delete(_ context.Context, owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.owners, owner)
	f.events = append(f.events, "delete "+owner)
	return nil
}

type fakeOut struct {
	mu   sync.Mutex
	sent []of.PacketOut
}

func (o *fakeOut) PacketOut(_ context.Context, po of.PacketOut) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent = append(o.sent, po)
	return nil
}

func (o *fakeOut) packets() []of.PacketOut {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]of.PacketOut(nil), o.sent...)
}

type env struct {
	c      *Controller
	client *fakeClient
	flows  *fakeFlows
	out    *fakeOut
}

func kubePod(ns, name, node, ip string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{PodIP: ip}}
}

// newEnv is node-1 with client and web connected; the cluster also has
// ns/server on node-2 and the Service ns/web-svc (TCP 80) at vip.
func newEnv(t *testing.T, tfs ...*v1alpha1.Traceflow) *env {
	t.Helper()
	pods := []runtime.Object{
		kubePod("ns", "client", "node-1", client.IP.String()), kubePod("ns", "web", "node-1", web.IP.String()),
		kubePod("ns", "server", "node-2", server.String()), kubePod("ns", "pending", "node-2", ""),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-svc"},
			Spec: corev1.ServiceSpec{ClusterIP: vip.String(), Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}},
	}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range pods {
		if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName == "node-1" {
			require.NoError(t, indexer.Add(p))
		}
	}
	// "stranger" is scheduled on node-1 but has no port yet.
	require.NoError(t, indexer.Add(kubePod("ns", "stranger", "node-1", "")))
	e := &env{client: newFakeClient(tfs...), flows: &fakeFlows{owners: map[string][]of.Flow{}}, out: &fakeOut{}}
	e.c = New(Config{
		NodeName: "node-1", Node: testNode, Client: e.client, Traceflow: e.client.cached,
		NodePods: corelisters.NewPodLister(indexer), Kube: fake.NewClientset(pods...),
		LocalPods: func() []LocalPod { return []LocalPod{client, web} },
		Flows:     e.flows, Out: e.out, Cluster: fakeCluster{}, Policies: fakePolicies{},
		ReceiverDelay: 10 * time.Millisecond, ResendAfter: 50 * time.Millisecond, MaxInjections: 3,
	})
	return e
}

func traceflowTo(name string, dst v1alpha1.Destination, pkt v1alpha1.Packet) *v1alpha1.Traceflow {
	return &v1alpha1.Traceflow{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Spec: v1alpha1.TraceflowSpec{Source: v1alpha1.Source{Namespace: "ns", Pod: "client"}, Destination: dst, Packet: pkt}}
}

func (e *env) status(t *testing.T, name string) v1alpha1.TraceflowStatus {
	t.Helper()
	tf, ok := e.client.cached(name)
	require.True(t, ok)
	return tf.Status
}

func (e *env) waitPhase(t *testing.T, name string, phase v1alpha1.Phase) v1alpha1.TraceflowStatus {
	t.Helper()
	require.Eventually(t, func() bool { return e.status(t, name).Phase == phase }, 5*time.Second, 5*time.Millisecond, "phase %s", phase)
	return e.status(t, name)
}

// bounce is the bridge sending an injected packet back as a packet-in.
func bounce(po of.PacketOut, table uint8, reg0, reg1 uint32) of.PacketIn {
	return of.PacketIn{TableID: table, Data: po.Data, Match: []of.MatchField{of.MatchInPort(po.InPort),
		of.MatchReg(0, reg0|agentof.TraceflowBit.Mask(), 0), of.MatchReg(1, reg1, 0)}}
}

func TestSenderToAPodOfAnotherNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "server"}, v1alpha1.Packet{}))
	require.NoError(t, e.c.sync(ctx, "tf"))
	st := e.waitPhase(t, "tf", v1alpha1.PhaseRunning)
	assert.Equal(t, "node-1", st.SenderNode)
	assert.True(t, IsTag(uint8(st.DataplaneTag)), "tag %d", st.DataplaneTag)
	require.NotNil(t, st.Packet)
	assert.Equal(t, "10.10.0.3", st.Packet.SrcIP)
	assert.Equal(t, "10.10.1.2", st.Packet.DstIP)
	assert.Equal(t, v1alpha1.ProtocolTCP, st.Packet.Protocol)
	assert.Equal(t, int32(80), st.Packet.DstPort)
	assert.GreaterOrEqual(t, st.Packet.SrcPort, int32(49152))
	assert.Equal(t, int32(2), st.Packet.Flags, "SYN")

	require.Eventually(t, func() bool { return len(e.out.packets()) == 1 }, 5*time.Second, 5*time.Millisecond)
	po := e.out.packets()[0]
	assert.Equal(t, client.OFPort, po.InPort, "as if the source pod sent it")
	assert.Equal(t, of.ActionsString(agentof.TraceflowInjectActions()), of.ActionsString(po.Actions))
	h, err := ParseFrame(po.Data)
	require.NoError(t, err)
	assert.Equal(t, Header{DSCP: uint8(st.DataplaneTag), SrcIP: client.IP, DstIP: server, Protocol: of.ProtoTCP,
		SrcPort: uint16(st.Packet.SrcPort), DstPort: 80, TTL: 64}, h)
	assert.Equal(t, []byte(gwMAC), po.Data[:6], "to the gateway: the server is on another node")
	assert.Empty(t, e.flows.owners, "the sender needs no receive flow")

	// The bridge sends it into the tunnel, and to the agent.
	in := bounce(po, agentof.OutputTable.ID, pod|outputKnown, testNode.TunnelOFPort)
	assert.True(t, e.c.HandlePacketIn(ctx, in))
	require.Eventually(t, func() bool { return len(e.status(t, "tf").Results) == 1 }, 5*time.Second, 5*time.Millisecond)
	st = e.status(t, "tf")
	assert.Equal(t, v1alpha1.PhaseRunning, st.Phase, "waiting for node-2")
	r := st.Results[0]
	assert.Equal(t, "node-1", r.Node)
	assert.Equal(t, v1alpha1.RoleSender, r.Role)
	require.Len(t, r.Observations, 2)
	assert.Equal(t, v1alpha1.ComponentSpoofGuard, r.Observations[0].Component)
	assert.Equal(t, "node-2", r.Observations[1].TunnelDstNode)
	assert.True(t, e.c.HandlePacketIn(ctx, in), "a second packet-in is the trace's too...")
	time.Sleep(20 * time.Millisecond)
	assert.Len(t, e.status(t, "tf").Results, 1, "...but only the first counts")

	// node-2 reports delivery: the trace is over, the tag free again.
	e.client.modify("tf", func(tf *v1alpha1.Traceflow) {
		addResult(&tf.Status, result("node-2", v1alpha1.RoleReceiver, received, delivered))
	})
	require.NoError(t, e.c.sync(ctx, "tf"))
	assert.Equal(t, v1alpha1.PhaseSucceeded, e.status(t, "tf").Phase)
	assert.Empty(t, e.c.traces)
	tags := e.c.tags
	tags.mu.Lock()
	assert.Empty(t, tags.byName, "tag released")
	tags.mu.Unlock()
}

func TestSenderResendsWhileNoReceiverReports(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "server"}, v1alpha1.Packet{}))
	require.NoError(t, e.c.sync(ctx, "tf"))
	require.Eventually(t, func() bool { return len(e.out.packets()) == 1 }, 5*time.Second, 5*time.Millisecond)
	e.c.HandlePacketIn(ctx, bounce(e.out.packets()[0], agentof.OutputTable.ID, pod|outputKnown, testNode.TunnelOFPort))
	require.Eventually(t, func() bool { return len(e.out.packets()) == 3 }, 5*time.Second, 5*time.Millisecond,
		"the packet again, while node-2 is silent")
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, e.out.packets(), 3, "MaxInjections in all")
}

func TestSenderToAServiceOnItsOwnNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Service: "web-svc"}, v1alpha1.Packet{}))
	e.client.conflicts = 1 // someone else wrote first: the sender reads again
	require.NoError(t, e.c.sync(ctx, "tf"))
	require.Eventually(t, func() bool { return len(e.out.packets()) == 1 }, 5*time.Second, 5*time.Millisecond)
	po := e.out.packets()[0]
	h, err := ParseFrame(po.Data)
	require.NoError(t, err)
	assert.Equal(t, vip, h.DstIP)
	assert.Equal(t, uint16(80), h.DstPort, "the Service's TCP port")

	// Table 40 DNATed it to web, table 110 would deliver it.
	po.Data = dnat(t, po.Data, web.IP)
	e.c.HandlePacketIn(ctx, bounce(po, agentof.OutputTable.ID, pod|outputKnown, web.OFPort))
	st := e.waitPhase(t, "tf", v1alpha1.PhaseSucceeded)
	require.Len(t, st.Results, 1)
	obs := st.Results[0].Observations
	require.Len(t, obs, 3)
	assert.Equal(t, v1alpha1.Observation{Component: v1alpha1.ComponentLB, ComponentInfo: "DNAT", Action: v1alpha1.ActionForwarded,
		Service: "ns/web-svc", TranslatedDstIP: "10.10.0.4", TranslatedDstPort: 80}, obs[1])
	assert.Equal(t, v1alpha1.ActionDelivered, obs[2].Action)
	assert.Equal(t, "ns/web", obs[2].Pod)
}

// dnat rewrites a frame's destination IP, as the pipeline's DNAT would.
func dnat(t *testing.T, frame []byte, to netip.Addr) []byte {
	t.Helper()
	h, err := ParseFrame(frame)
	require.NoError(t, err)
	out, err := Packet{SrcMAC: frame[6:12], DstMAC: frame[0:6], SrcIP: h.SrcIP, DstIP: to, Protocol: h.Protocol,
		SrcPort: h.SrcPort, DstPort: h.DstPort, TCPFlags: 2, DSCP: h.DSCP}.Frame()
	require.NoError(t, err)
	return out
}

func TestSenderFailsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		tf   *v1alpha1.Traceflow
		want string
	}{
		{"destination pod missing", traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "nope"}, v1alpha1.Packet{}),
			"destination.pod ns/nope: not found"},
		{"destination pod without an IP", traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "pending"}, v1alpha1.Packet{}),
			"destination.pod ns/pending: has no IPv4 address yet"},
		{"Service missing", traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Service: "nope"}, v1alpha1.Packet{}),
			"destination.service ns/nope: not found"},
		{"Service without that port", traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Service: "web-svc"}, v1alpha1.Packet{DstPort: 8080}),
			"packet.dstPort 8080: Service ns/web-svc has no TCP port 8080 (it has 80)"},
		{"Service without UDP", traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Service: "web-svc"}, v1alpha1.Packet{Protocol: v1alpha1.ProtocolUDP}),
			"destination.service ns/web-svc: has no UDP port"},
		{"bad IP", traceflowTo("tf", v1alpha1.Destination{IP: "10.0.0.300"}, v1alpha1.Packet{}),
			`destination.ip "10.0.0.300": not an IPv4 address`},
		{"unknown protocol", traceflowTo("tf", v1alpha1.Destination{IP: "10.0.0.1"}, v1alpha1.Packet{Protocol: "SCTP"}),
			`packet.protocol "SCTP": must be TCP, UDP or ICMP`},
		{"source without a port", func() *v1alpha1.Traceflow {
			tf := traceflowTo("tf", v1alpha1.Destination{IP: "10.0.0.1"}, v1alpha1.Packet{})
			tf.Spec.Source.Pod = "stranger"
			return tf
		}(), "source.pod ns/stranger: not connected to the bridge of node node-1 (not running yet?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e := newEnv(t, tc.tf)
			require.NoError(t, e.c.sync(ctx, "tf"))
			st := e.waitPhase(t, "tf", v1alpha1.PhaseFailed)
			assert.Equal(t, tc.want, st.Reason)
			assert.Empty(t, e.out.packets())
			require.NoError(t, e.c.sync(ctx, "tf"))
			assert.Empty(t, e.c.traces, "a failed trace is forgotten")
		})
	}
}

func TestSenderTimesOut(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tf := traceflowTo("tf", v1alpha1.Destination{IP: "10.10.1.9"}, v1alpha1.Packet{Protocol: v1alpha1.ProtocolICMP})
	tf.Spec.Timeout = 1
	e := newEnv(t, tf)
	require.NoError(t, e.c.sync(ctx, "tf"))
	st := e.waitPhase(t, "tf", v1alpha1.PhaseFailed)
	assert.Equal(t, "timed out after 1s: no node reported the packet (it was dropped where no Traceflow flow reports it)", st.Reason)
	require.Len(t, e.out.packets(), 1)
	h, err := ParseFrame(e.out.packets()[0].Data)
	require.NoError(t, err)
	assert.Equal(t, uint8(of.ProtoICMP), h.Protocol)
}

func TestSenderThatRestartedFailsItsTrace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tf := traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "server"}, v1alpha1.Packet{})
	tf.Status = v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseRunning, SenderNode: "node-1", DataplaneTag: 7,
		Packet: &v1alpha1.InjectedPacket{SrcIP: client.IP.String(), DstIP: server.String(), Protocol: v1alpha1.ProtocolTCP}}
	e := newEnv(t, tf)
	require.NoError(t, e.c.sync(ctx, "tf"))
	st := e.waitPhase(t, "tf", v1alpha1.PhaseFailed)
	assert.Equal(t, "the agent of node node-1 restarted while the trace ran", st.Reason)
}

func TestReceiver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	remote := netip.MustParseAddr("10.10.1.5")
	tf := traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "web"}, v1alpha1.Packet{})
	tf.Spec.Source = v1alpha1.Source{Namespace: "ns", Pod: "server"}
	tf.Status = v1alpha1.TraceflowStatus{Phase: v1alpha1.PhaseRunning, SenderNode: "node-2", DataplaneTag: 7,
		Packet:  &v1alpha1.InjectedPacket{SrcIP: remote.String(), DstIP: web.IP.String(), Protocol: v1alpha1.ProtocolTCP, SrcPort: 50000, DstPort: 80},
		Results: []v1alpha1.NodeResult{result("node-2", v1alpha1.RoleSender, intoTunnel)}}
	e := newEnv(t, tf)
	require.NoError(t, e.c.sync(ctx, "tf"))
	want := agentof.TraceflowReceiveFlows(testNode, agentof.TraceflowTag{DSCP: 7, SrcIP: remote, Protocol: of.ProtoTCP})
	assert.Equal(t, want, e.flows.owners["traceflow/tf"])
	require.NoError(t, e.c.sync(ctx, "tf"))
	assert.Equal(t, []string{fmt.Sprintf("sync traceflow/tf category %d", agentof.CategoryTraceflow)}, e.flows.events, "installed once")

	// Another node's packet: not this trace's.
	frame, err := Packet{SrcMAC: client.MAC, DstMAC: gwMAC, SrcIP: remote, DstIP: web.IP, Protocol: of.ProtoTCP,
		SrcPort: 50000, DstPort: 80, TCPFlags: 2, DSCP: 11}.Frame()
	require.NoError(t, err)
	other := of.PacketIn{TableID: 110, Data: frame, Match: []of.MatchField{of.MatchReg(0, agentof.TraceflowBit.Mask(), 0)}}
	assert.True(t, e.c.HandlePacketIn(ctx, other), "traced, so no one else's")

	frame, err = Packet{SrcMAC: client.MAC, DstMAC: gwMAC, SrcIP: remote, DstIP: web.IP, Protocol: of.ProtoTCP,
		SrcPort: 50000, DstPort: 80, TCPFlags: 2, DSCP: 7}.Frame()
	require.NoError(t, err)
	in := bounce(of.PacketOut{InPort: testNode.TunnelOFPort, Data: frame}, agentof.OutputTable.ID, tunnel|outputKnown, web.OFPort)
	in.Match = append(in.Match, of.MatchReg(6, 7, 0))
	assert.True(t, e.c.HandlePacketIn(ctx, in))
	st := e.waitPhase(t, "tf", v1alpha1.PhaseSucceeded)
	require.Len(t, st.Results, 2)
	r := st.Results[1]
	assert.Equal(t, "node-1", r.Node)
	assert.Equal(t, v1alpha1.RoleReceiver, r.Role)
	assert.Equal(t, []v1alpha1.Observation{
		{Component: v1alpha1.ComponentClassification, ComponentInfo: "Classification", Action: v1alpha1.ActionReceived, Detail: "from the tunnel"},
		{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "IngressRule", Action: v1alpha1.ActionForwarded,
			NetworkPolicy: "ns/allow-client", NetworkPolicyRule: "ingress rule 0"},
		{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered, Pod: "ns/web"},
	}, r.Observations)

	require.NoError(t, e.c.sync(ctx, "tf"))
	assert.Empty(t, e.flows.owners, "the receive flow goes with the trace")
	assert.Empty(t, e.c.traces)
}

func TestOtherNodesTraceflowsAreLeftAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tf := traceflowTo("tf", v1alpha1.Destination{Namespace: "ns", Pod: "web"}, v1alpha1.Packet{})
	tf.Spec.Source = v1alpha1.Source{Namespace: "ns", Pod: "server"}
	e := newEnv(t, tf)
	require.NoError(t, e.c.sync(ctx, "tf"))
	time.Sleep(50 * time.Millisecond)
	assert.Empty(t, e.status(t, "tf").Phase, "node-2's to start")
	assert.Empty(t, e.c.traces)
	assert.Empty(t, e.flows.events)
	require.NoError(t, e.c.sync(ctx, "gone"), "a deleted Traceflow")
	assert.False(t, e.c.HandlePacketIn(ctx, of.PacketIn{TableID: 40}), "not traced: the next handler's")
}
