package netpol

// extraCases have no upstream counterpart.
func (k kit) extraCases() []Case {
	fromYOnTCP80To81 := inRule{From: []peer{namespaces(nsIs("y"))}, Ports: []npPort{portRange(tcp, 80, 81)}}
	yOnlyToXA := func() *Table {
		return k.open().ExpectTo(k.xa, false).ExpectPeer(Peer{Namespace: k.y}, Peer{Namespace: k.x, Pod: "a"}, true)
	}
	return []Case{
		// An endPort range covers both ends, and only its protocol.
		{
			Name: "ingress-port-range", Context: ContextExtra,
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-y-on-80-81", podIs("a"), fromYOnTCP80To81)),
				tcp80(yOnlyToXA()), tcp81(yOnlyToXA()), udp80(k.open().ExpectTo(k.xa, false))),
		},
		// A range ending below a port leaves it out.
		{
			Name: "egress-port-range-excludes-81", Context: ContextExtra,
			Steps: applyThen(list(egressPolicy(k.x, "x-to-79-80", anyPod(), outRule{Ports: []npPort{portRange(nil, 79, 80)}})),
				tcp80(k.open()), tcp81(k.open().ExpectFromNamespace(k.x, false))),
		},
		// Named ports on UDP and SCTP resolve to their own protocol only.
		{
			Name: "ingress-named-ports-udp-sctp", Context: ContextExtra,
			Steps: applyThen(list(ingressPolicy(k.x, "xa-on-serve-81-udp-80-sctp", podIs("a"),
				inRule{Ports: []npPort{namedPort(udp, "serve-81-udp"), namedPort(sctp, "serve-80-sctp")}})),
				udp81(k.open()), udp80(k.open().ExpectTo(k.xa, false)),
				sctp80(k.open()), sctp81(k.open().ExpectTo(k.xa, false)),
				tcp81(k.open().ExpectTo(k.xa, false))),
		},
		// A named port whose container port has another protocol than the
		// rule's (here the TCP default) matches nothing.
		{
			Name: "ingress-named-port-protocol-mismatch", Context: ContextExtra,
			Steps: applyThen(list(ingressPolicy(k.x, "xa-on-serve-80-udp-as-tcp", podIs("a"), inRule{Ports: []npPort{namedPort(nil, "serve-80-udp")}})),
				tcp80(k.open().ExpectTo(k.xa, false)), udp80(k.open().ExpectTo(k.xa, false))),
		},
	}
}
