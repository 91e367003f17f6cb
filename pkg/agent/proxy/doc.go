// Package proxy compiles Kubernetes ClusterIP services into OpenFlow flows
// and select groups, replacing kube-proxy for traffic that enters the
// bridge (pods, and packets out of the tunnel). Like the networkpolicy
// compiler it is pure: it takes service ports with their endpoints and
// returns flows per owner and groups; it does no I/O. The caller installs
// them (groups and flows in one openflow.Change, so that a flow never
// points at a missing group) and deletes the groups that ReleaseUnused
// returns.
//
// # Design
//
// Service load balancing happens in table 40 (DNAT), between the
// conntrack state check (31) and egress policy (50), in zone 65520, the
// zone every pod packet already goes through in table 30:
//
//	table=40,priority=200,ct_state=+new+trk,tcp,nw_dst=<ClusterIP>,tcp_dst=<port> actions=group:<id>
//	group_id=<id>,type=select,
//	  bucket=weight:100,actions=ct(commit,table=50,zone=65520,nat(dst=<EP1 IP>:<EP1 port>)),
//	  bucket=weight:100,actions=ct(commit,table=50,zone=65520,nat(dst=<EP2 IP>:<EP2 port>))
//
// The first packet of a connection to ClusterIP:port (ct_state=+new+trk,
// as table 30 left it) goes to the service port's select group; OVS picks
// one bucket per connection (a hash of the 5-tuple), and the bucket
// commits the connection in the same zone with a destination NAT to its
// endpoint, then continues in table 50 with the translated packet: egress
// policy (50/60) sees the endpoint as nw_dst, L3 forwarding (70) routes it
// to the local pod, into the tunnel towards the endpoint's node, or (an
// endpoint outside every pod CIDR, such as the API server's host-network
// address) on to the gateway, and ingress policy (90/100) applies to the
// endpoint pod as for direct traffic. Table 105 commits the connection
// again; the entry exists already, so this should only set the gateway
// mark (not yet checked with real traffic: ofproto/trace does not run
// conntrack).
//
// Committing in the bucket is what makes the NAT stick: every later packet
// of the connection, in both directions, is translated by conntrack itself
// provided the zone lookup in table 30 asks for it, with
//
//	table=30,priority=200,ip actions=ct(table=31,zone=65520,nat)
//
// instead of ct(table=31,zone=65520). With nat there, later packets of the
// original direction reach table 40 already DNATed and +est, so they do
// not match the service flow (and cannot be balanced to another endpoint),
// and replies come back with the ClusterIP:port as their source. nat
// without a range does nothing to connections that have no NAT binding, so
// pod-to-pod traffic is unchanged.
//
// # Endpoints
//
// Only ready endpoints get a bucket; when none is ready, serving and
// terminating endpoints do (kube-proxy's fallback). With the Local
// internal traffic policy only node-local endpoints count. Buckets are in
// a stable order (by IP, then port) with equal weights; the client splits
// groups too large for one message (thousands of endpoints).
//
// A service port with no usable endpoint gets a drop flow at priority 190
// (NoEndpointsPriority) instead of the group flow; kube-proxy answers with
// an ICMP port unreachable or a TCP reset, which is still to do.
//
// # Group ids
//
// Group ids are stable per service port (ClusterIP, protocol, port) while
// the port exists, lowest free id first; an id whose port went away is
// only reused after ReleaseUnused, which returns the ids whose groups the
// caller must delete.
package proxy
