// Package nodebundle is what a node's support bundle holds: the agent's
// state, configuration and logs, the OVS flows, groups and database, the
// OVS daemons' logs, and the node's addresses, routes and nftables. It
// runs the OVS and networking tools through a supportbundle.Runner, reads
// files, and asks the agent's own state in process.
package nodebundle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"sigs.k8s.io/yaml"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
	"github.com/ovs-cni/antrea/pkg/supportbundle"
)

// HostOVSLogDir is where OVS run by the node's init system logs.
const HostOVSLogDir = "/var/log/openvswitch"

// Sources are what a node's bundle reads.
type Sources struct {
	Config config.AgentConfig
	// ConfigFile is the file Config was loaded from.
	ConfigFile string
	// LogFile is where the agent logs besides standard error; empty when
	// it logs to standard error only.
	LogFile string
	Version string
	Runner  supportbundle.Runner
	// Inspector and NetworkPolicies are the agent's state as its API
	// serves it.
	Inspector       agentapi.Inspector
	NetworkPolicies func() *policysync.RealizedState
	Metrics         prometheus.Gatherer
	// OVSLogDirs are searched for ovs-vswitchd.log and ovsdb-server.log
	// (default: ovsRunDir, then HostOVSLogDir).
	OVSLogDirs []string
	Now        func() time.Time
}

// Name is the bundle's name (its folder, and its file without .tar.gz)
// for node at t.
func Name(node string, t time.Time) string {
	return "supportbundle-" + node + "-" + t.UTC().Format("20060102T150405Z")
}

// Write collects the node's bundle into w; it is the agent API's
// BundleFunc.
func (s Sources) Write(ctx context.Context, w io.Writer, opts agentapi.BundleOptions) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	node := s.Config.NodeName
	bw := supportbundle.NewWriter(w, Name(node, now()), "node/"+node, fmt.Sprintf("antrea-agent %s on %s", s.Version, node))
	if err := supportbundle.Collect(ctx, bw, s.Items(opts), supportbundle.Options{MaxItemBytes: int(max(opts.MaxLogBytes, supportbundle.DefaultMaxItemBytes))}); err != nil {
		return err
	}
	return bw.Close()
}

// Items lists what goes into the bundle, in order.
func (s Sources) Items(opts agentapi.BundleOptions) []supportbundle.Item {
	cfg := s.Config
	// The effective value of a key whose default is implicit.
	proxy := cfg.ProxyEnabled()
	cfg.AntreaProxy.Enable = &proxy
	mgmt := "unix:" + filepath.Join(cfg.OVSRunDir, cfg.OVSBridge+".mgmt")
	db := "unix:" + filepath.Join(cfg.OVSRunDir, "db.sock")
	run := func(filter func([]byte) []byte, name string, args ...string) func(context.Context, *supportbundle.Out) error {
		return supportbundle.Command(s.Runner, filter, name, args...)
	}
	items := []supportbundle.Item{
		{Path: "agent/agentinfo.json", Description: "the agent's state (antctl get agentinfo)",
			Collect: supportbundle.JSON(func(context.Context) (any, error) { return s.Inspector.Info(), nil })},
		{Path: "agent/podinterfaces.json", Description: "the pods the agent connected (antctl get podinterface)",
			Collect: supportbundle.JSON(func(context.Context) (any, error) { return s.Inspector.PodInterfaces(), nil })},
		{Path: "agent/networkpolicies.json", Description: "the NetworkPolicies the agent last realized, with their digest",
			Collect: supportbundle.JSON(func(context.Context) (any, error) {
				st := s.NetworkPolicies()
				if st == nil {
					return nil, supportbundle.Skipped("no NetworkPolicy state realized yet")
				}
				return st, nil
			})},
		{Path: "agent/ovsflows.json", Description: "the flows the agent installed, with their tables and owners (antctl get ovsflows)",
			Collect: supportbundle.JSON(func(context.Context) (any, error) { return s.Inspector.Flows(agentapi.FlowQuery{}) })},
		{Path: "agent/config.yaml", Description: "the agent's effective configuration: antrea-agent.conf as loaded, with defaults",
			Collect: func(_ context.Context, out *supportbundle.Out) error {
				data, err := yaml.Marshal(cfg)
				if err != nil {
					return err
				}
				_, _ = out.Write(data)
				return nil
			}},
		{Path: "agent/antrea-agent.conf", Description: "the configuration file as the agent read it at start",
			Collect: supportbundle.FileTail(s.ConfigFile, 1<<20)},
		{Path: "agent/metrics.txt", Description: "the agent's Prometheus metrics", Collect: s.metrics},
	}
	items = append(items, s.logItems(opts)...)
	items = append(items, s.ovsLogItems(opts)...)
	items = append(items,
		supportbundle.Item{Path: "ovs/flows.txt", Description: "the bridge's flows with their counters, by table with the pipeline's table names (ovs-ofctl dump-flows)",
			Collect: run(byTable, "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", mgmt)},
		supportbundle.Item{Path: "ovs/groups.txt", Description: "the bridge's groups (ovs-ofctl dump-groups)",
			Collect: run(nil, "ovs-ofctl", "-O", "OpenFlow15", "dump-groups", mgmt)},
		supportbundle.Item{Path: "ovs/ports.txt", Description: "the bridge's OpenFlow ports (ovs-ofctl show)",
			Collect: run(nil, "ovs-ofctl", "-O", "OpenFlow15", "show", mgmt)},
		supportbundle.Item{Path: "ovs/vsctl-show.txt", Description: "bridges, ports and interfaces (ovs-vsctl show), secrets redacted",
			Collect: run(Redact, "ovs-vsctl", "--db="+db, "--timeout=10", "show")},
		supportbundle.Item{Path: "ovs/ovsdb-dump.txt", Description: "the OVS database (ovsdb-client dump Open_vSwitch), secrets redacted",
			Collect: run(Redact, "ovsdb-client", "--timeout=10", "dump", db, "Open_vSwitch")},
		supportbundle.Item{Path: "ovs/dpif-show.txt", Description: "the datapaths and their ports (ovs-appctl dpif/show)",
			Collect: func(ctx context.Context, out *supportbundle.Out) error {
				sock, err := unixctl.VswitchdSocket(cfg.OVSRunDir)
				if err != nil {
					return err
				}
				return run(nil, "ovs-appctl", "-t", sock, "dpif/show")(ctx, out)
			}},
		supportbundle.Item{Path: "node/ip-addr.txt", Description: "the node's interfaces and addresses", Collect: run(nil, "ip", "-d", "addr", "show")},
		supportbundle.Item{Path: "node/ip-route.txt", Description: "the node's routes, every table", Collect: run(nil, "ip", "route", "show", "table", "all")},
		supportbundle.Item{Path: "node/ip-rule.txt", Description: "the node's routing rules", Collect: run(nil, "ip", "rule", "show")},
		supportbundle.Item{Path: "node/ip-neigh.txt", Description: "the node's neighbour entries", Collect: run(nil, "ip", "neigh", "show")},
		supportbundle.Item{Path: "node/nftables.txt", Description: "the node's nftables ruleset", Collect: run(nil, "nft", "list", "ruleset")},
		supportbundle.Item{Path: "node/uname.txt", Description: "the node's kernel", Collect: run(nil, "uname", "-a")},
	)
	return items
}

func (s Sources) metrics(_ context.Context, out *supportbundle.Out) error {
	if s.Metrics == nil {
		return supportbundle.Skipped("the agent has no metrics registry")
	}
	families, err := s.Metrics.Gather()
	enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("encode metrics: %w", err)
		}
	}
	return err
}

// logItems are the agent's log file and those beside it (rotated ones,
// the controller's when it runs on this node): each the end of its file
// up to opts.MaxLogBytes, at most four such in all.
func (s Sources) logItems(opts agentapi.BundleOptions) []supportbundle.Item {
	if s.LogFile == "" {
		return []supportbundle.Item{{Path: "logs/antrea-agent.log", Description: "the agent's log",
			Collect: func(context.Context, *supportbundle.Out) error {
				return supportbundle.Skipped("the agent logs to standard error only (no --log-file): read its container log (kubectl logs -c antrea-agent)")
			}}}
	}
	return supportbundle.LogFiles(filepath.Dir(s.LogFile), "logs", []string{"antrea-*.log"}, opts.MaxLogBytes, 4*opts.MaxLogBytes)
}

// ovsLogItems are the OVS daemons' logs, found in the first of
// s.OVSLogDirs that has them.
func (s Sources) ovsLogItems(opts agentapi.BundleOptions) []supportbundle.Item {
	dirs := s.OVSLogDirs
	if dirs == nil {
		dirs = []string{s.Config.OVSRunDir, HostOVSLogDir}
	}
	var items []supportbundle.Item
	for _, name := range []string{"ovs-vswitchd.log", "ovsdb-server.log"} {
		var tails []func(context.Context, *supportbundle.Out) error
		var paths []string
		for _, d := range dirs {
			p := filepath.Join(d, name)
			paths = append(paths, p)
			tails = append(tails, supportbundle.FileTail(p, opts.MaxLogBytes))
		}
		items = append(items, supportbundle.Item{Path: "logs/ovs/" + name, Description: "the log of " + strings.TrimSuffix(name, ".log"),
			Collect: func(ctx context.Context, out *supportbundle.Out) error {
				for _, tail := range tails {
					if err := tail(ctx, out); !supportbundle.IsSkipped(err) {
						return err
					}
				}
				return supportbundle.Skipped("none of %s (with ovsManagedBy: container the daemons log to the antrea-ovs container's log)", strings.Join(paths, ", "))
			}})
	}
	return items
}

// psk matches the pre-shared keys of IPsec tunnels in OVS's Interface
// options, as ovs-vsctl and ovsdb-client print them.
var psk = regexp.MustCompile(`(\bpsk\s*[=:]\s*)("(?:[^"\\]|\\.)*"|[^,}\s\]]+)`)

// Redact hides secrets in OVS's output: IPsec pre-shared keys.
func Redact(data []byte) []byte {
	return psk.ReplaceAll(data, []byte(`${1}"<redacted>"`))
}

var tableField = regexp.MustCompile(`\btable=(\d+)`)

// byTable groups ovs-ofctl's flows by table, in table order, each table
// under a comment line with its name in the pipeline and its flow count;
// the flows themselves are as ovs-ofctl printed them, in its order.
func byTable(data []byte) []byte {
	var head []string
	tables := map[int][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.Contains(line, "actions=") {
			head = append(head, line)
			continue
		}
		table := 0 // ovs-ofctl leaves out table=0 in some versions
		if m := tableField.FindStringSubmatch(line); m != nil {
			table, _ = strconv.Atoi(m[1])
		}
		tables[table] = append(tables[table], line)
	}
	ids := make([]int, 0, len(tables))
	for id := range tables {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var b strings.Builder
	for _, h := range head {
		b.WriteString(h + "\n")
	}
	for _, id := range ids {
		name := "(not a table of the pipeline)"
		if id < 256 && agentof.TableName(uint8(id)) != "" {
			name = agentof.TableName(uint8(id))
		}
		fmt.Fprintf(&b, "# table %d %s: %d flows\n", id, name, len(tables[id]))
		for _, l := range tables[id] {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}
