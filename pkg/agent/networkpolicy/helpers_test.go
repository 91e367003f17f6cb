package networkpolicy

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// randomRule returns a policy with one rule of direction dir that has
// nPeers peer pods, nPods applied-to pods on this node and nPorts ports.
func randomRule(dir controlplane.Direction, nPeers, nPods, nPorts int) *State {
	var peers, pods []controlplane.GroupMember
	local := map[netip.Addr]uint32{}
	for i := 0; i < nPeers; i++ {
		peers = append(peers, member(fmt.Sprintf("peer%d", i), "node-2", fmt.Sprintf("10.10.1.%d", i+1)))
	}
	for i := 0; i < nPods; i++ {
		ip := fmt.Sprintf("10.10.0.%d", i+10)
		pods = append(pods, member(fmt.Sprintf("pod%d", i), node, ip))
		local[netip.MustParseAddr(ip)] = uint32(i + 10)
	}
	var svcs []controlplane.Service
	for i := 0; i < nPorts; i++ {
		svcs = append(svcs, tcp(1000+i))
	}
	r := ingress(groups("ag"), svcs...)
	if dir == controlplane.DirectionOut {
		r = egress(groups("ag"), svcs...)
	}
	s := state([]*controlplane.NetworkPolicy{policy("uid", "atg", []controlplane.Direction{dir}, r)},
		[]*controlplane.AppliedToGroup{atg("atg", pods...)}, []*controlplane.AddressGroup{ag("ag", peers...)})
	s.LocalPods = local
	return s
}

func countFlows(flows map[string][]of.Flow, prefix string) int {
	n := 0
	for owner, fs := range flows {
		if strings.HasPrefix(owner, prefix) {
			n += len(fs)
		}
	}
	return n
}

// The flows of a rule are the sum of its peers, pods and ports (plus one
// conj_id flow), never their product.
func TestFlowCountIsSumNotProduct(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		dir := controlplane.DirectionIn
		if i%2 == 1 {
			dir = controlplane.DirectionOut
		}
		nPeers, nPods, nPorts := 1+rnd.Intn(30), 1+rnd.Intn(30), rnd.Intn(10)
		flows := Compile(randomRule(dir, nPeers, nPods, nPorts))
		name := fmt.Sprintf("%s peers=%d pods=%d ports=%d", dir, nPeers, nPods, nPorts)
		require.Equal(t, nPeers+nPods+nPorts, countFlows(flows, ownerMatchPrefix), name)
		require.Equal(t, 1, countFlows(flows, ownerRulePrefix), name)
		require.Equal(t, 2*nPods, countFlows(flows, ownerIsolationPrefix), name+": a drop and its Traceflow report per pod")
		require.Equal(t, 2, countFlows(flows, ownerBase), name)
	}
	flows := Compile(randomRule(controlplane.DirectionIn, 100, 100, 100))
	assert.Equal(t, 300, countFlows(flows, ownerMatchPrefix), "100 peers, pods and ports: 300 clause flows, not 1,000,000")
}

func TestSubtractExcepts(t *testing.T) {
	pfx := netip.MustParsePrefix
	cases := []struct {
		cidr    string
		excepts []string
		want    []string
	}{
		{"10.0.0.0/16", nil, []string{"10.0.0.0/16"}},
		{"10.0.0.0/16", []string{"10.0.0.0/16"}, nil},
		{"10.0.0.0/16", []string{"10.0.0.0/8"}, nil},
		{"10.0.0.0/16", []string{"192.168.0.0/24"}, []string{"10.0.0.0/16"}},
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, []string{"10.0.0.0/32", "10.0.0.2/31"}},
		{"0.0.0.0/0", []string{"128.0.0.0/1"}, []string{"0.0.0.0/1"}},
	}
	for _, c := range cases {
		var got []string
		for _, p := range blockPrefixes(controlplane.IPBlock{CIDR: c.cidr, Except: c.excepts}) {
			got = append(got, p.String())
		}
		assert.Equal(t, c.want, got, "%s except %v", c.cidr, c.excepts)
	}
	// Exactness: every address of a /22 is covered iff it is in no except.
	excepts := []netip.Prefix{pfx("10.0.1.0/24"), pfx("10.0.2.7/32"), pfx("10.0.3.128/26")}
	cover := subtract(pfx("10.0.0.0/22"), excepts)
	for i := 0; i < 1024; i++ {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		excepted := false
		for _, e := range excepts {
			excepted = excepted || e.Contains(a)
		}
		covered := 0
		for _, p := range cover {
			if p.Contains(a) {
				covered++
			}
		}
		require.Equal(t, !excepted, covered == 1, a.String())
		require.LessOrEqual(t, covered, 1, "prefixes do not overlap")
	}
}

func TestPortRangeCoverIsExactAndMinimal(t *testing.T) {
	got := portRange(of.ProtoTCP, 8000, 8080)
	assert.Equal(t, []l4Match{{6, 8000, 0xffc0}, {6, 8064, 0xfff0}, {6, 8080, 0xffff}}, got)
	assert.Equal(t, []l4Match{{6, 1, 0xffff}, {6, 2, 0xfffe}, {6, 4, 0xfffc}}, portRange(of.ProtoTCP, 1, 7))
	assert.Len(t, portRange(of.ProtoTCP, 1, 65535), 16)
	assert.Equal(t, []l4Match{{6, 32768, 0x8000}}, portRange(of.ProtoTCP, 32768, 65535))

	rnd := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		lo := 1 + rnd.Intn(65535)
		hi := lo + rnd.Intn(65536-lo)
		ms := portRange(of.ProtoTCP, lo, hi)
		// Minimal for a prefix cover: at most 2 blocks per bit length.
		require.LessOrEqual(t, len(ms), 30)
		for _, p := range []int{lo - 1, lo, (lo + hi) / 2, hi, hi + 1, rnd.Intn(65536)} {
			if p < 0 || p > 65535 {
				continue
			}
			n := 0
			for _, m := range ms {
				if uint16(p)&m.mask == m.port {
					n++
				}
			}
			require.Equal(t, p >= lo && p <= hi, n == 1, "port %d in %d-%d", p, lo, hi)
			require.LessOrEqual(t, n, 1)
		}
	}
}

func TestResolveServices(t *testing.T) {
	udp := controlplane.Service{Protocol: controlplane.ProtocolUDP}
	ports := []controlplane.NamedPort{{Name: "http", Port: 8080}, {Name: "dns", Port: 53, Protocol: controlplane.ProtocolUDP}}
	assert.Equal(t, "6:80,6:8080", signature(resolveServices([]controlplane.Service{tcp(80), named("http"), tcp(80)}, ports)))
	// "dns" is a UDP port: a TCP service of that name does not resolve.
	assert.Equal(t, "", signature(resolveServices([]controlplane.Service{named("dns")}, ports)))
	// Any UDP port subsumes UDP port ranges, not TCP ones.
	assert.Equal(t, "6:80,17:*", signature(resolveServices([]controlplane.Service{
		udp, tcp(80), portRangeSvc(controlplane.ProtocolUDP, 1, 100)}, nil)))
	// An endPort below the port is the port alone; invalid ports are dropped.
	assert.Equal(t, "6:80", signature(resolveServices([]controlplane.Service{portRangeSvc(controlplane.ProtocolTCP, 80, 70), tcp(0), tcp(70000)}, nil)))
	// Unknown protocols resolve to nothing.
	assert.Empty(t, resolveServices([]controlplane.Service{{Protocol: "ICMP"}}, nil))
}
