package networkpolicy

import "github.com/ovs-cni/antrea/pkg/apis/controlplane"

// EachIsolated calls f with each policy that isolates pods in dir and each
// member of its AppliedToGroups (a member in several groups of a policy
// comes once per group): the pods whose traffic in dir the policy's
// isolation drops unless a rule allows it.
func EachIsolated(policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup, dir controlplane.Direction,
	f func(p *controlplane.NetworkPolicy, m *controlplane.GroupMember)) {
	for _, p := range policies {
		ingress, egress := policyTypes(p)
		if (dir == controlplane.DirectionIn && !ingress) || (dir == controlplane.DirectionOut && !egress) {
			continue
		}
		for _, g := range p.AppliedToGroups {
			if atg := appliedTo[g]; atg != nil {
				for i := range atg.Members {
					f(p, &atg.Members[i])
				}
			}
		}
	}
}
