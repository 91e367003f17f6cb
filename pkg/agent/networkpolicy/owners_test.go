package networkpolicy

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"
)

func TestParseOwners(t *testing.T) {
	tests := []struct {
		owner       string
		uid         types.UID
		dir         string
		index       int
		rule, iso   bool
		established bool
		ip          string
	}{
		{owner: RuleOwnerPrefix("uid-1") + "in/0", uid: "uid-1", dir: "in", index: 0, rule: true},
		{owner: ownerEstablishedPrefix + "uid-1/in/2", uid: "uid-1", dir: "in", index: 2, rule: true, established: true},
		{owner: RuleOwnerPrefix("uid-2") + "out/3", uid: "uid-2", dir: "out", index: 3, rule: true},
		{owner: RuleOwnerPrefix("uid-2") + "sideways/3"},
		{owner: RuleOwnerPrefix("uid-2") + "in/-1"},
		{owner: RuleOwnerPrefix("uid-2") + "in"},
		{owner: RuleOwnerPrefix("") + "in/1"},
		{owner: IsolationOwner(netip.MustParseAddr("10.10.1.5")), iso: true, ip: "10.10.1.5"},
		{owner: ownerIsolationPrefix + "nonsense"},
		{owner: ownerBase},
		{owner: "pod/abc"},
	}
	for _, tt := range tests {
		t.Run(tt.owner, func(t *testing.T) {
			r, ok := ParseRuleOwner(tt.owner)
			assert.Equal(t, tt.rule, ok)
			if tt.rule {
				assert.Equal(t, RuleOwner{PolicyUID: tt.uid, Direction: tt.dir, Index: tt.index, Established: tt.established}, r)
			}
			ip, ok := ParseIsolationOwner(tt.owner)
			assert.Equal(t, tt.iso, ok)
			if tt.iso {
				assert.Equal(t, tt.ip, ip.String())
			}
		})
	}
	assert.True(t, IsRuleOrIsolationOwner(RuleOwnerPrefix("u")+"in/0"))
	assert.True(t, IsRuleOrIsolationOwner(ownerEstablishedPrefix+"u/in/0"))
	assert.True(t, IsRuleOrIsolationOwner(IsolationOwner(netip.MustParseAddr("10.0.0.1"))))
	assert.False(t, IsRuleOrIsolationOwner(ownerBase))
}
