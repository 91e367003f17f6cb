package networkpolicy

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// l4Match is one match of a port clause: a protocol and a destination
// port value under mask; mask 0 means any port of the protocol.
type l4Match struct {
	proto      uint8
	port, mask uint16
}

func (m l4Match) fields() []of.MatchField {
	f := []of.MatchField{of.MatchEthType(of.EthTypeIPv4), of.MatchIPProto(m.proto)}
	if m.mask != 0 {
		f = append(f, of.MatchL4Dst(m.proto, m.port, m.mask))
	}
	return f
}

func (m l4Match) String() string {
	switch {
	case m.mask == 0:
		return fmt.Sprintf("%d:*", m.proto)
	case m.mask == 0xffff:
		return fmt.Sprintf("%d:%d", m.proto, m.port)
	}
	return fmt.Sprintf("%d:%d/%#x", m.proto, m.port, m.mask)
}

// protoNumber maps a service protocol to its IP protocol; "" is TCP, as in
// Kubernetes.
func protoNumber(p controlplane.Protocol) (uint8, bool) {
	switch p {
	case "", controlplane.ProtocolTCP:
		return of.ProtoTCP, true
	case controlplane.ProtocolUDP:
		return of.ProtoUDP, true
	case controlplane.ProtocolSCTP:
		return of.ProtoSCTP, true
	}
	return 0, false
}

// hasNamedPort reports whether any service names its port.
func hasNamedPort(svcs []controlplane.Service) bool {
	for _, s := range svcs {
		if s.Port != nil && s.Port.Type == intstr.String {
			return true
		}
	}
	return false
}

// resolveServices returns the port matches of svcs, with named ports
// looked up in ports (the destination pod's named container ports; nil
// when there is no such pod). Unknown protocols, invalid numbers and
// names that do not resolve contribute nothing. The result is sorted and
// minimal: a protocol's "any port" subsumes its other matches.
func resolveServices(svcs []controlplane.Service, ports []controlplane.NamedPort) []l4Match {
	var out []l4Match
	for _, s := range svcs {
		proto, ok := protoNumber(s.Protocol)
		if !ok {
			continue
		}
		switch {
		case s.Port == nil:
			out = append(out, l4Match{proto: proto})
		case s.Port.Type == intstr.Int:
			lo := int(s.Port.IntVal)
			if lo < 1 || lo > 0xffff {
				continue
			}
			hi := lo
			if s.EndPort != nil && int(*s.EndPort) > lo {
				hi = min(int(*s.EndPort), 0xffff)
			}
			out = append(out, portRange(proto, lo, hi)...)
		default:
			for _, np := range ports {
				npProto, ok := protoNumber(np.Protocol)
				if ok && np.Name == s.Port.StrVal && npProto == proto && np.Port >= 1 && np.Port <= 0xffff {
					out = append(out, l4Match{proto: proto, port: uint16(np.Port), mask: 0xffff})
				}
			}
		}
	}
	return minimalMatches(out)
}

// portRange covers lo..hi with the fewest value/mask matches: at each
// step the largest aligned power-of-two block that starts at lo and ends
// within hi.
func portRange(proto uint8, lo, hi int) []l4Match {
	var out []l4Match
	for lo <= hi {
		size := 1
		for lo%(size*2) == 0 && lo+size*2-1 <= hi && size*2 <= 0x10000 {
			size *= 2
		}
		out = append(out, l4Match{proto: proto, port: uint16(lo), mask: uint16(0x10000 - size)})
		lo += size
	}
	return out
}

func minimalMatches(ms []l4Match) []l4Match {
	anyPort := map[uint8]bool{}
	for _, m := range ms {
		if m.mask == 0 {
			anyPort[m.proto] = true
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if a.proto != b.proto {
			return a.proto < b.proto
		}
		if a.port != b.port {
			return a.port < b.port
		}
		return a.mask < b.mask
	})
	var out []l4Match
	for i, m := range ms {
		if (anyPort[m.proto] && m.mask != 0) || (i > 0 && m == ms[i-1]) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// signature names a set of resolved port matches, for grouping pods that
// resolve a rule's ports the same way and for conjunction id keys.
func signature(ms []l4Match) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}
