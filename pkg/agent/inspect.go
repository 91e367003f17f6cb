package agent

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
	"github.com/ovs-cni/antrea/pkg/version"
)

// inspector answers antctl's questions about this agent from its live
// state: the pods it connected, the flows it installed, what it realized.
type inspector struct {
	cfg        config.AgentConfig
	nodeIP     netip.Addr
	podCIDR    netip.Prefix
	gatewayIP  netip.Addr
	started    time.Time
	ovsVersion func() string
	pods       func() []podconfig.Pod
	flows      *agentof.FlowSyncer
	policies   func() *policysync.RealizedState
	ready      func() error
	connected  func() bool
	// podIP finds a pod of another node.
	podIP func(ctx context.Context, namespace, name string) (netip.Addr, error)
	// serviceIP finds a Service's ClusterIP.
	serviceIP func(ctx context.Context, namespace, name string) (netip.Addr, error)
	// realized returns the policies and AppliedToGroups last realized.
	realized func() ([]*controlplane.NetworkPolicy, map[string]*controlplane.AppliedToGroup)
	// group returns an installed service group (nil without the proxy).
	group func(id uint32) (of.GroupEntry, bool)
}

func (in *inspector) PodInterfaces() []agentapi.PodInterface {
	pods := in.pods()
	out := make([]agentapi.PodInterface, 0, len(pods))
	for _, p := range pods {
		out = append(out, agentapi.PodInterface{Namespace: p.PodNamespace, Name: p.PodName, ContainerID: p.ContainerID,
			InterfaceName: p.HostIf, IP: p.IP.String(), MAC: p.MAC.String(), OFPort: p.OFPort})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (in *inspector) Flows(q agentapi.FlowQuery) ([]agentapi.Flow, error) {
	keep := func(string) bool { return true }
	if q.Pod != "" {
		ns, name, ok := agentapi.SplitNamespacedName(q.Pod)
		if !ok {
			return nil, fmt.Errorf("pod %q: want namespace/name", q.Pod)
		}
		var owners []string
		for _, p := range in.pods() {
			if p.PodNamespace == ns && p.PodName == name {
				owners = append(owners, podconfig.Owner(p.ContainerID), networkpolicy.IsolationOwner(p.IP))
			}
		}
		if len(owners) == 0 {
			return nil, fmt.Errorf("pod %s on this node: %w", q.Pod, agentapi.ErrNotFound)
		}
		keep = func(o string) bool {
			for _, w := range owners {
				if o == w {
					return true
				}
			}
			return false
		}
	}
	if q.Policy != "" {
		ns, name, ok := agentapi.SplitNamespacedName(q.Policy)
		if !ok {
			return nil, fmt.Errorf("policy %q: want namespace/name", q.Policy)
		}
		var prefixes []string
		if st := in.policies(); st != nil {
			for _, p := range st.Policies {
				if p.Namespace == ns && p.Name == name {
					prefixes = append(prefixes, networkpolicy.RuleOwnerPrefix(p.UID))
				}
			}
		}
		if len(prefixes) == 0 {
			return nil, fmt.Errorf("NetworkPolicy %s applied on this node: %w", q.Policy, agentapi.ErrNotFound)
		}
		prev := keep
		keep = func(o string) bool {
			for _, p := range prefixes {
				if strings.HasPrefix(o, p) {
					return prev(o)
				}
			}
			return false
		}
	}
	table := -1
	if q.Table != "" {
		t, err := parseTable(q.Table)
		if err != nil {
			return nil, err
		}
		table = int(t)
	}
	var out []agentapi.Flow
	for owner, flows := range in.flows.OwnedFlows(keep) {
		for _, f := range flows {
			if table >= 0 && int(f.Table) != table {
				continue
			}
			out = append(out, agentapi.Flow{Owner: owner, Table: f.Table, TableName: agentof.TableName(f.Table), Priority: f.Priority, Flow: f.String()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Flow < b.Flow
	})
	return out, nil
}

// parseTable accepts a table's number or name.
func parseTable(s string) (uint8, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 0 && n < 256 && agentof.TableName(uint8(n)) != "" {
			return uint8(n), nil
		}
		return 0, fmt.Errorf("table %s: no such table", s)
	}
	var names []string
	for _, t := range agentof.Tables {
		if strings.EqualFold(t.Name, s) {
			return t.ID, nil
		}
		names = append(names, t.Name)
	}
	return 0, fmt.Errorf("table %q: not a table number or one of %s", s, strings.Join(names, ", "))
}

func (in *inspector) Info() agentapi.AgentInfo {
	info := agentapi.AgentInfo{
		NodeName: in.cfg.NodeName, Version: version.Version, OVSVersion: in.ovsVersion(),
		DatapathType: in.cfg.OVSDatapathType, TunnelType: in.cfg.TunnelType,
		NodeIP: in.nodeIP.String(), PodCIDR: in.podCIDR.String(), GatewayIP: in.gatewayIP.String(),
		StartTime: in.started, OVSConnected: in.connected(), FlowRound: in.flows.Round(),
		Pods: len(in.pods()), FlowsByTable: map[string]int{},
	}
	if err := in.ready(); err != nil {
		info.NotReadyReason = err.Error()
	} else {
		info.Ready = true
	}
	if st := in.policies(); st != nil {
		info.NetworkPolicies = len(st.Policies)
	}
	for table, n := range in.flows.CountByTable() {
		info.FlowsByTable[fmt.Sprintf("%d:%s", table, agentof.TableName(table))] = n
	}
	return info
}

// ovsVersionOf reads OVS's version from OVSDB (ovs_version, set by
// ovs-ctl), else from ovs-vswitchd itself (daemons started without
// ovs-ctl leave the column empty).
func ovsVersionOf(get func(context.Context) (string, error), runDir string) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if v, err := get(ctx); err == nil && v != "" {
			return v
		}
		sock, err := unixctl.VswitchdSocket(runDir)
		if err != nil {
			return ""
		}
		out, err := unixctl.Call(ctx, sock, "version")
		if err != nil {
			return ""
		}
		// "ovs-vswitchd (Open vSwitch) 3.1.0"
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		fields := strings.Fields(first)
		if len(fields) == 0 {
			return ""
		}
		return fields[len(fields)-1]
	}
}
