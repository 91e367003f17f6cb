// Package proxy replaces kube-proxy for traffic that enters the bridge
// (pods, the gateway, the tunnel). The compiler is pure: it takes service
// ports with their endpoints and returns flows per owner and select
// groups, and does no I/O. The Controller watches Services and
// EndpointSlices and applies the result: new and changed groups first (a
// flow must never point at a missing group), then every service port's
// flows in one bundle, then the node ports to the node's nftables, then
// the deletion of groups no flow uses. The Rejecter answers the
// connections that table 40 sends to the agent. docs/ovs-pipeline.md
// shows the flows from a real dump.
//
// # ClusterIP
//
// Table 40 (DNAT) sends the first packet of a connection to ClusterIP:port
// (ct_state=+new+trk in zone 65520, as table 30 left it) to the service
// port's select group; OVS picks a bucket per connection, and the bucket
// commits the connection in the same zone with a DNAT to its endpoint and
// continues in egress policy (50). Because table 30 runs ct(nat) on every
// packet, later packets arrive already translated and replies come back
// with the ClusterIP as source; connections without a NAT binding are not
// touched. Policy, forwarding and the tunnel then treat the endpoint like
// any destination.
//
// # Endpoints
//
// Ready endpoints get a bucket; when none is ready, serving terminating
// ones do (kube-proxy's fallback). With a Local traffic policy
// (internalTrafficPolicy for the ClusterIP, externalTrafficPolicy for node
// ports) only node-local endpoints count. A port with no usable endpoint
// at all sends new connections to the controller (priority 190), and the
// agent answers with a TCP reset or an ICMP port unreachable; a port left
// without endpoints only by its Local policy drops, as kube-proxy does.
// Buckets are in a stable order with equal weights; the openflow client
// splits groups too large for one message.
//
// # Session affinity
//
// Table 31 sends new connections through table 35 (SessionAffinity)
// before table 40. Its flows are learned, one per client, service address
// and port, and only load the chosen endpoint into reg3/reg4 with the
// hit bit. Table 40 sends a hit to table 41 (EndpointDNAT); a miss goes
// to the group, whose buckets only name their endpoint in the registers
// and resubmit to table 41 (OVS does not run learn actions in select
// group buckets). Table 41's per-endpoint flow learns (or refreshes, the
// idle timeout being the Service's timeout) and DNATs. A learned endpoint
// that is gone misses in table 41 and goes back to table 40 with the hit
// bit cleared.
//
// # Node ports
//
// The node's nftables DNAT node-local addresses on a node port to
// openflow.NodePortVirtualIP, same port, which is routed into the gateway;
// table 40 balances it like a ClusterIP, with its own group when its
// endpoints differ from the ClusterIP's. The Cluster policy (and pods as
// clients) is masqueraded to the gateway address as it leaves by gw0.
//
// # Hairpin
//
// A pod reaching itself through its Service is source-NATed to
// openflow.HairpinVirtualIP in table 105 (pipeline, not this package).
//
// # Group ids
//
// Group ids are stable per service port (and per node port that needs its
// own group) while it exists, lowest free id first; an id whose port went
// away is only reused after ReleaseUnused, which returns the ids whose
// groups the caller must delete.
package proxy
