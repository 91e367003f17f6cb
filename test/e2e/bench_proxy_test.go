package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/ovs-cni/antrea/pkg/lab/cluster"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// BenchmarkServiceSync compares the service proxy with kube-proxy
// (nftables mode, built from the same Kubernetes release) in one 2-node
// lab: node-1 runs our agent, node-2 kube-proxy (its own agent stopped).
// At 1,000, 5,000 and 10,000 selectorless Services with one EndpointSlice
// of 10 ready endpoints each (created through the API server, no pods),
// each proxy is started and timed from its process start to its first
// successful sync (as its own last-sync metric reports it), with its own
// sync-duration metric and its memory; then 5 endpoint changes (one
// EndpointSlice updated, with the last-change-trigger-time annotation
// set just before the update) are timed by each proxy's network
// programming latency metric, from the trigger to the data path.
func BenchmarkServiceSync(b *testing.B) {
	for i := 0; i < b.N; i++ {
		withBenchLab(b, "bench-svc", []string{"--nodes", "2", "--cni", "antrea"}, func(l *Lab) {
			rows, err := benchServiceSync(l, []int{1000, 5000, 10000}, 5)
			for _, r := range rows {
				k := fmt.Sprintf("%dk", r.services/1000)
				b.ReportMetric(r.ours.firstSync, "s/antrea-first-sync-"+k)
				b.ReportMetric(r.ours.syncMetric, "s/antrea-sync-metric-"+k)
				b.ReportMetric(r.ours.rssMiB, "MiB/antrea-rss-"+k)
				b.ReportMetric(percentile(r.ours.changes, 50), "ms/antrea-change-p50-"+k)
				b.ReportMetric(percentile(r.ours.changes, 100), "ms/antrea-change-max-"+k)
				b.ReportMetric(r.kube.firstSync, "s/kube-proxy-first-sync-"+k)
				b.ReportMetric(r.kube.syncMetric, "s/kube-proxy-sync-metric-"+k)
				b.ReportMetric(r.kube.rssMiB, "MiB/kube-proxy-rss-"+k)
				b.ReportMetric(percentile(r.kube.changes, 50), "ms/kube-proxy-change-p50-"+k)
				b.ReportMetric(percentile(r.kube.changes, 100), "ms/kube-proxy-change-max-"+k)
				b.ReportMetric(r.kube.firstSync/r.ours.firstSync, "x/first-sync-ratio-"+k)
			}
			if err != nil {
				dumpLogs(l)
				b.Fatal(err)
			}
		})
	}
}

// proxyFigures are one proxy's figures at one size.
type proxyFigures struct {
	firstSync  float64   // s from process start to the first successful sync
	syncMetric float64   // s, the first sync by the proxy's own metric
	rssMiB     float64   // resident memory after the first sync
	changes    []float64 // ms, network programming latency of each change
}

type serviceSyncRow struct {
	services   int
	ours, kube proxyFigures
}

// proxyUnderTest is one proxy: how to fetch its metrics and the names of
// the metrics it is read by.
type proxyUnderTest struct {
	name                                          string
	metrics                                       *http.Client
	metricsURL                                    string
	lastSync, syncDuration, programming, services string
	pid                                           int
}

// agentMetricsSource reads a node's agent's /metrics on its API socket.
func agentMetricsSource(l *Lab, node string) proxyUnderTest {
	sock := cluster.AgentAPISocket(l.Layout, node)
	return proxyUnderTest{name: node + " antrea-agent", metricsURL: "http://agent/metrics",
		metrics: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}}
}

func benchServiceSync(l *Lab, sizes []int, changes int) ([]serviceSyncRow, error) {
	c, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	const ns = "bench-svc"
	if _, err := l.Client.CoreV1().Namespaces().Create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	// node-2 is kube-proxy's: its agent must not proxy as well.
	if err := cluster.StopAgent(c, l.Layout, "node-2", 2*time.Minute); err != nil {
		return nil, err
	}
	kubeProxyBin, err := kubeBinary("kube-proxy")
	if err != nil {
		return nil, err
	}
	ours := agentMetricsSource(l, "node-1")
	ours.lastSync, ours.syncDuration = "antrea_agent_proxy_last_sync_timestamp_seconds", "antrea_agent_proxy_sync_duration_seconds"
	ours.programming, ours.services = "antrea_agent_proxy_network_programming_duration_seconds", "antrea_agent_proxy_service_ports"
	kube := proxyUnderTest{name: "kube-proxy",
		metrics: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: netnsutil.Dialer(l.Layout.NodeNetns("node-2"))}},
		metricsURL: "http://127.0.0.1:10249/metrics",
		lastSync:   "kubeproxy_sync_proxy_rules_last_timestamp_seconds", syncDuration: "kubeproxy_sync_proxy_rules_duration_seconds",
		programming: "kubeproxy_network_programming_duration_seconds"}

	var rows []serviceSyncRow
	created := 0
	for _, size := range sizes {
		if err := createSelectorlessServices(c, l, ns, created, size); err != nil {
			return rows, err
		}
		created = size
		row := serviceSyncRow{services: size}

		// Ours: restart the agent with every Service already in the API.
		// Timed from the new agent process's start (its own
		// process_start_time_seconds), not from the pod's deletion.
		if err := cluster.RestartAgent(c, l.Layout, "node-1", 5*time.Minute); err != nil {
			return rows, err
		}
		if ours.pid, err = agentPID(c, l, "node-1"); err != nil {
			return rows, err
		}
		fams, err := scrape(c, ours)
		if err != nil {
			return rows, err
		}
		started := time.Unix(0, int64(gaugeValue(fams, "process_start_time_seconds")*1e9))
		if row.ours, err = firstSync(c, ours, started, size); err != nil {
			return rows, err
		}

		// kube-proxy, on node-2.
		started = time.Now()
		rec, err := proc.Start(l.Layout.PIDDir(), proc.Spec{
			Name:  "node-2-kube-proxy",
			Netns: l.Layout.NodeNetns("node-2"),
			Args: []string{kubeProxyBin, "--kubeconfig=" + l.Layout.AdminKubeconfig(), "--hostname-override=node-2",
				"--proxy-mode=nftables", "--cluster-cidr=10.10.0.0/16",
				"--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256",
				// Leave the machine's conntrack settings alone.
				"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
				"--v=1"},
			LogFile: filepath.Join(l.Layout.LogDir(), "node-2-kube-proxy.log"),
		})
		if err != nil {
			return rows, err
		}
		kube.pid = rec.PID
		row.kube, err = firstSync(c, kube, started, 0)
		if err != nil {
			_ = rec.Stop(5 * time.Second)
			return rows, err
		}

		// Changes, seen by both.
		for k := 0; k < changes; k++ {
			before, counts := map[string]float64{}, map[string]uint64{}
			for _, p := range []proxyUnderTest{ours, kube} {
				n, sum, err := histogram(c, p, p.programming)
				if err != nil {
					_ = rec.Stop(5 * time.Second)
					return rows, err
				}
				before[p.name], counts[p.name] = sum, n
			}
			if err := changeOneEndpoint(c, l, ns, fmt.Sprintf("svc-%d", k*97%size), k); err != nil {
				_ = rec.Stop(5 * time.Second)
				return rows, err
			}
			for _, p := range []proxyUnderTest{ours, kube} {
				n, sum, err := waitProgrammed(c, p, counts[p.name])
				if err != nil {
					_ = rec.Stop(5 * time.Second)
					return rows, err
				}
				if n-counts[p.name] != 1 {
					fmt.Printf("%s observed %d programming latencies for one change; taking their mean\n", p.name, n-counts[p.name])
				}
				ms := (sum - before[p.name]) * 1000 / float64(n-counts[p.name])
				if p.name == ours.name {
					row.ours.changes = append(row.ours.changes, ms)
				} else {
					row.kube.changes = append(row.kube.changes, ms)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := rec.Stop(10 * time.Second); err != nil {
			return rows, err
		}
		rows = append(rows, row)
		fmt.Printf("services=%d antrea: first sync %.2f s (own metric %.3f s), %.0f MiB, change p50 %.1f ms | kube-proxy: first sync %.2f s (own metric %.3f s), %.0f MiB, change p50 %.1f ms\n",
			size, row.ours.firstSync, row.ours.syncMetric, row.ours.rssMiB, percentile(row.ours.changes, 50),
			row.kube.firstSync, row.kube.syncMetric, row.kube.rssMiB, percentile(row.kube.changes, 50))
	}
	return rows, nil
}

// createSelectorlessServices creates Services svc-from..svc-(to-1), each
// with one EndpointSlice of 10 ready endpoints, 16 at a time.
func createSelectorlessServices(c context.Context, l *Lab, ns string, from, to int) error {
	g, gc := errgroup.WithContext(c)
	g.SetLimit(16)
	for i := from; i < to; i++ {
		g.Go(func() error {
			name := fmt.Sprintf("svc-%d", i)
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
			if _, err := l.Client.CoreV1().Services(ns).Create(gc, svc, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create service %s: %w", name, err)
			}
			eps := make([]string, 10)
			for e := range eps {
				// 10.200.0.0/16 is routed nowhere: the endpoints need
				// not answer, only be programmed.
				eps[e] = fmt.Sprintf("10.200.%d.%d", (i*10+e)/250%250, (i*10+e)%250+1)
			}
			if _, err := l.Client.DiscoveryV1().EndpointSlices(ns).Create(gc, endpointSlice(ns, name, eps), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create endpoint slice of %s: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func endpointSlice(ns, svc string, ips []string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-1", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}})
	}
	return s
}

// changeOneEndpoint replaces the first endpoint of svc's slice, with the
// trigger time annotation set to now.
func changeOneEndpoint(c context.Context, l *Lab, ns, svc string, k int) error {
	s, err := l.Client.DiscoveryV1().EndpointSlices(ns).Get(c, svc+"-1", metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.Endpoints[0].Addresses = []string{fmt.Sprintf("10.201.%d.%d", k/250, k%250+1)}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[corev1.EndpointsLastChangeTriggerTime] = time.Now().Format(time.RFC3339Nano)
	_, err = l.Client.DiscoveryV1().EndpointSlices(ns).Update(c, s, metav1.UpdateOptions{})
	return err
}

// firstSync waits for p's first successful sync and reads its figures.
// minPorts, when not 0, is how many service ports p must report.
func firstSync(c context.Context, p proxyUnderTest, started time.Time, minPorts int) (proxyFigures, error) {
	var f proxyFigures
	for {
		fams, err := scrape(c, p)
		if err == nil {
			last := gaugeValue(fams, p.lastSync)
			// kube-proxy sets its last-sync time before it observes the
			// sync's duration: wait for both.
			var hist *dto.Histogram
			if h := fams[p.syncDuration]; h != nil && len(h.GetMetric()) > 0 {
				hist = h.GetMetric()[0].GetHistogram()
			}
			if last > 0 && hist != nil && hist.GetSampleCount() > 0 && (minPorts == 0 || int(gaugeValue(fams, p.services)) >= minPorts) {
				f.firstSync = time.Unix(0, int64(last*1e9)).Sub(started).Seconds()
				// The first sync; later ones (none expected) would only
				// add to the sum.
				f.syncMetric = hist.GetSampleSum() / float64(hist.GetSampleCount())
				rss, err := rssMiB(p.pid)
				if err != nil {
					return f, err
				}
				f.rssMiB = rss
				return f, nil
			}
		}
		select {
		case <-c.Done():
			return f, fmt.Errorf("%s: no first sync (last scrape error: %v)", p.name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitProgrammed waits until p's programming histogram counts more than
// count, and returns its count and sum.
func waitProgrammed(c context.Context, p proxyUnderTest, count uint64) (uint64, float64, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		n, sum, err := histogram(c, p, p.programming)
		if err == nil && n > count {
			return n, sum, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("%s: the endpoint change was not programmed within 5 minutes", p.name)
}

func histogram(c context.Context, p proxyUnderTest, name string) (uint64, float64, error) {
	fams, err := scrape(c, p)
	if err != nil {
		return 0, 0, err
	}
	fam := fams[name]
	if fam == nil || len(fam.GetMetric()) == 0 {
		return 0, 0, nil
	}
	h := fam.GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum(), nil
}

func scrape(c context.Context, p proxyUnderTest) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(c, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.metrics.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %s: %s", p.metricsURL, resp.Status, body)
	}
	var parser expfmt.TextParser
	return parser.TextToMetricFamilies(resp.Body)
}

func gaugeValue(fams map[string]*dto.MetricFamily, name string) float64 {
	fam := fams[name]
	if fam == nil || len(fam.GetMetric()) == 0 {
		return 0
	}
	return fam.GetMetric()[0].GetGauge().GetValue()
}

// rssMiB reads a process's resident memory.
func rssMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// kubeBinary is the path of a Kubernetes binary `make kube` built.
func kubeBinary(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "hack", "tools", "kubernetes", "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "k8s.io/kubernetes" && strings.HasPrefix(f[1], "v") {
			p := filepath.Join(repoRoot, "_output", "cache", "kubernetes", f[1], "bin", name)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%s (run 'make kube'): %w", p, err)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("no k8s.io/kubernetes version in hack/tools/kubernetes/go.mod")
}

func findLabProcess(l *Lab, name string) (proc.Record, error) {
	recs, err := proc.Load(l.Layout.PIDDir())
	if err != nil {
		return proc.Record{}, err
	}
	for _, r := range recs {
		if r.Name == name {
			return r, nil
		}
	}
	return proc.Record{}, fmt.Errorf("no pid record for %s", name)
}

// BenchmarkServiceDataPath compares a ClusterIP with the pod IP behind
// it, from client pods on node-1, to a server pod on the same node and
// on node-2: connections per second (short-lived TCP, an HTTP request
// each, 4 at a time, 4 s, alternating pod IP and ClusterIP three times,
// each measure from a fresh client pod; the median is reported)
// and the throughput of one iperf3 stream (5 s). The Service has no
// selector: its EndpointSlice names the one server pod, so every
// connection goes to the same endpoint either way.
func BenchmarkServiceDataPath(b *testing.B) {
	for i := 0; i < b.N; i++ {
		withBenchLab(b, "bench-svcdp", []string{"--nodes", "2", "--cni", "antrea"}, func(l *Lab) {
			pods := benchPods(b, l, "antrea")
			c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// A fresh client pod for every measure: the userspace
			// datapath's conntrack keeps closed connections in TIME_WAIT
			// for 30 s, and a client that cycles through its source ports
			// again within that time (a few seconds at these rates) runs
			// into collisions with the entries of its earlier connections
			// (see docs/troubleshooting.md). Each measure then starts from
			// the same conntrack state, whatever the path.
			const rounds = 3
			var clients []string
			for i := 0; i < 2*2*rounds; i++ {
				pod := labPod("default", fmt.Sprintf("client-%d", i), "node-1")
				if _, err := l.Client.CoreV1().Pods("default").Create(c, pod, metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < 2*2*rounds; i++ {
				if err := wait.PollUntilContextTimeout(c, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
					p, err := l.Client.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("client-%d", i), metav1.GetOptions{})
					if err != nil || p.Status.Phase != corev1.PodRunning {
						return false, nil
					}
					clients = append(clients, l.Layout.PodNetns(p.UID))
					return true, nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			nextClient := func() string {
				ns := clients[0]
				clients = clients[1:]
				return ns
			}
			for _, server := range []struct{ name, pod string }{{"same-node", "node-1-b"}, {"cross-node", "node-2-a"}} {
				podIP := pods[server.pod].Status.PodIP
				vip, err := serviceFor(c, l, "default", server.pod, podIP)
				if err != nil {
					b.Fatal(err)
				}
				var podCPS, svcCPS []float64
				for round := 0; round < rounds; round++ {
					for _, t := range []struct {
						addr string
						out  *[]float64
					}{{podIP, &podCPS}, {vip, &svcCPS}} {
						cps, err := connectionsPerSecond(c, nextClient(), net.JoinHostPort(t.addr, "80"), 4, 4*time.Second)
						if err != nil {
							b.Fatal(err)
						}
						*t.out = append(*t.out, cps)
					}
				}
				client := l.Layout.PodNetns(pods["node-1-a"].UID)
				podGbps, err := iperf(client, l.Layout.PodNetns(pods[server.pod].UID), podIP)
				if err != nil {
					b.Fatal(err)
				}
				svcGbps, err := iperf(client, l.Layout.PodNetns(pods[server.pod].UID), vip)
				if err != nil {
					b.Fatal(err)
				}
				pc, sc := percentile(podCPS, 50), percentile(svcCPS, 50)
				b.ReportMetric(pc, "conn/s-pod-ip-"+server.name)
				b.ReportMetric(sc, "conn/s-cluster-ip-"+server.name)
				b.ReportMetric(sc/pc, "x/cps-ratio-"+server.name)
				b.ReportMetric(podGbps, "Gbit/s-pod-ip-"+server.name)
				b.ReportMetric(svcGbps, "Gbit/s-cluster-ip-"+server.name)
				b.ReportMetric(svcGbps/podGbps, "x/stream-ratio-"+server.name)
				fmt.Printf("%s: conn/s pod IP %v, ClusterIP %v; stream pod IP %.2f Gbit/s, ClusterIP %.2f Gbit/s\n",
					server.name, podCPS, svcCPS, podGbps, svcGbps)
			}
		})
	}
}

// serviceFor creates a selectorless Service with ports 80 and 5201 whose
// EndpointSlice is the pod at ip, and returns its ClusterIP.
func serviceFor(c context.Context, l *Lab, ns, name, ip string) (string, error) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "iperf", Port: 5201, Protocol: corev1.ProtocolTCP}}}}
	created, err := l.Client.CoreV1().Services(ns).Create(c, svc, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	s := endpointSlice(ns, name, []string{ip})
	s.Ports = []discoveryv1.EndpointPort{
		{Name: ptr.To("http"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)},
		{Name: ptr.To("iperf"), Port: ptr.To[int32](5201), Protocol: ptr.To(corev1.ProtocolTCP)}}
	if _, err := l.Client.DiscoveryV1().EndpointSlices(ns).Create(c, s, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	return created.Spec.ClusterIP, nil
}

// connectionsPerSecond opens short-lived TCP connections to addr from
// netns, workers at a time, for d: each sends an HTTP request, reads the
// whole answer and closes. It returns the completed connections per
// second; a failed one fails the measure.
func connectionsPerSecond(c context.Context, netns, addr string, workers int, d time.Duration) (float64, error) {
	dial := netnsutil.Dialer(netns)
	// Wait until addr answers (a new Service is realized within ms).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := oneRequest(c, dial, addr); err == nil {
			break
		} else if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s does not answer: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var done atomic.Int64
	var mu sync.Mutex
	var failed []string
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t := time.Now()
				if err := oneRequest(c, dial, addr); err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v", t.Format("15:04:05.000"), err))
					mu.Unlock()
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		return 0, fmt.Errorf("%d of %d connections to %s failed: %s", len(failed), int(done.Load())+len(failed), addr, strings.Join(failed, "; "))
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

func oneRequest(c context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string) error {
	dc, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	conn, err := dial(dc, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}
