package networkpolicy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

func TestEachIsolated(t *testing.T) {
	web := member("web", node, "10.10.0.3")
	ingressOnly := policy("uid-in", "atg", in)
	egressOnly := policy("uid-out", "atg", out)
	// No policyTypes: ingress always, egress with an egress rule.
	untyped := policy("uid-untyped", "atg", nil, egress(controlplane.NetworkPolicyPeer{}))
	missingGroup := policy("uid-missing", "nope", in)
	policies := []*controlplane.NetworkPolicy{ingressOnly, egressOnly, untyped, missingGroup}
	appliedTo := map[string]*controlplane.AppliedToGroup{"atg": atg("atg", web)}

	collect := func(dir controlplane.Direction) []string {
		var got []string
		EachIsolated(policies, appliedTo, dir, func(p *controlplane.NetworkPolicy, m *controlplane.GroupMember) {
			got = append(got, string(p.UID)+":"+m.Pod.Name)
		})
		return got
	}
	assert.Equal(t, []string{"uid-in:web", "uid-untyped:web"}, collect(controlplane.DirectionIn))
	assert.Equal(t, []string{"uid-out:web", "uid-untyped:web"}, collect(controlplane.DirectionOut))
}
