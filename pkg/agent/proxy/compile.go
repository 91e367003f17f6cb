package proxy

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/ovs-cni/antrea/pkg/agent/idalloc"
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

// ServicePort is one port of a ClusterIP service with its endpoints.
type ServicePort struct {
	// Name is "namespace/service:port", for humans only.
	Name      string
	ClusterIP netip.Addr
	Port      uint16
	Protocol  Protocol
	// InternalTrafficPolicyLocal: only node-local endpoints are used.
	InternalTrafficPolicyLocal bool
	// SessionAffinity is ignored for now.
	SessionAffinity bool
	Endpoints       []Endpoint
}

// Key identifies the service port in the data path: "ClusterIP:port/PROTO".
// Group ids and flow owners are per key.
func (sp *ServicePort) Key() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(sp.ClusterIP, sp.Port), sp.Protocol)
}

// Priorities of the flows in table 40.
const (
	// ServicePriority is the flow sending new connections to the group.
	ServicePriority uint16 = 200
	// NoEndpointsPriority is the drop flow of a service port without
	// usable endpoints (a reject, later).
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

// Result is what a compile produces.
type Result struct {
	// Flows are the flows by owner, one owner per service port.
	Flows map[string][]of.Flow
	// Groups are the select groups of the service ports that have
	// endpoints, by ascending id.
	Groups []of.GroupEntry
	// GroupIDs is the group id of every valid service port, by Key (a port
	// without endpoints keeps its id, with no group installed).
	GroupIDs map[string]uint32
	// Invalid lists the service ports and endpoints that were skipped, and
	// why.
	Invalid []string
}

// Compiler compiles service ports, keeping group ids stable across
// compiles.
type Compiler struct{ ids *idalloc.Allocator }

// NewCompiler returns a compiler that allocates group ids from FirstGroupID.
func NewCompiler() *Compiler { return &Compiler{ids: idalloc.New(FirstGroupID)} }

// Compile returns the flows and groups of ports.
func (c *Compiler) Compile(ports []ServicePort) Result {
	c.ids.Begin()
	res := Result{Flows: map[string][]of.Flow{}, GroupIDs: map[string]uint32{}}
	sorted := make([]*ServicePort, 0, len(ports))
	for i := range ports {
		sorted = append(sorted, &ports[i])
	}
	// Deterministic ids: allocate in key order.
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	for _, sp := range sorted {
		proto, err := ipProto(sp)
		if err != nil {
			res.Invalid = append(res.Invalid, fmt.Sprintf("%s (%s): %v", sp.Key(), sp.Name, err))
			continue
		}
		key := sp.Key()
		if _, dup := res.GroupIDs[key]; dup {
			res.Invalid = append(res.Invalid, fmt.Sprintf("%s (%s): duplicate service port", key, sp.Name))
			continue
		}
		id := c.ids.Get(key)
		res.GroupIDs[key] = id
		eps, bad := usableEndpoints(sp)
		for _, b := range bad {
			res.Invalid = append(res.Invalid, fmt.Sprintf("%s (%s): %s", key, sp.Name, b))
		}
		match := []of.MatchField{
			of.MatchCTState(of.CTNew|of.CTTrk, 0),
			of.MatchEthType(of.EthTypeIPv4),
			of.MatchIPProto(proto),
			of.MatchIPDst(netip.PrefixFrom(sp.ClusterIP, 32)),
			of.MatchL4Dst(proto, sp.Port, 0),
		}
		owner := ownerServicePrefix + key
		if len(eps) == 0 {
			res.Flows[owner] = []of.Flow{{Table: agentof.DNATTable.ID, Priority: NoEndpointsPriority, Match: match}}
			continue
		}
		res.Flows[owner] = []of.Flow{{Table: agentof.DNATTable.ID, Priority: ServicePriority, Match: match,
			Actions: []of.Action{of.Group{ID: id}}}}
		res.Groups = append(res.Groups, group(id, eps))
	}
	sort.Slice(res.Groups, func(i, j int) bool { return res.Groups[i].ID < res.Groups[j].ID })
	return res
}

// ReleaseUnused frees the group ids of the service ports that the last
// compile did not have, and returns them: their groups are to be deleted
// (deleting a group that was never installed is not an error).
func (c *Compiler) ReleaseUnused() []uint32 { return c.ids.ReleaseUnused() }

// Compile compiles ports with a fresh compiler.
func Compile(ports []ServicePort) Result { return NewCompiler().Compile(ports) }

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
func usableEndpoints(sp *ServicePort) (eps []Endpoint, bad []string) {
	var ready, terminating []Endpoint
	seen := map[netip.AddrPort]bool{}
	for _, ep := range sp.Endpoints {
		ap := netip.AddrPortFrom(ep.IP, ep.Port)
		if !ep.IP.Is4() || ep.Port == 0 {
			bad = append(bad, fmt.Sprintf("endpoint %v: not an IPv4 address and port", ap))
			continue
		}
		if seen[ap] || (sp.InternalTrafficPolicyLocal && !ep.NodeLocal) {
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
