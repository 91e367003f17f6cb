// Package enrich names the ends of a connection: pods (namespace and
// name), nodes, the Service that balanced it, and the NetworkPolicy rules
// that allowed it, from what the agent already watches.
package enrich

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// LocalPod is a pod with a port on this node.
type LocalPod struct {
	Namespace string
	Name      string
	IP        netip.Addr
}

// Sources are what the Enricher reads. Every one but NodeName may be nil.
type Sources struct {
	// NodeName is this node.
	NodeName string
	// LocalPods are this node's pods (the agent's pod store).
	LocalPods func() []LocalPod
	// Nodes give node names for node addresses and pod CIDRs.
	Nodes corelisters.NodeLister
	// Services and EndpointSlices (the service proxy's informers): the
	// Service of a DNATed connection, and the names of endpoint pods on
	// other nodes.
	Services       corelisters.ServiceLister
	EndpointSlices discoverylisters.EndpointSliceLister
	// GroupMembers are the pods of the NetworkPolicy groups the
	// controller sent this node: names of pods on other nodes.
	GroupMembers func() []controlplane.GroupMember
	// Rule maps a rule id recorded in a connection's ct_label to its
	// NetworkPolicy rule.
	Rule func(id uint32) (networkpolicy.Rule, bool)
	// NodePortIP is where the node sends node-port traffic into the
	// bridge: a connection DNATed from it is a node port's.
	NodePortIP netip.Addr
}

// Enricher answers from an index that Refresh rebuilds. It is not safe
// for concurrent use: the exporter refreshes it once per poll and then
// enriches that poll's new connections.
type Enricher struct {
	src Sources
	idx index
}

type podInfo struct {
	pod  connection.Pod
	node string
}

type svcKey struct {
	ip    netip.Addr
	port  uint16
	proto uint8
}

type cidrNode struct {
	cidr netip.Prefix
	node string
}

type index struct {
	pods     map[netip.Addr]podInfo
	nodes    map[netip.Addr]string // node and gateway addresses
	cidrs    []cidrNode
	services map[svcKey]connection.Service
}

// New returns an Enricher over src; call Refresh before Enrich.
func New(src Sources) *Enricher { return &Enricher{src: src} }

// Refresh rebuilds the index from the sources. Listers that fail leave
// their part empty (a record then has fewer names, never wrong ones).
func (e *Enricher) Refresh() {
	idx := index{
		pods:     make(map[netip.Addr]podInfo, len(e.idx.pods)),
		nodes:    make(map[netip.Addr]string, len(e.idx.nodes)),
		services: make(map[svcKey]connection.Service, len(e.idx.services)),
	}
	if e.src.Nodes != nil {
		if nodes, err := e.src.Nodes.List(labels.Everything()); err == nil {
			for _, n := range nodes {
				idx.addNode(n)
			}
		}
	}
	if e.src.GroupMembers != nil {
		for _, m := range e.src.GroupMembers() {
			for _, s := range m.IPs {
				if ip, err := netip.ParseAddr(s); err == nil {
					idx.pods[ip] = podInfo{pod: connection.Pod{Namespace: m.Pod.Namespace, Name: m.Pod.Name}, node: m.Node}
				}
			}
		}
	}
	if e.src.EndpointSlices != nil {
		if slices, err := e.src.EndpointSlices.List(labels.Everything()); err == nil {
			for _, s := range slices {
				idx.addEndpoints(s)
			}
		}
	}
	if e.src.LocalPods != nil {
		for _, p := range e.src.LocalPods() {
			idx.pods[p.IP] = podInfo{pod: connection.Pod{Namespace: p.Namespace, Name: p.Name}, node: e.src.NodeName}
		}
	}
	if e.src.Services != nil {
		if svcs, err := e.src.Services.List(labels.Everything()); err == nil {
			for _, s := range svcs {
				idx.addService(s, e.src.NodePortIP)
			}
		}
	}
	e.idx = idx
}

func (idx *index) addNode(n *corev1.Node) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			idx.nodes[ip] = n.Name
		}
	}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		p = p.Masked()
		idx.cidrs = append(idx.cidrs, cidrNode{cidr: p, node: n.Name})
		// The gateway (first address) is the node itself, not a pod.
		idx.nodes[p.Addr().Next()] = n.Name
	}
}

func (idx *index) addEndpoints(s *discoveryv1.EndpointSlice) {
	for _, ep := range s.Endpoints {
		if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
			continue
		}
		node := ""
		if ep.NodeName != nil {
			node = *ep.NodeName
		}
		ns := ep.TargetRef.Namespace
		if ns == "" {
			ns = s.Namespace
		}
		for _, a := range ep.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				idx.pods[ip] = podInfo{pod: connection.Pod{Namespace: ns, Name: ep.TargetRef.Name}, node: node}
			}
		}
	}
}

var protoNumbers = map[corev1.Protocol]uint8{corev1.ProtocolTCP: 6, corev1.ProtocolUDP: 17, corev1.ProtocolSCTP: 132}

func (idx *index) addService(s *corev1.Service, nodePortIP netip.Addr) {
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	for _, p := range s.Spec.Ports {
		proto := protoNumbers[p.Protocol]
		if p.Protocol == "" {
			proto = 6
		}
		svc := connection.Service{PortName: s.Namespace + "/" + s.Name + ":" + p.Name, Port: uint16(p.Port)}
		for _, c := range ips {
			if ip, err := netip.ParseAddr(c); err == nil {
				svc.IP = ip
				idx.services[svcKey{ip: ip, port: uint16(p.Port), proto: proto}] = svc
			}
		}
		if p.NodePort != 0 && nodePortIP.IsValid() {
			np := svc
			np.Port = uint16(p.NodePort)
			idx.services[svcKey{ip: nodePortIP, port: uint16(p.NodePort), proto: proto}] = np
		}
	}
}

// Enrich names what the index knows of c's ends. The destination of a
// DNATed connection is its endpoint (the reply's source), and its
// Service the one at the original destination.
func (e *Enricher) Enrich(c *connection.Conn) connection.Enrichment {
	var out connection.Enrichment
	src, dst := c.Orig.Src, c.Orig.Dst
	if c.DNATed() {
		dst = c.Reply.Src
		if svc, ok := e.idx.services[svcKey{ip: c.Orig.Dst, port: c.Orig.DstPort, proto: c.Orig.Proto}]; ok {
			out.Service = svc
		}
	}
	var srcPod, dstPod bool
	out.Source, out.SourceNode, srcPod = e.end(src)
	out.Destination, out.DestinationNode, dstPod = e.end(dst)
	switch {
	case srcPod && dstPod && out.SourceNode == out.DestinationNode:
		out.FlowType = connection.FlowTypeIntraNode
	case srcPod && dstPod:
		out.FlowType = connection.FlowTypeInterNode
	case srcPod:
		out.FlowType = connection.FlowTypeToExternal
	case dstPod:
		out.FlowType = connection.FlowTypeFromExternal
	}
	if e.src.Rule != nil {
		out.EgressPolicy = e.policy(agentof.EgressRuleLabel.Of(c.LabelLow))
		out.IngressPolicy = e.policy(agentof.IngressRuleLabel.Of(c.LabelLow))
	}
	return out
}

// end names one end: the pod (if known), the node it is on or that owns
// the address, and whether it is a pod address at all.
func (e *Enricher) end(ip netip.Addr) (connection.Pod, string, bool) {
	if p, ok := e.idx.pods[ip]; ok {
		return p.pod, p.node, true
	}
	if n, ok := e.idx.nodes[ip]; ok {
		return connection.Pod{}, n, false
	}
	for _, c := range e.idx.cidrs {
		if c.cidr.Contains(ip) {
			return connection.Pod{}, c.node, true
		}
	}
	return connection.Pod{}, "", false
}

func (e *Enricher) policy(id uint64) connection.Policy {
	if id == 0 {
		return connection.Policy{}
	}
	r, ok := e.src.Rule(uint32(id))
	if !ok {
		return connection.Policy{}
	}
	return connection.Policy{Namespace: r.PolicyNamespace, Name: r.PolicyName, UID: string(r.PolicyUID), Rule: r.Name()}
}
