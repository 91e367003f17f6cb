// Package networkpolicy turns the controller's internal NetworkPolicies
// (pkg/apis/controlplane) into OpenFlow flows for this node, Antrea style,
// and keeps them installed.
//
// The flows are a function of a State (the policies, the groups they
// refer to, and this node's pod ports) plus the conjunction ids allocated
// so far; compiling does no I/O. The Compiler is incremental: it keeps
// what each policy contributed to each flow, and a compile recompiles
// only the policies whose object, groups (by pointer: State objects are
// immutable, a change comes as a new object) or local pods changed. It
// returns either every flow by owner (Compile, CompileKeyed) or what
// changed since the last compile (CompileChanges: flows set and keys
// removed, by owner). The Reconciler sends the changes through the
// FlowSyncer's SyncPatch, so that one more peer at 10,000 rules costs a
// few flows, not a diff of 120,000; after a failed bundle it syncs every
// owner once (SyncAllKeyed), since the compiler has moved past what the
// switch holds.
//
// # Conjunctive rules
//
// A rule allows traffic when the packet matches one of its peers AND one
// of the pods it applies to AND one of its ports. Each of those sets is a
// clause of an OVS conjunctive match, so a rule costs peers+pods+ports
// flows plus one, never peers×pods×ports:
//
//	table=90 (IngressRule), for an ingress rule with conjunction id 7:
//	  priority=100,ip,nw_src=10.10.1.5                actions=conjunction(7,1/3)   sources
//	  priority=100,ip,nw_src=192.168.0.0/17           actions=conjunction(7,1/3)   (ipBlock minus except)
//	  priority=100,ip,reg1=0x3                        actions=conjunction(7,2/3)   applied-to pods, by output port
//	  priority=100,tcp,tp_dst=8080                    actions=conjunction(7,3/3)   ports
//	  priority=90,conj_id=7,ip                        actions=load:7->reg6,resubmit(,105)   allow
//
//	table=50 (EgressRule), for an egress rule with conjunction id 8:
//	  priority=100,ip,nw_src=10.10.0.3                actions=conjunction(8,1/3)   applied-to pods, by source IP
//	  priority=100,ip,nw_dst=10.20.0.0/16             actions=conjunction(8,2/3)   destinations
//	  priority=100,udp,tp_dst=53                      actions=conjunction(8,3/3)   ports
//	  priority=90,conj_id=8,ip                        actions=load:8->reg5,resubmit(,70)    allow
//
// An allow flow loads the rule's conjunction id into the register of its
// direction (openflow.EgressRuleReg reg5, IngressRuleReg reg6); the
// commit of a new connection copies both into its ct_label, which is how
// the flow exporter names the rules that allowed a connection
// (Compiler.Rules, Reconciler.Rule map the ids back). Each rule also gets
// one flow that counts the rest of its connections, owned apart
// (established/<uid>/<dir>/<index>):
//
//	priority=211,ct_state=-new+est,ct_label=0x700000000/0xffffffff00000000,ip actions=resubmit(,105)
//
// the bypass of established packets, for those whose ingress rule (bits
// 32-63; the egress rule in bits 0-31, in table 50) is this one. The
// allow flows' counters are a rule's sessions, the two together its
// packets and bytes (NetworkPolicy statistics, pkg/agent/policystats).
//
// Applied-to pods are those of the policy's AppliedToGroups that run on
// this node and have an OVS port (State.LocalPods); ingress matches them
// by reg1, the output port L2 forwarding loaded, egress by source IP
// (SpoofGuard guarantees it).
//
// A rule with no peers (an empty NetworkPolicyPeer: any address) has no
// peer clause, a rule with no ports no port clause. A rule with neither is
// a single clause, which OVS cannot conjoin: it becomes one allow flow per
// pod at the allow priority (priority=90,ip,reg1=0x3 actions=load:<id>->reg6,
// resubmit(,105)); it still gets an id. Rules whose single clause has the
// same match share that flow, which loads the id of the rule whose owner
// (below) sorts first, whatever order their ids were allocated in.
// A peer that names groups or blocks that resolve to no address allows
// nothing (fail closed), and so does a rule whose ports all fail to
// resolve. Services with no port match the protocol only.
//
// Clause flows of different rules often have the same match (a pod that
// several rules apply to, a port, a peer in a shared address group). OVS
// identifies a flow by table, priority and match, so such flows are merged
// into one flow carrying one conjunction action per rule:
// actions=conjunction(3,2/2),conjunction(7,2/3).
//
// ipBlock excepts are compiled away: the block becomes the smallest set of
// CIDRs that covers the block minus its excepts (10.0.0.0/16 except
// 10.0.1.0/24 is 8 prefixes), each a flow of the peer clause. An except
// cannot be a higher-priority flow: it would have to remove one address
// from one conjunction only, and a conjunction clause cannot be negated.
// Other peers of the rule (a pod whose IP falls in an except) still match
// with their own flows, as the peers of a rule are a union.
//
// Port ranges (port..endPort) are covered by the fewest value/mask
// matches of the destination port (8000-8080: 8000/0xffc0, 8064/0xfff0,
// 8080). Named ports are resolved on the destination pods: on the
// applied-to pods for ingress, on the peer pods for egress (never on
// ipBlocks, or with no peers). When they resolve to different numbers on
// different pods, the rule is split into one conjunction per set of
// resolved ports, each with the pods that resolve that way.
//
// Conjunction ids are stable per (policy UID, rule index, resolved ports)
// and come from an allocator that reuses ids freed by earlier compiles;
// an id freed by a Realize is reused only after that Realize succeeded.
//
// # Isolation
//
// For each applied-to pod of a policy with Ingress in its policyTypes:
// table=100,priority=100,ip,reg1=<ofport> actions=drop; with Egress:
// table=60,priority=100,ip,nw_src=<pod IP> actions=drop. Each drop has a
// Traceflow companion one priority above (101), the same match plus
// reg0[18] (TraceflowBit), that sends a traced packet to the agent instead
// of dropping it, so that a Traceflow names the isolation. Allowed traffic
// skips those tables (table 90 allows resubmit to 105, table 50 allows to
// 70). Packets of established connections bypass both directions: table
// 90 has priority=210,ct_state=-new+est in the base pipeline, and this
// package adds the same in table 50, so that the replies of a connection
// an egress-isolated server accepted leave it. Packets from the gateway
// (reg0[0..15]=1, and with State.GatewayIP set, nw_src=the gateway IP:
// the node itself, e.g. kubelet probes) are allowed in table 90 only; the
// egress tables match pod source IPs, which gateway packets never have,
// and the gateway match tests where a packet entered, so it cannot let a
// pod's packets out.
//
// # Priorities
//
//	tables 50 and 90 (rules):
//	  210       established/related bypass (-new+est)
//	  205       gateway-sourced traffic allowed (table 90)
//	  101..204  free: higher-precedence policy tiers, each a clause/allow pair
//	  100       NetworkPolicy clause flows (conjunction actions)
//	  90        NetworkPolicy allow flows (conj_id=..., single-clause rules)
//	  1..89     free: lower-precedence tiers (e.g. a baseline tier)
//	  0         miss, to the default table
//	tables 60 and 100 (defaults):
//	  102..     free: tiers that must run before isolation
//	  101       isolation's Traceflow companions (traced packets only)
//	  100       isolation: drop what no rule allowed
//	  0         miss
//
// A tier lives in a band of its own so that its clause flows never share a
// priority with another tier's: OVS falls through to lower priorities when
// no conjunction at a priority completes, which is what makes a packet
// that matches only some clauses of a rule reach the next rule or the miss.
//
// # Owners
//
// Every flow has one owner, a FlowSyncer key:
//
//	networkpolicy/base                          gateway and established bypass flows
//	networkpolicy/rule/<uid>/<in|out>/<index>   a rule's allow flows (conj_id and single-clause)
//	networkpolicy/match/<table>                 the merged clause flows of a table
//	networkpolicy/isolation/<pod IP>            a pod's isolation drops and their Traceflow companions
//
// Either way a change in one policy sends only its rule flows and the
// merged clause flows whose actions it changes, in one atomic bundle, so
// that traffic that stays allowed is never dropped in between.
package networkpolicy
