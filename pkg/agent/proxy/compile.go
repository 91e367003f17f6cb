package proxy

import (
	"fmt"
	"net/netip"
	"sort"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Protocol is a service port's protocol, as Kubernetes spells it.
type Protocol string

// Protocols of service ports.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// Endpoint is one backend of a service port, with the conditions of its
// EndpointSlice entry.
type Endpoint struct {
	IP          netip.Addr
	Port        uint16
	Ready       bool
	Serving     bool
	Terminating bool
	// NodeLocal: the endpoint runs on this node.
	NodeLocal bool
}

// ServicePort is one port of a service with its endpoints.
type ServicePort struct {
	// Name is "namespace/service:port", for humans only.
	Name      string
	ClusterIP netip.Addr
	Port      uint16
	Protocol  Protocol
	// NodePort is the port's node port, 0 if none.
	NodePort uint16
	// InternalTrafficPolicyLocal: ClusterIP traffic only to node-local
	// endpoints.
	InternalTrafficPolicyLocal bool
	// ExternalTrafficPolicyLocal: NodePort traffic only to node-local
	// endpoints (and the client's address is kept).
	ExternalTrafficPolicyLocal bool
	// AffinityTimeout is, with session affinity ClientIP, how long in
	// seconds a client keeps its endpoint after its last new connection;
	// 0 without affinity.
	AffinityTimeout uint32
	Endpoints       []Endpoint
}

// Key identifies the service port in the data path: "ClusterIP:port/PROTO".
// Group ids and flow owners are per key.
func (sp *ServicePort) Key() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(sp.ClusterIP, sp.Port), sp.Protocol)
}

// NodePortKey identifies the node port's own group, when it needs one:
// "nodeport:" + Key, so that ids are never shared between ports.
func (sp *ServicePort) NodePortKey() string {
	return "nodeport:" + sp.Key()
}

// NodePortClaim names the node port in the data path,
// "nodeport:<port>/PROTO": two service ports cannot both have it.
func (sp *ServicePort) NodePortClaim() string {
	return fmt.Sprintf("nodeport:%d/%s", sp.NodePort, sp.Protocol)
}

// MaxAffinityTimeout is the longest session affinity the switch keeps
// (flow timeouts are 16 bits); longer timeouts are cut to it.
const MaxAffinityTimeout = 65535

// Priorities of the flows in table 40.
const (
	// AffinityPriority is the flow sending a new connection whose client
	// has a learned endpoint to that endpoint.
	AffinityPriority uint16 = 210
	// ServicePriority is the flow sending new connections to the group.
	ServicePriority uint16 = 200
	// NoEndpointsPriority is the flow of a service port without usable
	// endpoints: to the controller, which rejects (see Rejecter), or a
	// drop when only the traffic policy leaves it without endpoints.
	NoEndpointsPriority uint16 = 190
)

// BucketWeight is the weight of every bucket.
const BucketWeight uint16 = 100

// FirstGroupID is the first group id the compiler allocates.
const FirstGroupID uint32 = 1

// Owners: every flow of a service port is owned by OwnerPrefix+"service/"+Key.
const (
	OwnerPrefix        = "proxy/"
	ownerServicePrefix = OwnerPrefix + "service/"
)

// CategoryService is the cookie category of the proxy's flows.
const CategoryService = agentof.CategoryService

// PortResult is what one service port compiles to.
type PortResult struct {
	// Owner owns the port's flows in the flow syncer.
	Owner string
	Flows []of.Flow
	// Groups are the port's select groups: none without endpoints, its
	// own, and the node port's when that one chooses from other endpoints.
	Groups []of.GroupEntry
	// GroupIDs are the ids the port holds, by id key (Key, NodePortKey),
	// installed or not.
	GroupIDs map[string]uint32
	// Invalid says what was skipped, and why.
	Invalid []string
}

// CompilePort compiles one service port; id gives the group id of an id
// key (the port's Key, or its NodePortKey). An invalid port (unsupported
// protocol, no IPv4 ClusterIP, port 0) is an error and holds no id.
func CompilePort(sp *ServicePort, id func(key string) uint32) (PortResult, error) {
	key := sp.Key()
	pr := PortResult{Owner: ownerServicePrefix + key}
	proto, err := ipProto(sp)
	if err != nil {
		pr.Invalid = append(pr.Invalid, fmt.Sprintf("%s (%s): %v", key, sp.Name, err))
		return pr, err
	}
	eps, bad := usableEndpoints(sp, sp.InternalTrafficPolicyLocal)
	for _, b := range bad {
		pr.Invalid = append(pr.Invalid, fmt.Sprintf("%s (%s): %s", key, sp.Name, b))
	}
	// A port without any usable endpoint rejects; one whose traffic
	// policy only leaves it without local ones drops, as kube-proxy.
	reject := len(eps) == 0
	if reject && sp.InternalTrafficPolicyLocal {
		all, _ := usableEndpoints(sp, false)
		reject = len(all) == 0
	}
	gid := id(key)
	pr.GroupIDs = map[string]uint32{key: gid}
	flows, g := frontend(sp, proto, gid, eps, sp.ClusterIP, sp.Port, reject)
	pr.Groups = appendGroup(pr.Groups, g)
	if sp.NodePort != 0 {
		// Node-port traffic uses the ClusterIP's group when both
		// choose from the same endpoints, its own group otherwise.
		npID, npEps := gid, eps
		if sp.ExternalTrafficPolicyLocal != sp.InternalTrafficPolicyLocal {
			npEps, _ = usableEndpoints(sp, sp.ExternalTrafficPolicyLocal)
			npID = id(sp.NodePortKey())
			pr.GroupIDs[sp.NodePortKey()] = npID
		}
		npFlows, npGroup := frontend(sp, proto, npID, npEps, agentof.NodePortVirtualIP, sp.NodePort, reject)
		flows = append(flows, npFlows...)
		if npID != gid {
			pr.Groups = appendGroup(pr.Groups, npGroup)
		}
	}
	pr.Flows = flows
	return pr, nil
}

// frontend returns the flows of one way into a service port (its
// ClusterIP, or the node-port virtual IP) and the group they use (nil
// without endpoints: new connections are then dropped, or sent to the
// agent to be rejected).
func frontend(sp *ServicePort, proto uint8, id uint32, eps []Endpoint, ip netip.Addr, port uint16, reject bool) ([]of.Flow, *of.GroupEntry) {
	match := []of.MatchField{
		of.MatchCTState(of.CTNew|of.CTTrk, 0),
		of.MatchEthType(of.EthTypeIPv4),
		of.MatchIPProto(proto),
		of.MatchIPDst(netip.PrefixFrom(ip, 32)),
		of.MatchL4Dst(proto, port, 0),
	}
	if len(eps) == 0 {
		f := of.Flow{Table: agentof.DNATTable.ID, Priority: NoEndpointsPriority, Match: match}
		if reject {
			f.Actions = []of.Action{of.Output{Port: of.PortController}}
		}
		return []of.Flow{f}, nil
	}
	flows := []of.Flow{{Table: agentof.DNATTable.ID, Priority: ServicePriority, Match: match,
		Actions: []of.Action{of.Group{ID: id}}}}
	if sp.AffinityTimeout == 0 {
		g := group(id, eps)
		return flows, &g
	}
	// Session affinity: a client with a learned endpoint goes straight
	// to it; the others go through the group, whose bucket names the
	// endpoint in registers. Either way the endpoint's flow learns (or
	// refreshes) the client's choice and does the DNAT. The learn is in
	// a flow rather than in the bucket: OVS does not run learn actions
	// of select group buckets.
	hit := append(append([]of.MatchField(nil), match...), agentof.AffinityHitBit.Match(1))
	flows = append(flows, of.Flow{Table: agentof.DNATTable.ID, Priority: AffinityPriority, Match: hit,
		Actions: []of.Action{of.Resubmit{Table: agentof.EndpointDNATTable.ID}}})
	learn := affinityLearn(proto, sp.AffinityTimeout)
	for _, ep := range eps {
		flows = append(flows, endpointDNAT(proto, ip, port, learn, ep))
	}
	g := affinityGroup(id, eps)
	return flows, &g
}

// endpointDNAT is the flow that sends a new connection to ip:port to the
// endpoint whose address the registers hold (a session affinity hit, or
// a bucket of an affinity group), after learning the client's choice.
func endpointDNAT(proto uint8, ip netip.Addr, port uint16, learn of.Learn, ep Endpoint) of.Flow {
	next := agentof.EgressRuleTable.ID
	return of.Flow{Table: agentof.EndpointDNATTable.ID, Priority: ServicePriority,
		Match: []of.MatchField{of.MatchEthType(of.EthTypeIPv4), of.MatchIPProto(proto),
			of.MatchIPDst(netip.PrefixFrom(ip, 32)), of.MatchL4Dst(proto, port, 0),
			agentof.EndpointIPReg.Match(ipUint32(ep.IP)), agentof.EndpointPortField.Match(uint32(ep.Port))},
		Actions: []of.Action{learn, of.CT{Commit: true, Zone: agentof.CTZone, Table: &next,
			NAT: &of.NAT{DNAT: true, IPMin: ep.IP.AsSlice(), PortMin: ep.Port}}}}
}

// affinityLearn learns, for the client of a new connection, a flow of the
// session affinity table that names its endpoint again for its next
// connections to the same address and port, until timeout seconds pass
// without one.
func affinityLearn(proto uint8, timeout uint32) of.Learn {
	if timeout > MaxAffinityTimeout {
		timeout = MaxAffinityTimeout
	}
	return of.Learn{Table: agentof.SessionAffinityTable.ID, Priority: ServicePriority,
		IdleTimeout: uint16(timeout), Cookie: agentof.LearnedCookie(CategoryService),
		Specs: []of.LearnSpec{
			of.LearnMatchValue(of.FieldEthType, of.EthTypeIPv4),
			of.LearnMatchValue(of.FieldIPProto, uint64(proto)),
			of.LearnMatchField(of.FieldIPSrc),
			of.LearnMatchField(of.FieldIPDst),
			of.LearnMatchField(l4DstField(proto)),
			of.LearnLoadField(agentof.EndpointIPReg.Field(), agentof.EndpointIPReg.Field(), agentof.EndpointIPReg.Start, agentof.EndpointIPReg.End),
			of.LearnLoadField(agentof.EndpointPortField.Field(), agentof.EndpointPortField.Field(), agentof.EndpointPortField.Start, agentof.EndpointPortField.End),
			of.LearnLoadValue(agentof.AffinityHitBit.Field(), agentof.AffinityHitBit.Start, agentof.AffinityHitBit.End, 1),
		}}
}

// affinityGroup is the select group of a service port with session
// affinity: each bucket names its endpoint in registers and continues in
// the endpoint DNAT table.
func affinityGroup(id uint32, eps []Endpoint) of.GroupEntry {
	g := of.GroupEntry{ID: id, Type: of.GroupSelect, Buckets: make([]of.Bucket, 0, len(eps))}
	for _, ep := range eps {
		g.Buckets = append(g.Buckets, of.Bucket{Weight: BucketWeight, Actions: []of.Action{
			agentof.EndpointIPReg.Load(ipUint32(ep.IP)),
			agentof.EndpointPortField.Load(uint32(ep.Port)),
			of.Resubmit{Table: agentof.EndpointDNATTable.ID},
		}})
	}
	return g
}

func l4DstField(proto uint8) of.Field {
	switch proto {
	case of.ProtoUDP:
		return of.FieldUDPDst
	case of.ProtoSCTP:
		return of.FieldSCTPDst
	}
	return of.FieldTCPDst
}

func ipUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func appendGroup(gs []of.GroupEntry, g *of.GroupEntry) []of.GroupEntry {
	if g == nil {
		return gs
	}
	return append(gs, *g)
}

func ipProto(sp *ServicePort) (uint8, error) {
	if !sp.ClusterIP.Is4() {
		return 0, fmt.Errorf("cluster IP %v is not IPv4", sp.ClusterIP)
	}
	if sp.Port == 0 {
		return 0, fmt.Errorf("port 0")
	}
	switch sp.Protocol {
	case ProtocolTCP:
		return of.ProtoTCP, nil
	case ProtocolUDP:
		return of.ProtoUDP, nil
	case ProtocolSCTP:
		return of.ProtoSCTP, nil
	}
	return 0, fmt.Errorf("unsupported protocol %q", sp.Protocol)
}

// usableEndpoints returns the endpoints that get a bucket, deduplicated and
// sorted by IP then port, and the invalid ones. Ready endpoints are used;
// if none is ready, serving and terminating ones are (kube-proxy's
// fallback). With the Local policy only node-local endpoints count.
func usableEndpoints(sp *ServicePort, localOnly bool) (eps []Endpoint, bad []string) {
	var ready, terminating []Endpoint
	seen := map[netip.AddrPort]bool{}
	for _, ep := range sp.Endpoints {
		ap := netip.AddrPortFrom(ep.IP, ep.Port)
		if !ep.IP.Is4() || ep.Port == 0 {
			bad = append(bad, fmt.Sprintf("endpoint %v: not an IPv4 address and port", ap))
			continue
		}
		if seen[ap] || (localOnly && !ep.NodeLocal) {
			continue
		}
		switch {
		case ep.Ready:
			seen[ap] = true
			ready = append(ready, ep)
		case ep.Serving && ep.Terminating:
			terminating = append(terminating, ep)
		}
	}
	eps = ready
	if len(eps) == 0 {
		seen = map[netip.AddrPort]bool{}
		for _, ep := range terminating {
			if ap := netip.AddrPortFrom(ep.IP, ep.Port); !seen[ap] {
				seen[ap] = true
				eps = append(eps, ep)
			}
		}
	}
	sort.Slice(eps, func(i, j int) bool {
		return netip.AddrPortFrom(eps[i].IP, eps[i].Port).Compare(netip.AddrPortFrom(eps[j].IP, eps[j].Port)) < 0
	})
	return eps, bad
}

// group is the select group of a service port: one bucket per endpoint,
// committing the connection with a DNAT to it and continuing in egress
// policy.
func group(id uint32, eps []Endpoint) of.GroupEntry {
	next := agentof.EgressRuleTable.ID
	g := of.GroupEntry{ID: id, Type: of.GroupSelect, Buckets: make([]of.Bucket, 0, len(eps))}
	for _, ep := range eps {
		g.Buckets = append(g.Buckets, of.Bucket{Weight: BucketWeight, Actions: []of.Action{of.CT{
			Commit: true, Zone: agentof.CTZone, Table: &next,
			NAT: &of.NAT{DNAT: true, IPMin: ep.IP.AsSlice(), PortMin: ep.Port},
		}}})
	}
	return g
}
