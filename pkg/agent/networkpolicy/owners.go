package networkpolicy

import (
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// ParseRuleOwner returns the policy, the direction ("in" or "out") and the
// index in the policy's Rules of the owner of a rule's allow flows.
func ParseRuleOwner(owner string) (uid types.UID, dir string, index int, ok bool) {
	rest, found := strings.CutPrefix(owner, ownerRulePrefix)
	if !found {
		return "", "", 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || (parts[1] != "in" && parts[1] != "out") {
		return "", "", 0, false
	}
	index, err := strconv.Atoi(parts[2])
	if err != nil || index < 0 {
		return "", "", 0, false
	}
	return types.UID(parts[0]), parts[1], index, true
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

// IsRuleOrIsolationOwner reports whether owner owns a rule's allow flows
// or a pod's isolation flows: the flows whose counters are the policies'
// statistics.
func IsRuleOrIsolationOwner(owner string) bool {
	return strings.HasPrefix(owner, ownerRulePrefix) || strings.HasPrefix(owner, ownerIsolationPrefix)
}
