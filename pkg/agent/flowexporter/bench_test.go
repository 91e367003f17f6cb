package flowexporter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/conntrack"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/enrich"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/ipfix"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

const benchConns = 10000

// benchDatapath is the userspace datapath of a node with benchConns live
// connections: its dump-conntrack text and the two learned counter flows
// per connection, whose counters grow at every dump for a tenth of them.
type benchDatapath struct {
	tuples []connection.Tuple
	flows  []of.FlowStats
	dump   string
	dumps  int
}

func newBenchDatapath() *benchDatapath {
	d := &benchDatapath{}
	for i := range benchConns {
		// 100 local pods talk to 100 endpoints on other nodes.
		src := netip.AddrFrom4([4]byte{10, 10, 0, byte(2 + i%100)})
		dst := netip.AddrFrom4([4]byte{10, 10, byte(1 + i/100%100), byte(2 + i%50)})
		d.tuples = append(d.tuples, connection.Tuple{Proto: 6, Src: src, SrcPort: uint16(20000 + i), Dst: dst, DstPort: 8080})
	}
	var b strings.Builder
	for i, t := range d.tuples {
		fmt.Fprintf(&b, "tcp,orig=(src=%s,dst=%s,sport=%d,dport=%d),reply=(src=%s,dst=%s,sport=%d,dport=%d),zone=65520,timeout=86399,labels=0x%x00000001,protoinfo=(state=ESTABLISHED)\n",
			t.Src, t.Dst, t.SrcPort, t.DstPort, t.Dst, t.Src, t.DstPort, t.SrcPort, 1+i%3)
	}
	d.dump = b.String()
	for _, t := range d.tuples {
		for _, reply := range []bool{false, true} {
			state := of.MatchCTState(of.CTTrk, of.CTInv|of.CTRpl)
			if reply {
				state = of.MatchCTState(of.CTTrk|of.CTRpl, of.CTInv)
			}
			d.flows = append(d.flows, of.FlowStats{Flow: of.Flow{Table: agentof.ConnectionStatsTable.ID, Priority: 200,
				Cookie: agentof.LearnedCookie(agentof.CategoryFlowExporter), Match: []of.MatchField{
					of.MatchEthType(of.EthTypeIPv4), state,
					{Field: of.FieldCTNwProto, Value: []byte{6}},
					{Field: of.FieldCTNwSrc, Value: t.Src.AsSlice()},
					{Field: of.FieldCTNwDst, Value: t.Dst.AsSlice()},
					{Field: of.FieldCTTpSrc, Value: []byte{byte(t.SrcPort >> 8), byte(t.SrcPort)}},
					{Field: of.FieldCTTpDst, Value: []byte{byte(t.DstPort >> 8), byte(t.DstPort)}},
				}}, PacketCount: 10, ByteCount: 10000})
		}
	}
	return d
}

// appctl returns the conntrack dump, as ovs-vswitchd prints it.
func (d *benchDatapath) appctl(context.Context, string, ...string) (string, error) {
	return d.dump, nil
}

func (d *benchDatapath) DumpFlows(context.Context, int) ([]of.FlowStats, error) {
	d.dumps++
	for i := 0; i < len(d.flows); i += 10 {
		d.flows[i].PacketCount++
		d.flows[i].ByteCount += 1500
	}
	return d.flows, nil
}

func (d *benchDatapath) Bundle(context.Context, []of.Flow, []of.Flow) error { return nil }

// benchEnricher indexes a cluster of 100 nodes, 100 local pods, 500
// Services and 5,000 endpoints.
func benchEnricher(b *testing.B) *enrich.Enricher {
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	slices := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for n := range 100 {
		_ = nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", n)},
			Spec:   corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.10.%d.0/24", n)},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("172.18.0.%d", 11+n)}}}})
	}
	for s := range 500 {
		_ = svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%d", s)},
			Spec: corev1.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", s/250, 1+s%250), Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}})
		slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%d-x", s)}}
		for e := range 10 {
			node := fmt.Sprintf("node-%d", 1+(s*10+e)/50%99)
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.10.%d.%d", 1+(s*10+e)/50%99, 2+(s*10+e)%50)},
				NodeName: &node, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "bench", Name: fmt.Sprintf("ep-%d-%d", s, e)}})
		}
		_ = slices.Add(slice)
	}
	local := make([]enrich.LocalPod, 100)
	for i := range local {
		local[i] = enrich.LocalPod{Namespace: "bench", Name: fmt.Sprintf("client-%d", i), IP: netip.AddrFrom4([4]byte{10, 10, 0, byte(2 + i)})}
	}
	return enrich.New(enrich.Sources{NodeName: "node-0", LocalPods: func() []enrich.LocalPod { return local },
		Nodes: corelisters.NewNodeLister(nodes), Services: corelisters.NewServiceLister(svcs), EndpointSlices: discoverylisters.NewEndpointSliceLister(slices),
		Rule: func(id uint32) (networkpolicy.Rule, bool) {
			return networkpolicy.Rule{PolicyNamespace: "bench", PolicyName: fmt.Sprintf("np-%d", id), PolicyUID: "uid"}, true
		}})
}

// udpCollector swallows IPFIX messages on a local UDP port.
func udpCollector(b *testing.B) string {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kernelTable is the kernel datapath's conntrack table with the same
// connections, as netlink returns it (with accounting counters); a tenth
// of them move at every dump.
type kernelTable struct{ flows []*netlink.ConntrackFlow }

func newKernelTable(d *benchDatapath) *kernelTable {
	k := &kernelTable{}
	for i, t := range d.tuples {
		labels := make([]byte, 16)
		labels[0], labels[4] = 1, byte(1+i%3)
		k.flows = append(k.flows, &netlink.ConntrackFlow{Zone: agentof.CTZone, Labels: labels, ProtoInfo: &netlink.ProtoInfoTCP{State: 3},
			Forward: netlink.IPTuple{Protocol: 6, SrcIP: t.Src.AsSlice(), SrcPort: t.SrcPort, DstIP: t.Dst.AsSlice(), DstPort: t.DstPort, Packets: 10, Bytes: 10000},
			Reverse: netlink.IPTuple{Protocol: 6, SrcIP: t.Dst.AsSlice(), SrcPort: t.DstPort, DstIP: t.Src.AsSlice(), DstPort: t.SrcPort, Packets: 10, Bytes: 10000}})
	}
	return k
}

func (k *kernelTable) ConntrackTableList(netlink.ConntrackTableType, netlink.InetFamily) ([]*netlink.ConntrackFlow, error) {
	for i := 0; i < len(k.flows); i += 5 {
		k.flows[i].Forward.Packets++
		k.flows[i].Forward.Bytes += 1500
	}
	return k.flows, nil
}

// BenchmarkPoll10kConnections is one poll of the flow exporter on a node
// with 10,000 live connections, in the steady state: read conntrack (the
// userspace datapath's dump text joined with its 20,000 counter flows, or
// the kernel's netlink entries), follow every connection, refresh the
// enrichment index, and export the 2,000 connections that moved since the
// last poll (the active timeout is one poll interval) over IPFIX/UDP to
// a local socket. The datapath's own cost of the dump is not in it. It
// reports the process CPU time per poll, the bytes allocated per poll,
// and the heap the exporter holds while it follows the 10,000
// connections (its state and enrichment index, after a GC).
func BenchmarkPoll10kConnections(b *testing.B) {
	for _, datapath := range []string{"netdev", "kernel"} {
		b.Run(datapath, func(b *testing.B) {
			d := newBenchDatapath()
			var source Source = conntrack.NewNetdev(d.appctl, d, agentof.CTZone, agentof.ConnectionStatsTable.ID, agentof.LearnedCookie(agentof.CategoryFlowExporter))
			if datapath == "kernel" {
				source = conntrack.NewKernel(newKernelTable(d), agentof.CTZone)
			}
			sink, err := ipfix.New(ipfix.Config{Address: udpCollector(b), Protocol: "udp", NodeName: "node-0"})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			clk := clocktesting.NewFakeClock(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
			enricher := benchEnricher(b)
			// The heap before the exporter: the datapath stand-in and
			// the informer caches (the agent has those anyway).
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			exp := New(Config{PollInterval: 5 * time.Second, ActiveTimeout: 5 * time.Second, IdleTimeout: time.Hour, Clock: clk},
				source, enricher, countingSink{sink: sink}, nil)
			ctx := context.Background()
			// The first poll enriches every connection, the second
			// exports every one: measure the polls after.
			for range 2 {
				clk.Step(5 * time.Second)
				if err := exp.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
			records = 0
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				clk.Step(5 * time.Second)
				if err := exp.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/poll")
			b.ReportMetric(float64(records)/float64(b.N), "records/poll")
			runtime.GC()
			var mem runtime.MemStats
			runtime.ReadMemStats(&mem)
			b.ReportMetric((float64(mem.HeapInuse)-float64(base.HeapInuse))/(1<<20), "exporter-heap-MiB")
			if exp.Connections() != benchConns {
				b.Fatalf("following %d connections, want %d", exp.Connections(), benchConns)
			}
		})
	}
}

// BenchmarkExportInterval10k runs the exporter on the real clock with a
// 1 s poll interval (and a 1 s active timeout: every connection that moved
// is exported at every poll) over the same 10,000 connections, 10 polls
// per iteration, and reports how far the time between two polls strays
// from the interval (the drift of the export interval): mean and worst.
func BenchmarkExportInterval10k(b *testing.B) {
	d := newBenchDatapath()
	sink, err := ipfix.New(ipfix.Config{Address: udpCollector(b), Protocol: "udp", NodeName: "node-0"})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	const interval = time.Second
	src := &timedSource{Source: conntrack.NewNetdev(d.appctl, d, agentof.CTZone, agentof.ConnectionStatsTable.ID, agentof.LearnedCookie(agentof.CategoryFlowExporter))}
	exp := New(Config{PollInterval: interval, ActiveTimeout: interval, IdleTimeout: time.Hour}, src, benchEnricher(b), sink, nil)
	polls := 10 * b.N
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(polls)*interval+interval/2)
	defer cancel()
	b.ResetTimer()
	exp.Run(ctx)
	b.StopTimer()
	if len(src.at) < polls-1 {
		b.Fatalf("%d polls in %d intervals", len(src.at), polls)
	}
	var sum, worst time.Duration
	for i := 1; i < len(src.at); i++ {
		drift := src.at[i].Sub(src.at[i-1]) - interval
		if drift < 0 {
			drift = -drift
		}
		sum += drift
		worst = max(worst, drift)
	}
	b.ReportMetric(float64(sum)/float64(len(src.at)-1)/float64(time.Millisecond), "drift-mean-ms")
	b.ReportMetric(float64(worst)/float64(time.Millisecond), "drift-max-ms")
}

// timedSource notes when each poll starts.
type timedSource struct {
	Source
	at []time.Time
}

func (s *timedSource) Dump(ctx context.Context) ([]connection.Conn, error) {
	s.at = append(s.at, time.Now())
	return s.Source.Dump(ctx)
}

var records int

type countingSink struct{ sink Sink }

func (s countingSink) Export(ctx context.Context, rs []connection.Record) error {
	records += len(rs)
	return s.sink.Export(ctx, rs)
}
