package netpol

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
)

// ipBlockCases are upstream cases 33 to 37: policy deletion, ipBlock egress
// rules built from the pods' IPs, and independent directions.
func (k kit) ipBlockCases() []Case {
	return []Case{
		// Upstream: "should stop enforcing policies after they are deleted".
		{
			Name: "policies-deleted", Context: ContextTCP,
			Upstream: "should stop enforcing policies after they are deleted",
			Steps: []Step{
				{
					Name:   "deny all traffic into and out of x",
					Apply:  list(denyAll(k.x, "deny-all", anyPod())),
					Probes: []Probe{tcp80(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{}, false).ExpectPeer(Peer{}, Peer{Namespace: k.x}, false))},
				},
				{Name: "delete every policy", DeleteAllPolicies: true, Probes: []Probe{tcp80(k.open())}},
			},
		},
		// Upstream: "should allow egress access to server in CIDR block". x/a
		// may only connect to the /32 (or /128) of y/b.
		{
			Name: "egress-to-cidr", Context: ContextTCP,
			Upstream: "should allow egress access to server in CIDR block",
			Steps: []Step{{
				Name: "allow x/a to the host CIDR of y/b only",
				ApplyForIPs: func(ips PodIPs) ([]*networkingv1.NetworkPolicy, error) {
					ybHost, err := k.hostOf(ips, k.yb)
					if err != nil {
						return nil, err
					}
					return list(egressPolicy(k.x, "xa-to-yb-cidr", podIs("a"), outRule{To: []peer{cidr(ybHost)}})), nil
				},
				Probes: []Probe{tcp80(k.open().ExpectFrom(k.xa, false).Set(k.xa, k.yb, true))},
			}},
		},
		// Upstream: "should enforce except clause while egress access to
		// server in CIDR block". x/a may connect to the /4 around x/b except
		// x/b itself; the table assumes every pod IP is in that /4.
		{
			Name: "egress-to-cidr-except", Context: ContextTCP,
			Upstream: "should enforce except clause while egress access to server in CIDR block",
			Steps: []Step{{
				Name:        "allow x/a to the /4 around x/b except x/b",
				ApplyForIPs: k.wideExceptXB,
				Probes:      []Probe{tcp80(k.open().Set(k.xa, k.xb, false))},
			}},
		},
		// Upstream: "should ensure an IP overlapping both IPBlock.CIDR and
		// IPBlock.Except is allowed". As upstream does, the second step
		// replaces the first policy (same name) with one allowing x/b's host
		// CIDR only.
		{
			Name: "egress-cidr-except-then-host", Context: ContextTCP,
			Upstream: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
			Steps: []Step{
				{
					Name:        "allow x/a to the /4 around x/b except x/b",
					ApplyForIPs: k.wideExceptXB,
					Probes:      []Probe{tcp80(k.open().Set(k.xa, k.xb, false))},
				},
				{
					Name: "update the policy to allow x/a to the host CIDR of x/b only",
					ApplyForIPs: func(ips PodIPs) ([]*networkingv1.NetworkPolicy, error) {
						xbHost, err := k.hostOf(ips, k.xb)
						if err != nil {
							return nil, err
						}
						return list(egressPolicy(k.x, "xa-to-cidr", podIs("a"), outRule{To: []peer{cidr(xbHost)}})), nil
					},
					Probes: []Probe{tcp80(k.open().ExpectFrom(k.xa, false).Set(k.xa, k.xb, true))},
				},
			},
		},
		// Upstream: "should enforce policies to check ingress and egress
		// policies can be controlled independently based on PodSelector".
		// Allowing all egress of x/a does not open its ingress once another
		// policy isolates it.
		{
			Name: "ingress-and-egress-independent", Context: ContextTCP,
			Upstream: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
			Steps: []Step{
				{
					Name:   "allow all egress of x/a",
					Apply:  list(egressPolicy(k.x, "xa-egress-all", podIs("a"), outRule{})),
					Probes: []Probe{tcp80(k.open())},
				},
				{
					Name:   "deny all ingress of x/a",
					Apply:  list(ingressPolicy(k.x, "xa-deny-ingress", podIs("a"))),
					Probes: []Probe{tcp80(k.open().ExpectTo(k.xa, false))},
				},
			},
		},
	}
}

// hostOf returns the host CIDR of pod.
func (k kit) hostOf(ips PodIPs, pod PodID) (string, error) {
	ip, ok := ips[pod]
	if !ok {
		return "", fmt.Errorf("no IP for pod %s", pod)
	}
	return hostCIDR(ip)
}

// wideExceptXB is the policy "x/a may connect to the /4 around x/b, except
// x/b", named xa-to-cidr.
func (k kit) wideExceptXB(ips PodIPs) ([]*networkingv1.NetworkPolicy, error) {
	xbHost, err := k.hostOf(ips, k.xb)
	if err != nil {
		return nil, err
	}
	wide, err := wideCIDR(ips[k.xb])
	if err != nil {
		return nil, err
	}
	return list(egressPolicy(k.x, "xa-to-cidr", podIs("a"), outRule{To: []peer{cidr(wide, xbHost)}})), nil
}
