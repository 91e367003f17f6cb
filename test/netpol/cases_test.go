package netpol

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestCasesInventory(t *testing.T) {
	m := NewModel(Env{})
	cases := Cases(m)
	require.Len(t, cases, 48)

	perContext := map[string]int{}
	names := map[string]bool{}
	for _, c := range append(cases, ExtraCases(m)...) {
		assert.False(t, names[c.Name], "duplicate case name %s", c.Name)
		names[c.Name] = true
		perContext[c.Context]++
		if c.Context != ContextExtra {
			assert.NotEmpty(t, c.Upstream, c.Name)
		}
		require.NotEmpty(t, c.Steps, c.Name)
		for _, s := range c.Steps {
			assert.NotEmpty(t, s.Name, c.Name)
			require.NotEmpty(t, s.Probes, "%s step %q", c.Name, s.Name)
			for _, p := range s.Probes {
				assert.Equal(t, m.PodIDs(), p.Want.Pods(), c.Name)
			}
		}
	}
	assert.Equal(t, map[string]int{ContextTCP: 42, ContextUDP: 3, ContextSCTP: 3, ContextExtra: 4}, perContext)
}

func TestCasesProtocols(t *testing.T) {
	byName := map[string]Case{}
	for _, c := range Cases(NewModel(Env{})) {
		byName[c.Name] = c
	}
	assert.Equal(t, []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}, byName["ingress-any-port-on-protocol"].Protocols())
	assert.Equal(t, []corev1.Protocol{corev1.ProtocolSCTP}, byName["ingress-on-port-sctp"].Protocols())
	assert.Equal(t, []corev1.Protocol{corev1.ProtocolTCP}, byName["sctp-rule-isolates"].Protocols())
}

// ipv6IPs gives every pod of m an IPv6 address.
func ipv6IPs(m *Model) PodIPs {
	ips := PodIPs{}
	for i, id := range m.PodIDs() {
		ips[id] = fmt.Sprintf("fd00:10:244::%x", i+10)
	}
	return ips
}

// TestCasesAgreeWithEvaluator checks every hand-written table, self cells
// included, against the evaluator, for IPv4 and IPv6 pods and for prefixed
// namespaces.
func TestCasesAgreeWithEvaluator(t *testing.T) {
	for _, env := range []Env{{}, {Prefix: "np-"}} {
		m := NewModel(env)
		for _, ipv6 := range []bool{false, true} {
			var ips PodIPs
			if ipv6 {
				ips = ipv6IPs(m)
			}
			for _, c := range append(Cases(m), ExtraCases(m)...) {
				t.Run(fmt.Sprintf("%s/ipv6=%t/%s", env.Prefix, ipv6, c.Name), func(t *testing.T) {
					require.NoError(t, CrossCheck(m, c, ips))
				})
			}
		}
	}
}

// TestCasesRunOnMemCluster runs every case through RunCase on the
// in-memory cluster, whose prober is the evaluator.
func TestCasesRunOnMemCluster(t *testing.T) {
	m := NewModel(Env{Prefix: "np-"})
	cl := NewMemCluster(m)
	for _, c := range append(Cases(m), ExtraCases(m)...) {
		t.Run(c.Name, func(t *testing.T) {
			require.NoError(t, RunCase(context.Background(), t, m, cl, cl, c, Options{ProbeSelf: true, Workers: 4}))
			assert.Empty(t, cl.World().Policies, "cleanup left policies")
		})
	}
}

// TestCrossCheckCatchesWrongTable makes sure the cross-check is not
// vacuous.
func TestCrossCheckCatchesWrongTable(t *testing.T) {
	m := NewModel(Env{})
	c := Cases(m)[0]
	c.Steps[0].Probes[0].Want = m.NewTable(true)
	err := CrossCheck(m, c, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "*X*")
}

// TestCrossCheckWideCIDRAssumption shows what a lab learns when its pod
// IPs do not share their first four bits: the except case's table no
// longer holds.
func TestCrossCheckWideCIDRAssumption(t *testing.T) {
	m := NewModel(Env{})
	ips := PodIPs{m.Pod("z", "c"): "192.168.0.10"}
	var c Case
	for _, cc := range Cases(m) {
		if cc.Name == "egress-to-cidr-except" {
			c = cc
		}
	}
	err := CrossCheck(m, c, ips)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "z/c")
}
