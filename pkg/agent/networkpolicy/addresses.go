package networkpolicy

import (
	"net/netip"
	"sort"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// memberPrefixes returns the IPv4 addresses of a group member as /32s.
func memberPrefixes(m controlplane.GroupMember) []netip.Prefix { return appendMemberPrefixes(nil, m) }

// appendMemberPrefixes appends the IPv4 addresses of a group member as
// /32s to out.
func appendMemberPrefixes(out []netip.Prefix, m controlplane.GroupMember) []netip.Prefix {
	for _, s := range m.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			continue
		}
		out = append(out, netip.PrefixFrom(a, 32))
	}
	return out
}

// blockPrefixes returns the IPv4 CIDRs that cover b.CIDR minus its
// excepts. An invalid CIDR yields nothing (fail closed); an invalid or
// unrelated except is ignored.
func blockPrefixes(b controlplane.IPBlock) []netip.Prefix {
	p, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !p.Addr().Is4() {
		return nil
	}
	p = p.Masked()
	var excepts []netip.Prefix
	for _, e := range b.Except {
		ep, err := netip.ParsePrefix(e)
		if err != nil || !ep.Addr().Is4() {
			continue
		}
		excepts = append(excepts, ep.Masked())
	}
	return subtract(p, excepts)
}

// subtract returns the fewest prefixes that cover p minus the excepts:
// p itself when no except overlaps it, nothing when one contains it,
// otherwise the union of its two halves' results.
func subtract(p netip.Prefix, excepts []netip.Prefix) []netip.Prefix {
	var overlapping []netip.Prefix
	for _, e := range excepts {
		if !e.Overlaps(p) {
			continue
		}
		if e.Bits() <= p.Bits() { // e contains p
			return nil
		}
		overlapping = append(overlapping, e)
	}
	if len(overlapping) == 0 {
		return []netip.Prefix{p}
	}
	lo, hi := halves(p)
	return append(subtract(lo, overlapping), subtract(hi, overlapping)...)
}

// halves splits p (shorter than /32) into its two sub-prefixes.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().As4()
	idx := p.Bits() // the bit that distinguishes the halves
	b[idx/8] |= 0x80 >> (idx % 8)
	hi := netip.PrefixFrom(netip.AddrFrom4(b), bits)
	return lo, hi
}

// sortPrefixes sorts and de-duplicates.
func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	sort.Slice(ps, func(i, j int) bool {
		if c := ps[i].Addr().Compare(ps[j].Addr()); c != 0 {
			return c < 0
		}
		return ps[i].Bits() < ps[j].Bits()
	})
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}

// peerIsAny reports whether a peer selects every address.
func peerIsAny(p controlplane.NetworkPolicyPeer) bool {
	return len(p.AddressGroups) == 0 && len(p.IPBlocks) == 0
}
