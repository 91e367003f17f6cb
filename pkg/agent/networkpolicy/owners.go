package networkpolicy

import (
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// RuleOwner is the owner of a rule's flows, parsed.
type RuleOwner struct {
	PolicyUID types.UID
	// Direction is "in" or "out"; Index the rule's index in the policy's
	// Rules.
	Direction string
	Index     int
	// Established: the owner of the flow that counts the established
	// packets of the rule's connections, not of its allow flows.
	Established bool
}

// ParseRuleOwner parses the owner of a rule's allow flows or of its
// established-packets flow.
func ParseRuleOwner(owner string) (RuleOwner, bool) {
	var r RuleOwner
	rest, found := strings.CutPrefix(owner, ownerRulePrefix)
	if !found {
		if rest, found = strings.CutPrefix(owner, ownerEstablishedPrefix); !found {
			return r, false
		}
		r.Established = true
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || (parts[1] != "in" && parts[1] != "out") {
		return r, false
	}
	index, err := strconv.Atoi(parts[2])
	if err != nil || index < 0 {
		return r, false
	}
	r.PolicyUID, r.Direction, r.Index = types.UID(parts[0]), parts[1], index
	return r, true
}

// ParseIsolationOwner returns the pod IP of an isolation owner.
func ParseIsolationOwner(owner string) (netip.Addr, bool) {
	rest, found := strings.CutPrefix(owner, ownerIsolationPrefix)
	if !found {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(rest)
	return ip, err == nil
}

// IsRuleOrIsolationOwner reports whether owner owns a rule's flows or a
// pod's isolation flows: the flows whose counters are the policies'
// statistics.
func IsRuleOrIsolationOwner(owner string) bool {
	return strings.HasPrefix(owner, ownerRulePrefix) || strings.HasPrefix(owner, ownerEstablishedPrefix) ||
		strings.HasPrefix(owner, ownerIsolationPrefix)
}
