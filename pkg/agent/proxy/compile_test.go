package proxy

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

var update = flag.Bool("update", false, "rewrite golden files")

func local(ep Endpoint) Endpoint { ep.NodeLocal = true; return ep }

func withNodePort(sp ServicePort, nodePort uint16, etpLocal bool) ServicePort {
	sp.NodePort, sp.ExternalTrafficPolicyLocal = nodePort, etpLocal
	return sp
}

func withAffinity(sp ServicePort, seconds uint32) ServicePort {
	sp.AffinityTimeout = seconds
	return sp
}

func ready(ip string, port uint16) Endpoint {
	return Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true}
}

func terminating(ip string, port uint16, serving bool) Endpoint {
	return Endpoint{IP: netip.MustParseAddr(ip), Port: port, Serving: serving, Terminating: true}
}

func svcPort(name, clusterIP string, port uint16, proto Protocol, eps ...Endpoint) ServicePort {
	return ServicePort{Name: name, ClusterIP: netip.MustParseAddr(clusterIP), Port: port, Protocol: proto, Endpoints: eps}
}

// goldenCases are the inputs of the golden tests, also installed into a
// real OVS by the integration test.
func goldenCases() map[string][]ServicePort {
	return map[string][]ServicePort{
		// web: TCP 80 to two pods on 8080, one local, one remote.
		"two_endpoints_tcp": {svcPort("default/web:http", "10.96.0.10", 80, ProtocolTCP,
			ready("10.10.1.7", 8080), ready("10.10.0.3", 8080))},
		// One service, two ports, each its own group.
		"multi_port": {
			svcPort("default/web:http", "10.96.0.10", 80, ProtocolTCP, ready("10.10.0.3", 8080), ready("10.10.0.4", 8080)),
			svcPort("default/web:https", "10.96.0.10", 443, ProtocolTCP, ready("10.10.0.3", 8443), ready("10.10.0.4", 8443)),
		},
		// DNS: port 53 over UDP and TCP, distinct flows and groups.
		"same_port_two_protocols": {
			svcPort("kube-system/kube-dns:dns", "10.96.0.53", 53, ProtocolUDP, ready("10.10.0.5", 53), ready("10.10.1.5", 53)),
			svcPort("kube-system/kube-dns:dns-tcp", "10.96.0.53", 53, ProtocolTCP, ready("10.10.0.5", 53), ready("10.10.1.5", 53)),
			svcPort("default/sctp:s", "10.96.0.53", 53, ProtocolSCTP, ready("10.10.0.6", 5353)),
		},
		// No ready endpoint: the serving terminating ones are used, not the
		// terminating one that stopped serving nor the not-ready one.
		"terminating_fallback": {svcPort("default/web:http", "10.96.0.10", 80, ProtocolTCP,
			terminating("10.10.0.3", 8080, true), terminating("10.10.0.4", 8080, false),
			Endpoint{IP: netip.MustParseAddr("10.10.0.5"), Port: 8080}, terminating("10.10.1.3", 8080, true))},
		// ClientIP affinity, TCP and UDP: buckets name the endpoint in
		// registers and learn; the endpoint flows do the DNAT.
		"session_affinity": {
			withAffinity(svcPort("default/sticky:http", "10.96.0.30", 80, ProtocolTCP, ready("10.10.0.3", 8080), ready("10.10.1.3", 8080)), 10800),
			withAffinity(svcPort("default/sticky:dns", "10.96.0.30", 53, ProtocolUDP, ready("10.10.0.3", 53)), 100000),
		},
		// NodePort, cluster policy: the node-port flow shares the
		// ClusterIP's group. Local policy: its own group with the local
		// endpoint only; none local: drop.
		"node_port": {
			withNodePort(svcPort("default/np:http", "10.96.0.40", 80, ProtocolTCP, local(ready("10.10.0.3", 8080)), ready("10.10.1.3", 8080)), 30080, false),
			withNodePort(svcPort("default/np-local:http", "10.96.0.41", 80, ProtocolTCP, local(ready("10.10.0.3", 8080)), ready("10.10.1.3", 8080)), 30081, true),
			withNodePort(svcPort("default/np-remote:udp", "10.96.0.42", 53, ProtocolUDP, ready("10.10.1.3", 53)), 30082, true),
			withAffinity(withNodePort(svcPort("default/np-sticky:http", "10.96.0.43", 80, ProtocolTCP, local(ready("10.10.0.3", 8080))), 30083, false), 60),
		},
		// No endpoints at all, and no usable one: drop flows, no groups.
		"no_endpoints": {
			svcPort("default/empty:http", "10.96.0.20", 80, ProtocolTCP),
			svcPort("default/unready:http", "10.96.0.21", 80, ProtocolTCP, Endpoint{IP: netip.MustParseAddr("10.10.0.5"), Port: 80}),
		},
	}
}

// render prints the flows in pipeline order with their owners, then the
// groups.
func render(r Result) string {
	var all []of.Flow
	owners := map[string]string{}
	for owner, fs := range r.Flows {
		for _, f := range fs {
			all = append(all, f)
			owners[f.Key()] = strings.TrimPrefix(owner, OwnerPrefix)
		}
	}
	of.SortFlows(all)
	var b strings.Builder
	for _, f := range all {
		fmt.Fprintf(&b, "%-105s [%s]\n", f.String(), owners[f.Key()])
	}
	for _, g := range r.Groups {
		b.WriteString(strings.ReplaceAll(g.String(), ",bucket=", ",\n    bucket="))
		b.WriteString("\n")
	}
	for _, s := range r.Invalid {
		b.WriteString("invalid: " + s + "\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), got)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestGolden(t *testing.T) {
	cases := goldenCases()
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) {
			r := Compile(cases[name])
			assert.Empty(t, r.Invalid)
			for _, g := range r.Groups {
				require.NoError(t, g.Validate())
			}
			golden(t, name, render(r))
		})
	}
}

func TestEndpointSelection(t *testing.T) {
	ips := func(sp ServicePort) []string {
		eps, _ := usableEndpoints(&sp, sp.InternalTrafficPolicyLocal)
		var out []string
		for _, ep := range eps {
			out = append(out, netip.AddrPortFrom(ep.IP, ep.Port).String())
		}
		return out
	}
	// Ready ones win over terminating; duplicates collapse; sorted.
	sp := svcPort("a", "10.96.0.1", 80, ProtocolTCP, ready("10.10.0.9", 80), terminating("10.10.0.1", 80, true),
		ready("10.10.0.10", 80), ready("10.10.0.9", 80), ready("10.10.0.9", 81))
	assert.Equal(t, []string{"10.10.0.9:80", "10.10.0.9:81", "10.10.0.10:80"}, ips(sp))
	// A not-ready duplicate does not hide the ready one.
	sp = svcPort("a", "10.96.0.1", 80, ProtocolTCP, Endpoint{IP: netip.MustParseAddr("10.10.0.9"), Port: 80}, ready("10.10.0.9", 80))
	assert.Equal(t, []string{"10.10.0.9:80"}, ips(sp))
	// Local policy: only node-local endpoints, with the same fallback.
	local := ready("10.10.0.3", 80)
	local.NodeLocal = true
	localTerm := terminating("10.10.0.4", 80, true)
	localTerm.NodeLocal = true
	sp = svcPort("a", "10.96.0.1", 80, ProtocolTCP, local, ready("10.10.1.3", 80))
	sp.InternalTrafficPolicyLocal = true
	assert.Equal(t, []string{"10.10.0.3:80"}, ips(sp))
	sp.Endpoints = []Endpoint{ready("10.10.1.3", 80), localTerm}
	assert.Equal(t, []string{"10.10.0.4:80"}, ips(sp), "no local ready endpoint: local serving terminating one")
	sp.Endpoints = []Endpoint{ready("10.10.1.3", 80)}
	assert.Empty(t, ips(sp), "no local endpoint")
	// Invalid endpoints are reported, not used.
	sp = svcPort("a", "10.96.0.1", 80, ProtocolTCP, ready("10.10.0.3", 0), ready("fd00::1", 80), ready("10.10.0.4", 80))
	eps, bad := usableEndpoints(&sp, sp.InternalTrafficPolicyLocal)
	assert.Len(t, eps, 1)
	assert.Len(t, bad, 2)
}

func TestInvalidServicePorts(t *testing.T) {
	r := Compile([]ServicePort{
		svcPort("v6", "fd00::10", 80, ProtocolTCP, ready("10.10.0.3", 80)),
		svcPort("zero", "10.96.0.1", 0, ProtocolTCP, ready("10.10.0.3", 80)),
		svcPort("icmp", "10.96.0.1", 80, "ICMP", ready("10.10.0.3", 80)),
		svcPort("dup-a", "10.96.0.2", 80, ProtocolTCP, ready("10.10.0.3", 80)),
		svcPort("dup-b", "10.96.0.2", 80, ProtocolTCP, ready("10.10.0.4", 80)),
	})
	assert.Len(t, r.Invalid, 4, r.Invalid)
	assert.Len(t, r.Flows, 1)
	require.Len(t, r.Groups, 1)
	assert.Equal(t, map[string]uint32{"10.96.0.2:80/TCP": 1}, r.GroupIDs)
}

// Group ids stay with their service port across compiles, whatever the
// order of the input, whether or not the port has endpoints; released ids
// are returned and reused lowest first.
func TestGroupIDsStable(t *testing.T) {
	a := svcPort("a", "10.96.0.1", 80, ProtocolTCP, ready("10.10.0.3", 80))
	b := svcPort("b", "10.96.0.2", 80, ProtocolTCP, ready("10.10.0.3", 80))
	c := svcPort("c", "10.96.0.3", 80, ProtocolUDP)
	d := svcPort("d", "10.96.0.4", 80, ProtocolTCP, ready("10.10.0.3", 80))
	comp := NewCompiler()
	r := comp.Compile([]ServicePort{c, b, a})
	assert.Equal(t, map[string]uint32{a.Key(): 1, b.Key(): 2, c.Key(): 3}, r.GroupIDs)
	assert.Empty(t, comp.ReleaseUnused())
	c.Endpoints = []Endpoint{ready("10.10.0.4", 53)}
	r = comp.Compile([]ServicePort{c, a})
	assert.Equal(t, map[string]uint32{a.Key(): 1, c.Key(): 3}, r.GroupIDs)
	require.Len(t, r.Groups, 2)
	assert.Equal(t, uint32(3), r.Groups[1].ID)
	r = comp.Compile([]ServicePort{a, c, d})
	assert.Equal(t, uint32(4), r.GroupIDs[d.Key()], "b's id stays reserved until released")
	assert.Equal(t, []uint32{2}, comp.ReleaseUnused())
	r = comp.Compile([]ServicePort{a, c, d, b})
	assert.Equal(t, map[string]uint32{a.Key(): 1, b.Key(): 2, c.Key(): 3, d.Key(): 4}, r.GroupIDs)
	assert.Empty(t, comp.ReleaseUnused())
	comp.Compile(nil)
	assert.Equal(t, []uint32{1, 2, 3, 4}, comp.ReleaseUnused())
}

// manyEndpoints returns n ready endpoints 10.11.x.y:8080.
func manyEndpoints(n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = ready(netip.AddrFrom4([4]byte{10, 11, byte(i >> 8), byte(i)}).String(), 8080)
	}
	return eps
}

// Thousands of endpoints: one bucket each, equal weights, and the group
// encodes (the client splits it over several messages).
func TestLargeService(t *testing.T) {
	const n = 6000
	r := Compile([]ServicePort{svcPort("big", "10.96.0.100", 80, ProtocolTCP, manyEndpoints(n)...)})
	require.Len(t, r.Groups, 1)
	g := r.Groups[0]
	require.Len(t, g.Buckets, n)
	seen := map[string]bool{}
	for _, bk := range g.Buckets {
		assert.Equal(t, BucketWeight, bk.Weight)
		seen[of.ActionsString(bk.Actions)] = true
	}
	assert.Len(t, seen, n, "one distinct bucket per endpoint")
	require.NoError(t, g.Validate())
}
