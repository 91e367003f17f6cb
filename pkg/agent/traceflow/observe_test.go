package traceflow

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// The node of these tests is node-1 (10.10.0.0/24, 172.18.0.11), with
// client (port 3) and web (port 4); node-2 (10.10.1.0/24, 172.18.0.12)
// runs server 10.10.1.2.
var (
	testNode = agentof.NodeConfig{GatewayOFPort: 2, TunnelOFPort: 1, GatewayMAC: gwMAC,
		GatewayIP: netip.MustParseAddr("10.10.0.1"), PodCIDR: netip.MustParsePrefix("10.10.0.0/24")}
	client = LocalPod{Namespace: "ns", Name: "client", OFPort: 3, MAC: srcMAC, IP: netip.MustParseAddr("10.10.0.3")}
	web    = LocalPod{Namespace: "ns", Name: "web", OFPort: 4, MAC: net.HardwareAddr{0x0a, 0, 0, 0, 0, 0x04}, IP: netip.MustParseAddr("10.10.0.4")}
	server = netip.MustParseAddr("10.10.1.2")
	vip    = netip.MustParseAddr("10.96.0.10")
)

type fakeCluster struct{}

func (fakeCluster) NodeOfIP(ip netip.Addr) (string, bool) {
	switch ip.String() {
	case "172.18.0.11":
		return "node-1", true
	case "172.18.0.12":
		return "node-2", true
	}
	return "", false
}

func (fakeCluster) NodeOfPodIP(ip netip.Addr) (string, netip.Addr, bool) {
	if netip.MustParsePrefix("10.10.1.0/24").Contains(ip) {
		return "node-2", netip.MustParseAddr("172.18.0.12"), true
	}
	return "", netip.Addr{}, false
}

func (fakeCluster) ServiceOfClusterIP(ip netip.Addr) (string, bool) {
	return "ns/web-svc", ip == vip
}

// fakePolicies: ingress rule 7 of ns/allow-client, egress rule 9 of
// ns/egress; ns/web is isolated by ns/deny-all.
type fakePolicies struct{}

func (fakePolicies) Rule(ingress bool, id uint32) (string, string, bool) {
	switch {
	case ingress && id == 7:
		return "ns/allow-client", "ingress rule 0", true
	case !ingress && id == 9:
		return "ns/egress", "egress rule 1", true
	}
	return "", "", false
}

func (fakePolicies) Isolating(pod string, _ bool) []string {
	if pod == "ns/web" || pod == "ns/client" {
		return []string{"ns/deny-all"}
	}
	return nil
}

// packetIn is what the bridge sends for a traced packet: regs and frame.
type packetIn struct {
	table  uint8
	inPort uint32
	reg0   uint32 // port type and bits, besides TraceflowBit
	reg1   uint32
	reg5   uint32
	reg6   uint32
	tunDst string
	dst    netip.Addr
	dport  uint16
}

func (p packetIn) build(t *testing.T) of.PacketIn {
	t.Helper()
	frame, err := Packet{SrcMAC: client.MAC, DstMAC: gwMAC, SrcIP: client.IP, DstIP: p.dst, Protocol: of.ProtoTCP,
		SrcPort: 50000, DstPort: p.dport, TCPFlags: 2, DSCP: 7}.Frame()
	require.NoError(t, err)
	match := []of.MatchField{of.MatchInPort(p.inPort), of.MatchReg(0, p.reg0|agentof.TraceflowBit.Mask(), 0)}
	for n, v := range map[int]uint32{1: p.reg1, 5: p.reg5, 6: p.reg6} {
		if v != 0 {
			match = append(match, of.MatchReg(n, v, 0))
		}
	}
	if p.tunDst != "" {
		match = append(match, of.MatchTunDst(netip.MustParseAddr(p.tunDst)))
	}
	return of.PacketIn{TableID: p.table, Match: match, Data: frame}
}

const (
	pod         = agentof.PortTypePod
	tunnel      = agentof.PortTypeTunnel
	outputKnown = 1 << 16
	hairpin     = 1 << 17
)

func TestObserve(t *testing.T) {
	toServer := &Sent{DstIP: server, DstPort: 80}
	toService := &Sent{DstIP: vip, DstPort: 80, Service: "ns/web-svc"}
	spoofGuard := v1alpha1.Observation{Component: v1alpha1.ComponentSpoofGuard, ComponentInfo: "SpoofGuard", Action: v1alpha1.ActionForwarded}
	fromTunnel := v1alpha1.Observation{Component: v1alpha1.ComponentClassification, ComponentInfo: "Classification",
		Action: v1alpha1.ActionReceived, Detail: "from the tunnel"}
	for _, tc := range []struct {
		name string
		in   packetIn
		sent *Sent
		want []v1alpha1.Observation
	}{
		{"sender: into the tunnel, the node from the pipeline's tun_dst",
			packetIn{table: 110, inPort: 3, reg0: pod | outputKnown, reg1: 1, tunDst: "172.18.0.12", dst: server, dport: 80},
			toServer,
			[]v1alpha1.Observation{spoofGuard, {Component: v1alpha1.ComponentForwarding, ComponentInfo: "L3Forwarding",
				Action: v1alpha1.ActionForwarded, TunnelDstIP: "172.18.0.12", TunnelDstNode: "node-2"}}},
		{"sender: into the tunnel, the node from its podCIDR when the switch leaves tun_dst out",
			packetIn{table: 110, inPort: 3, reg0: pod | outputKnown, reg1: 1, dst: server, dport: 80},
			toServer,
			[]v1alpha1.Observation{spoofGuard, {Component: v1alpha1.ComponentForwarding, ComponentInfo: "L3Forwarding",
				Action: v1alpha1.ActionForwarded, TunnelDstIP: "172.18.0.12", TunnelDstNode: "node-2"}}},
		{"sender: a Service's endpoint, allowed by an egress rule, delivered on this node",
			packetIn{table: 110, inPort: 3, reg0: pod | outputKnown, reg1: 4, reg5: 9, dst: web.IP, dport: 8080},
			toService,
			[]v1alpha1.Observation{spoofGuard,
				{Component: v1alpha1.ComponentLB, ComponentInfo: "DNAT", Action: v1alpha1.ActionForwarded, Service: "ns/web-svc",
					TranslatedDstIP: "10.10.0.4", TranslatedDstPort: 8080},
				{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "EgressRule", Action: v1alpha1.ActionForwarded,
					NetworkPolicy: "ns/egress", NetworkPolicyRule: "egress rule 1"},
				{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered, Pod: "ns/web"}}},
		{"sender: a Service without endpoints",
			packetIn{table: 40, inPort: 3, reg0: pod, dst: vip, dport: 80},
			toService,
			[]v1alpha1.Observation{spoofGuard, {Component: v1alpha1.ComponentLB, ComponentInfo: "DNAT", Action: v1alpha1.ActionDropped,
				Service: "ns/web-svc", Detail: "the Service has no endpoints"}}},
		{"sender: egress isolation",
			packetIn{table: 60, inPort: 3, reg0: pod, dst: server, dport: 80},
			toServer,
			[]v1alpha1.Observation{spoofGuard, {Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "EgressDefaultRule",
				Action: v1alpha1.ActionDropped, IsolatedBy: []string{"ns/deny-all"}, Detail: "ns/client is isolated for egress and no rule allows the packet"}}},
		{"sender: out of the cluster network",
			packetIn{table: 110, inPort: 3, reg0: pod | outputKnown, reg1: 2, dst: netip.MustParseAddr("172.18.0.200"), dport: 80},
			&Sent{DstIP: netip.MustParseAddr("172.18.0.200"), DstPort: 80},
			[]v1alpha1.Observation{spoofGuard, {Component: v1alpha1.ComponentOutput, ComponentInfo: "Output",
				Action: v1alpha1.ActionForwardedOutOfNetwork, Detail: "to the node's network stack through the gateway"}}},
		{"sender: hairpin through a Service",
			packetIn{table: 110, inPort: 3, reg0: pod | outputKnown | hairpin, reg1: 3, dst: client.IP, dport: 80},
			toService,
			[]v1alpha1.Observation{spoofGuard,
				{Component: v1alpha1.ComponentLB, ComponentInfo: "DNAT", Action: v1alpha1.ActionForwarded, Service: "ns/web-svc",
					TranslatedDstIP: "10.10.0.3", TranslatedDstPort: 80},
				{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered, Pod: "ns/client",
					Detail: "back to its source through a Service (hairpin)"}}},
		{"sender: no output port",
			packetIn{table: 110, inPort: 3, reg0: pod, dst: web.IP, dport: 80},
			&Sent{DstIP: web.IP, DstPort: 80},
			[]v1alpha1.Observation{spoofGuard, {Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDropped,
				Detail: "no output port: the destination MAC is not on this node"}}},
		{"receiver: allowed by an ingress rule, delivered",
			packetIn{table: 110, inPort: 1, reg0: tunnel | outputKnown, reg1: 4, reg6: 7, dst: web.IP, dport: 80},
			nil,
			[]v1alpha1.Observation{fromTunnel,
				{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "IngressRule", Action: v1alpha1.ActionForwarded,
					NetworkPolicy: "ns/allow-client", NetworkPolicyRule: "ingress rule 0"},
				{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered, Pod: "ns/web"}}},
		{"receiver: a rule id this node no longer knows",
			packetIn{table: 110, inPort: 1, reg0: tunnel | outputKnown, reg1: 4, reg6: 99, dst: web.IP, dport: 80},
			nil,
			[]v1alpha1.Observation{fromTunnel,
				{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "IngressRule", Action: v1alpha1.ActionForwarded,
					Detail: "allowed by rule 99, which this node no longer has"},
				{Component: v1alpha1.ComponentOutput, ComponentInfo: "Output", Action: v1alpha1.ActionDelivered, Pod: "ns/web"}}},
		{"receiver: ingress isolation",
			packetIn{table: 100, inPort: 1, reg0: tunnel | outputKnown, reg1: 4, dst: web.IP, dport: 80},
			nil,
			[]v1alpha1.Observation{fromTunnel, {Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: "IngressDefaultRule",
				Action: v1alpha1.ActionDropped, IsolatedBy: []string{"ns/deny-all"}, Detail: "ns/web is isolated for ingress and no rule allows the packet"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.in.build(t)
			require.True(t, Traced(p))
			e, err := Decode(p)
			require.NoError(t, err)
			o := observer{node: testNode, pods: []LocalPod{client, web}, cluster: fakeCluster{}, policies: fakePolicies{}, sent: tc.sent}
			assert.Equal(t, tc.want, o.observe(e))
		})
	}
}

func TestDecode(t *testing.T) {
	p := packetIn{table: 110, inPort: 3, reg0: pod | outputKnown, reg1: 1, reg5: 9, tunDst: "172.18.0.12", dst: server, dport: 80}.build(t)
	e, err := Decode(p)
	require.NoError(t, err)
	assert.Equal(t, uint8(110), e.Table)
	assert.Equal(t, uint32(3), e.InPort)
	assert.Equal(t, uint32(1), e.field(agentof.OutputPortReg))
	assert.Equal(t, uint32(1), e.field(agentof.OutputKnownBit))
	assert.Equal(t, uint32(agentof.PortTypePod), e.field(agentof.PortTypeField))
	assert.Equal(t, uint32(9), e.field(agentof.EgressRuleReg))
	assert.Equal(t, uint32(0), e.field(agentof.IngressRuleReg), "a register the switch left out is 0")
	assert.Equal(t, netip.MustParseAddr("172.18.0.12"), e.TunDst)
	assert.Equal(t, uint8(7), e.Header.DSCP)

	// A masked register reports its masked bits only.
	p.Match = append(p.Match[:0:0], of.MatchReg(0, 0x40002|0xff000000, 0x00ffffff), of.MatchInPort(3))
	e, err = Decode(p)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x40002), e.Regs[0])

	untraced := of.PacketIn{TableID: 40, Match: []of.MatchField{of.MatchReg(0, 2, 0)}, Data: p.Data}
	assert.False(t, Traced(untraced), "the Rejecter's packet-ins are not traced")
	_, err = Decode(of.PacketIn{TableID: 110, Data: []byte{1}})
	assert.ErrorContains(t, err, "traced packet-in from table 110")
}
