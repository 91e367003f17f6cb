package traceflow

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Event is the packet-in of a traced packet, decoded: the table that sent
// it, the registers the pipeline left, and its headers as they were then.
type Event struct {
	Table  uint8
	InPort uint32
	// Regs are the registers reg0 to reg7 (0 when the switch left one
	// out, which it does for registers that are 0).
	Regs [8]uint32
	// TunDst is the tunnel destination the pipeline set, when the switch
	// reported it; TunSrc the sender of a packet that came by the tunnel.
	TunDst, TunSrc netip.Addr
	Header         Header
}

// Traced says whether a packet-in is a traced packet's: only those carry
// TraceflowBit.
func Traced(p of.PacketIn) bool {
	return register(p.Match, agentof.TraceflowBit.Reg)&agentof.TraceflowBit.Mask() != 0
}

// Decode reads a traced packet's packet-in.
func Decode(p of.PacketIn) (Event, error) {
	h, err := ParseFrame(p.Data)
	if err != nil {
		return Event{}, fmt.Errorf("traced packet-in from table %d: %w", p.TableID, err)
	}
	e := Event{Table: p.TableID, InPort: p.InPort(), Header: h}
	for i := range e.Regs {
		e.Regs[i] = register(p.Match, i)
	}
	for _, m := range p.Match {
		a, ok := netip.AddrFromSlice(m.Value)
		if !ok || m.Mask != nil {
			continue
		}
		switch m.Field {
		case of.FieldTunDst:
			e.TunDst = a
		case of.FieldTunSrc:
			e.TunSrc = a
		}
	}
	return e, nil
}

func register(match []of.MatchField, n int) uint32 {
	for _, m := range match {
		if m.Field == of.Reg(n) && len(m.Value) == 4 {
			v := binary.BigEndian.Uint32(m.Value)
			if len(m.Mask) == 4 {
				v &= binary.BigEndian.Uint32(m.Mask)
			}
			return v
		}
	}
	return 0
}

func (e Event) field(f agentof.RegField) uint32 {
	return e.Regs[f.Reg] & f.Mask() >> f.Start
}

// Cluster is what the agent knows of the other nodes and the Services.
type Cluster interface {
	// NodeOfIP names the node whose InternalIP is ip.
	NodeOfIP(ip netip.Addr) (string, bool)
	// NodeOfPodIP names the node whose podCIDR holds ip, with its IP.
	NodeOfPodIP(ip netip.Addr) (string, netip.Addr, bool)
	// ServiceOfClusterIP names the Service (namespace/name) of a ClusterIP.
	ServiceOfClusterIP(ip netip.Addr) (string, bool)
}

// Policies is what the agent knows of the NetworkPolicies it realized.
type Policies interface {
	// Rule names the rule whose allow flows load id into IngressRuleReg
	// (ingress) or EgressRuleReg: its policy (namespace/name) and the
	// rule ("ingress rule 0").
	Rule(ingress bool, id uint32) (policy, rule string, ok bool)
	// Isolating names the policies (namespace/name) that isolate the pod
	// (namespace/name) in that direction.
	Isolating(pod string, ingress bool) []string
}

// Sent is the packet as the sender injected it, to tell what the pipeline
// changed.
type Sent struct {
	DstIP   netip.Addr
	DstPort uint16
	// Service is the Service (namespace/name) the destination named.
	Service string
}

// observer turns one node's event into observations.
type observer struct {
	node     agentof.NodeConfig
	pods     []LocalPod
	cluster  Cluster
	policies Policies
	// sent is set on the sender only.
	sent *Sent
}

func (o observer) podOfPort(port uint32) string {
	for _, p := range o.pods {
		if p.OFPort == port {
			return p.Namespace + "/" + p.Name
		}
	}
	return ""
}

// observe lists what the node did with the packet, in pipeline order.
func (o observer) observe(e Event) []v1alpha1.Observation {
	var obs []v1alpha1.Observation
	add := func(ob v1alpha1.Observation) { obs = append(obs, ob) }
	if e.field(agentof.PortTypeField) == agentof.PortTypeTunnel {
		ob := v1alpha1.Observation{Component: v1alpha1.ComponentClassification, ComponentInfo: agentof.ClassifierTable.Name,
			Action: v1alpha1.ActionReceived, Detail: "from the tunnel"}
		if e.TunSrc.IsValid() {
			ob.Detail += " (" + o.describeNodeIP(e.TunSrc) + ")"
		}
		add(ob)
	} else {
		add(v1alpha1.Observation{Component: v1alpha1.ComponentSpoofGuard, ComponentInfo: agentof.SpoofGuardTable.Name,
			Action: v1alpha1.ActionForwarded})
	}
	if e.Table == agentof.DNATTable.ID {
		ob := v1alpha1.Observation{Component: v1alpha1.ComponentLB, ComponentInfo: agentof.DNATTable.Name,
			Action: v1alpha1.ActionDropped, Detail: "the Service has no endpoints"}
		if svc, ok := o.serviceOf(e.Header.DstIP); ok {
			ob.Service = svc
		}
		return append(obs, ob)
	}
	if s := o.sent; s != nil && (e.Header.DstIP != s.DstIP || e.Header.DstPort != s.DstPort) {
		svc := s.Service
		if svc == "" {
			svc, _ = o.serviceOf(s.DstIP)
		}
		add(v1alpha1.Observation{Component: v1alpha1.ComponentLB, ComponentInfo: agentof.DNATTable.Name,
			Action: v1alpha1.ActionForwarded, Service: svc,
			TranslatedDstIP: e.Header.DstIP.String(), TranslatedDstPort: int32(e.Header.DstPort)})
	}
	if id := e.field(agentof.EgressRuleReg); id != 0 {
		add(o.allowed(false, id))
	}
	if e.Table == agentof.EgressDefaultTable.ID {
		return append(obs, o.isolated(false, o.podOfPort(e.InPort)))
	}
	if id := e.field(agentof.IngressRuleReg); id != 0 {
		add(o.allowed(true, id))
	}
	if e.Table == agentof.IngressDefaultTable.ID {
		return append(obs, o.isolated(true, o.podOfPort(e.field(agentof.OutputPortReg))))
	}
	if e.Table != agentof.OutputTable.ID {
		return append(obs, v1alpha1.Observation{Component: v1alpha1.ComponentForwarding,
			ComponentInfo: agentof.TableName(e.Table), Action: v1alpha1.ActionDropped,
			Detail: fmt.Sprintf("sent to the agent from table %d", e.Table)})
	}
	return append(obs, o.output(e))
}

// output is the observation of a packet that reached the output table.
func (o observer) output(e Event) v1alpha1.Observation {
	out := v1alpha1.Observation{Component: v1alpha1.ComponentOutput, ComponentInfo: agentof.OutputTable.Name}
	port := e.field(agentof.OutputPortReg)
	switch {
	case e.field(agentof.HairpinBit) == 1:
		out.Action, out.Pod = v1alpha1.ActionDelivered, o.podOfPort(e.InPort)
		out.Detail = "back to its source through a Service (hairpin)"
	case e.field(agentof.OutputKnownBit) == 0:
		out.Action = v1alpha1.ActionDropped
		out.Detail = "no output port: the destination MAC is not on this node"
	case port == o.node.TunnelOFPort:
		fwd := v1alpha1.Observation{Component: v1alpha1.ComponentForwarding, ComponentInfo: agentof.L3ForwardingTable.Name,
			Action: v1alpha1.ActionForwarded}
		dst := e.TunDst
		if name, nodeIP, ok := o.cluster.NodeOfPodIP(e.Header.DstIP); ok {
			fwd.TunnelDstNode = name
			if !dst.IsValid() {
				dst = nodeIP
			}
		}
		if dst.IsValid() {
			fwd.TunnelDstIP = dst.String()
			if name, ok := o.cluster.NodeOfIP(dst); ok {
				fwd.TunnelDstNode = name
			}
		}
		return fwd
	case port == o.node.GatewayOFPort:
		out.Action = v1alpha1.ActionForwardedOutOfNetwork
		out.Detail = "to the node's network stack through the gateway"
	default:
		out.Action, out.Pod = v1alpha1.ActionDelivered, o.podOfPort(port)
		if out.Pod == "" {
			out.Detail = fmt.Sprintf("to port %d", port)
		}
	}
	return out
}

func (o observer) allowed(ingress bool, id uint32) v1alpha1.Observation {
	table := agentof.EgressRuleTable
	if ingress {
		table = agentof.IngressRuleTable
	}
	ob := v1alpha1.Observation{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: table.Name,
		Action: v1alpha1.ActionForwarded}
	if policy, rule, ok := o.policies.Rule(ingress, id); ok {
		ob.NetworkPolicy, ob.NetworkPolicyRule = policy, rule
	} else {
		ob.Detail = fmt.Sprintf("allowed by rule %d, which this node no longer has", id)
	}
	return ob
}

func (o observer) isolated(ingress bool, pod string) v1alpha1.Observation {
	table, dir := agentof.EgressDefaultTable, "egress"
	if ingress {
		table, dir = agentof.IngressDefaultTable, "ingress"
	}
	ob := v1alpha1.Observation{Component: v1alpha1.ComponentNetworkPolicy, ComponentInfo: table.Name,
		Action: v1alpha1.ActionDropped}
	if pod != "" {
		ob.IsolatedBy = o.policies.Isolating(pod, ingress)
		ob.Detail = fmt.Sprintf("%s is isolated for %s and no rule allows the packet", pod, dir)
	}
	return ob
}

func (o observer) serviceOf(ip netip.Addr) (string, bool) {
	if o.sent != nil && o.sent.Service != "" && o.sent.DstIP == ip {
		return o.sent.Service, true
	}
	return o.cluster.ServiceOfClusterIP(ip)
}

func (o observer) describeNodeIP(ip netip.Addr) string {
	if name, ok := o.cluster.NodeOfIP(ip); ok {
		return name + ", " + ip.String()
	}
	return ip.String()
}
