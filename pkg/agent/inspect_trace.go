package agent

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/trace"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
)

var kinds = map[int]string{
	agentof.CategoryBase: "base", agentof.CategoryPod: "pod", agentof.CategoryNode: "node",
	agentof.CategoryPolicy: "networkpolicy", agentof.CategoryService: "service",
}

var conjIDMatch = regexp.MustCompile(`conj_id=(0x[0-9a-f]+|\d+)`)

// TracePacket builds the packet q describes, has ovs-vswitchd trace it
// through the bridge (ofproto/trace), and names each table, the outcome and
// the NetworkPolicy that decided.
func (in *inspector) TracePacket(ctx context.Context, q agentapi.TraceQuery) (*agentapi.TraceResult, error) {
	packet, src, dstIP, service, err := in.tracePacket(ctx, q)
	if err != nil {
		return nil, err
	}
	sock, err := unixctl.VswitchdSocket(in.cfg.OVSRunDir)
	if err != nil {
		return nil, err
	}
	raw, err := unixctl.Call(ctx, sock, "ofproto/trace", in.cfg.OVSBridge, packet)
	if err != nil {
		return nil, fmt.Errorf("ofproto/trace: %w", err)
	}
	parsed := trace.Parse(raw)
	res := &agentapi.TraceResult{Packet: packet, Service: service, Raw: raw}
	// A Service's select group picks its endpoint by a datapath hash and
	// a recirculation that ofproto/trace cannot follow: pick a bucket
	// ourselves and trace the packet again as DNATed to its endpoint.
	if group, ok := endingGroup(parsed, raw); ok {
		if ep, ok := in.groupEndpoint(group); ok {
			dnat := q
			dnat.Destination, dnat.DstPort = ep.Addr().String(), int(ep.Port())
			if dnat.Protocol == "icmp" {
				dnat.DstPort = q.DstPort
			}
			packet2, _, dst2, _, err := in.tracePacket(ctx, dnat)
			if err == nil {
				raw2, err := unixctl.Call(ctx, sock, "ofproto/trace", in.cfg.OVSBridge, packet2)
				if err != nil {
					return nil, fmt.Errorf("ofproto/trace: %w", err)
				}
				res.Endpoint = ep.String()
				res.Raw += "\n\n# the packet as DNATed by group " + strconv.FormatUint(uint64(group), 10) + " to " + ep.String() + "\n" + raw2
				res.Steps = in.steps(res.Steps, parsed)
				res.Steps = append(res.Steps, agentapi.TraceStep{Kind: "service", Table: parsed.Steps[len(parsed.Steps)-1].Table,
					TableName: "(group " + strconv.FormatUint(uint64(group), 10) + ")", Match: "bucket to endpoint " + ep.String(),
					Actions: []string{"ct(commit,nat(dst=" + ep.String() + "))", "trace again from table 0 as DNATed"}})
				parsed2 := trace.Parse(raw2)
				res.Steps = in.steps(res.Steps, parsed2)
				res.Outcome, res.Decision = in.outcome(parsed2, res.Steps, src, dst2)
				return res, nil
			}
		}
	}
	res.Steps = in.steps(res.Steps, parsed)
	res.Outcome, res.Decision = in.outcome(parsed, res.Steps, src, dstIP)
	return res, nil
}

// steps appends the parsed trace's steps, named.
func (in *inspector) steps(out []agentapi.TraceStep, parsed trace.Result) []agentapi.TraceStep {
	for _, s := range parsed.Steps {
		step := agentapi.TraceStep{Table: s.Table, TableName: agentof.TableName(s.Table), Match: s.Match, NoMatch: s.NoMatch, Actions: s.Actions}
		if !s.NoMatch {
			step.Kind = kinds[trace.Category(s.Cookie)]
		}
		if m := conjIDMatch.FindStringSubmatch(s.Match); m != nil {
			step.Policy = in.conjunctionPolicy(m[1])
		} else if step.Kind == "networkpolicy" {
			step.Policy = in.rulePolicy(s)
		}
		out = append(out, step)
	}
	return out
}

// endingGroup returns the group a trace ended in because OVS could not
// follow its bucket choice.
func endingGroup(parsed trace.Result, raw string) (uint32, bool) {
	if len(parsed.Steps) == 0 || !strings.Contains(raw, "no live bucket") {
		return 0, false
	}
	last := parsed.Steps[len(parsed.Steps)-1]
	for _, a := range last.Actions {
		if v, ok := strings.CutPrefix(a, "group:"); ok {
			id, err := strconv.ParseUint(v, 10, 32)
			return uint32(id), err == nil
		}
	}
	return 0, false
}

// groupEndpoint is the endpoint of the first bucket of an installed
// service group that DNATs (ct nat(dst=...)).
func (in *inspector) groupEndpoint(id uint32) (netip.AddrPort, bool) {
	if in.group == nil {
		return netip.AddrPort{}, false
	}
	g, ok := in.group(id)
	if !ok {
		return netip.AddrPort{}, false
	}
	for _, b := range g.Buckets {
		for _, a := range b.Actions {
			ct, ok := a.(of.CT)
			if !ok || ct.NAT == nil || !ct.NAT.DNAT {
				continue
			}
			ip, ok := netip.AddrFromSlice(ct.NAT.IPMin)
			if ok {
				return netip.AddrPortFrom(ip.Unmap(), ct.NAT.PortMin), true
			}
		}
	}
	return netip.AddrPort{}, false
}

// destinationIP resolves namespace/name to a pod's IP or, when there is no
// such pod, to a Service's ClusterIP (then service is its name).
func (in *inspector) destinationIP(ctx context.Context, ns, name string) (ip netip.Addr, service string, err error) {
	if p, ok := in.localPod(func(p podconfig.Pod) bool { return p.PodNamespace == ns && p.PodName == name }); ok {
		return p.IP, "", nil
	}
	ip, err = in.podIP(ctx, ns, name)
	if err == nil {
		return ip, "", nil
	}
	if !apierrors.IsNotFound(err) || in.serviceIP == nil {
		return ip, "", fmt.Errorf("destination pod %s/%s: %w", ns, name, err)
	}
	svcIP, svcErr := in.serviceIP(ctx, ns, name)
	if svcErr != nil {
		if apierrors.IsNotFound(svcErr) {
			return ip, "", fmt.Errorf("destination %s/%s: no pod or Service of that name: %w", ns, name, agentapi.ErrNotFound)
		}
		return ip, "", fmt.Errorf("destination Service %s/%s: %w", ns, name, svcErr)
	}
	return svcIP, ns + "/" + name, nil
}

// tracePacket is the ofproto/trace flow of q, with the Service the
// destination named ("" for a pod or an IP).
func (in *inspector) tracePacket(ctx context.Context, q agentapi.TraceQuery) (string, podconfig.Pod, netip.Addr, string, error) {
	var none podconfig.Pod
	var noIP netip.Addr
	ns, name, ok := agentapi.SplitNamespacedName(q.Source)
	if !ok {
		return "", none, noIP, "", fmt.Errorf("source %q: want namespace/name of a pod on this node", q.Source)
	}
	src, ok := in.localPod(func(p podconfig.Pod) bool { return p.PodNamespace == ns && p.PodName == name })
	if !ok {
		return "", none, noIP, "", fmt.Errorf("source pod %s on this node: %w", q.Source, agentapi.ErrNotFound)
	}
	var dstIP netip.Addr
	var service string
	if dns, dname, named := agentapi.SplitNamespacedName(q.Destination); named {
		ip, svc, err := in.destinationIP(ctx, dns, dname)
		if err != nil {
			return "", none, noIP, "", err
		}
		dstIP, service = ip, svc
	} else {
		ip, err := netip.ParseAddr(q.Destination)
		if err != nil || !ip.Is4() {
			return "", none, noIP, "", fmt.Errorf("destination %q: want namespace/name of a pod or a Service, or an IPv4 address", q.Destination)
		}
		dstIP = ip
	}
	// A pod reaches a pod of its own node directly (one L2 segment), any
	// other address through its gateway.
	dstMAC := GatewayMAC(in.gatewayIP).String()
	if p, ok := in.localPod(func(p podconfig.Pod) bool { return p.IP == dstIP }); ok {
		dstMAC = p.MAC.String()
	}
	proto := strings.ToLower(q.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	port := q.DstPort
	if port == 0 {
		port = 80
	}
	if port < 1 || port > 65535 {
		return "", none, noIP, "", fmt.Errorf("dstPort %d: must be between 1 and 65535", port)
	}
	l4 := ""
	switch proto {
	case "tcp":
		l4 = ",tcp_src=40000,tcp_dst=" + strconv.Itoa(port) + ",tcp_flags=syn"
	case "udp":
		l4 = ",udp_src=40000,udp_dst=" + strconv.Itoa(port)
	case "icmp":
		l4 = ",icmp_type=8,icmp_code=0"
	default:
		return "", none, noIP, "", fmt.Errorf("protocol %q: must be tcp, udp or icmp", q.Protocol)
	}
	return fmt.Sprintf("%s,in_port=%d,dl_src=%s,dl_dst=%s,nw_src=%s,nw_dst=%s,nw_ttl=64%s",
		proto, src.OFPort, src.MAC, dstMAC, src.IP, dstIP, l4), src, dstIP, service, nil
}

func (in *inspector) localPod(match func(podconfig.Pod) bool) (podconfig.Pod, bool) {
	for _, p := range in.pods() {
		if match(p) {
			return p, true
		}
	}
	return podconfig.Pod{}, false
}

// conjunctionPolicy names the policy rule whose flows match conj_id=id
// (decimal as OVS prints it, hex as the agent does).
func (in *inspector) conjunctionPolicy(id string) string {
	want, err := strconv.ParseUint(id, 0, 32)
	if err != nil {
		return ""
	}
	owners := in.flows.OwnedFlows(func(o string) bool { return strings.HasPrefix(o, networkpolicy.OwnerPrefix) })
	for owner, flows := range owners {
		for _, f := range flows {
			for _, m := range conjIDMatch.FindAllStringSubmatch(flowMatch(f.String()), -1) {
				if got, err := strconv.ParseUint(m[1], 0, 32); err == nil && got == want {
					return in.describeRule(owner)
				}
			}
		}
	}
	return ""
}

// rulePolicy names the policy rule of a matched flow that is not a
// conjunction (a rule of one clause): the rule flow of that table and
// priority whose match is the same set of fields.
func (in *inspector) rulePolicy(s trace.Step) string {
	want := matchSet(s.Match)
	found := ""
	owners := in.flows.OwnedFlows(func(o string) bool { return strings.HasPrefix(o, networkpolicy.OwnerPrefix+"rule/") })
	for owner, flows := range owners {
		for _, f := range flows {
			if f.Table != s.Table || int(f.Priority) != s.Priority {
				continue
			}
			if sameSet(want, matchSet(flowMatch(f.String()))) {
				if found != "" && found != owner {
					return "" // ambiguous
				}
				found = owner
			}
		}
	}
	if found == "" {
		return ""
	}
	return in.describeRule(found)
}

// flowMatch is the match part of a flow printed by of.Flow.String.
func flowMatch(flow string) string {
	m, _, _ := strings.Cut(flow, " actions=")
	var keep []string
	for _, f := range strings.Split(m, ",") {
		if k, _, _ := strings.Cut(f, "="); k == "cookie" || k == "table" || k == "priority" {
			continue
		}
		keep = append(keep, f)
	}
	return strings.Join(keep, ",")
}

// matchSet normalizes a match to a set of field=value, with OVS's protocol
// shorthands expanded.
func matchSet(match string) map[string]bool {
	shorthand := map[string][]string{
		"ip": {"dl_type=0x800"}, "arp": {"dl_type=0x806"},
		"tcp": {"dl_type=0x800", "nw_proto=6"}, "udp": {"dl_type=0x800", "nw_proto=17"},
		"sctp": {"dl_type=0x800", "nw_proto=132"}, "icmp": {"dl_type=0x800", "nw_proto=1"},
	}
	set := map[string]bool{}
	for _, f := range strings.Split(match, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if exp, ok := shorthand[f]; ok {
			for _, e := range exp {
				set[e] = true
			}
			continue
		}
		set[f] = true
	}
	return set
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// describeRule turns a rule owner (networkpolicy/rule/<uid>/<dir>/<index>)
// into "NetworkPolicy ns/name, ingress rule 1".
func (in *inspector) describeRule(owner string) string {
	rest, ok := strings.CutPrefix(owner, networkpolicy.OwnerPrefix+"rule/")
	if !ok {
		return owner
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return owner
	}
	policy := parts[0]
	if st := in.policies(); st != nil {
		for _, p := range st.Policies {
			if string(p.UID) == parts[0] {
				policy = p.Namespace + "/" + p.Name
			}
		}
	}
	dir := "ingress"
	if parts[1] == "out" {
		dir = "egress"
	}
	return fmt.Sprintf("NetworkPolicy %s, %s rule %s", policy, dir, parts[2])
}

var reg1Load = regexp.MustCompile(`(?:set_field:(0x[0-9a-f]+)->reg1$|load:(0x[0-9a-f]+)->NXM_NX_REG1\[)`)

// outcome says where the packet went and which policy decided. The
// pipeline's own decision counts (the output port it loaded into reg1 and
// output in table 110): a trace cannot always follow the datapath into the
// tunnel.
func (in *inspector) outcome(r trace.Result, steps []agentapi.TraceStep, src podconfig.Pod, dstIP netip.Addr) (string, string) {
	decision := ""
	outPort, output := -1, false
	for _, s := range steps {
		if s.Policy != "" {
			decision = "allowed by " + s.Policy
		}
		for _, a := range s.Actions {
			if m := reg1Load.FindStringSubmatch(a); m != nil {
				v := m[1] + m[2]
				if n, err := strconv.ParseUint(v, 0, 32); err == nil {
					outPort = int(n)
				}
			}
			if s.Table == agentof.OutputTable.ID && strings.HasPrefix(a, "output:") {
				output = true
			}
		}
	}
	if output && len(r.OutputPorts) > 0 {
		outPort = r.OutputPorts[len(r.OutputPorts)-1]
	}
	if !output || outPort < 0 {
		last := steps[len(steps)-1]
		where := fmt.Sprintf("dropped in table %d %s", last.Table, last.TableName)
		switch {
		case last.Table == agentof.IngressDefaultTable.ID || last.Table == agentof.EgressDefaultTable.ID:
			dir, isolated := "ingress", dstIP.String()
			if dst, ok := in.localPod(func(p podconfig.Pod) bool { return p.IP == dstIP }); ok {
				isolated = dst.PodNamespace + "/" + dst.PodName
			}
			if last.Table == agentof.EgressDefaultTable.ID {
				dir, isolated = "egress", src.PodNamespace+"/"+src.PodName
			}
			return where, fmt.Sprintf("dropped: %s is isolated for %s by %s, and no rule of them allows this packet", isolated, dir, in.isolatingPolicies(isolated, dir == "ingress"))
		case last.Policy != "":
			return where, "dropped by " + last.Policy
		}
		return where, decision
	}
	switch uint32(outPort) {
	case TunnelOFPort:
		return "sent into the tunnel to node " + r.TunnelDst, decision
	case GatewayOFPort:
		return "sent to the node through " + in.cfg.HostGateway, decision
	}
	if p, ok := in.localPod(func(p podconfig.Pod) bool { return p.OFPort == uint32(outPort) }); ok {
		return fmt.Sprintf("delivered to pod %s/%s (port %d)", p.PodNamespace, p.PodName, outPort), decision
	}
	return fmt.Sprintf("sent out of port %d", outPort), decision
}

// isolatingPolicies names the realized policies that isolate pod in the
// direction.
func (in *inspector) isolatingPolicies(pod string, ingress bool) string {
	var names []string
	if in.realized != nil {
		policies, appliedTo := in.realized()
		names = isolatingPolicies(policies, appliedTo, pod, ingress)
	}
	if len(names) == 0 {
		return "NetworkPolicies"
	}
	for i, n := range names {
		names[i] = "NetworkPolicy " + n
	}
	return strings.Join(names, ", ")
}
