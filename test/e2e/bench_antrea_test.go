package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/ovs/ovstest"
)

// BenchmarkCNIAdd measures CNI ADD as the runtime sees it (exec of the
// plugin until its result), for 100 pods on one node, one at a time and 8
// at a time; then the agent's memory with those 100 pods and the flows each
// pod costs.
func BenchmarkCNIAdd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		withBenchLab(b, "bench-antrea", []string{"--nodes", "1", "--cni", "antrea"}, func(l *Lab) {
			flowsBefore := countFlows(b, l, "node-1")
			for _, conc := range []int{1, 8} {
				lat, err := addPods(l, "node-1", 100, conc, fmt.Sprintf("c%d", conc))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(percentile(lat, 50), fmt.Sprintf("ms/add-p50-c%d", conc))
				b.ReportMetric(percentile(lat, 99), fmt.Sprintf("ms/add-p99-c%d", conc))
				if conc == 8 {
					b.ReportMetric(float64(countFlows(b, l, "node-1")-flowsBefore)/100, "flows/pod")
					b.ReportMetric(float64(agentRSS(l, "node-1"))/(1<<20), "MiB/agent-rss-100-pods")
				}
				if err := delPods(l, "node-1", 100, fmt.Sprintf("c%d", conc)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// withBenchLab brings up a fresh lab for a benchmark (taking down one
// left by an earlier run), runs fn, and takes it down even when fn fails.
func withBenchLab(b *testing.B, name string, upArgs []string, fn func(l *Lab)) {
	b.Helper()
	l, err := NewLab(name)
	if err != nil {
		b.Fatal(err)
	}
	_, _, _ = l.Run("down")
	if err := l.Up(upArgs...); err != nil {
		dumpLogs(l)
		_ = l.Down()
		b.Fatal(err)
	}
	defer func() {
		if err := l.Down(); err != nil {
			b.Error(err)
		}
	}()
	fn(l)
}

func percentile(ms []float64, p int) float64 {
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	idx := (len(s)*p + 99) / 100
	if idx > 0 {
		idx--
	}
	return s[idx]
}

func benchCNI(l *Lab, node, command, id, netns string, conf []byte) (string, error) {
	// nsenter only enters the node's network namespace, as a runtime that
	// runs there would be; `ip netns exec` would add a mount namespace and
	// a /sys remount to every call.
	cmd := exec.Command("nsenter", "--net="+netnsutil.Path(l.Layout.NodeNetns(node)), filepath.Join(labBinDir, "antrea-cni"))
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command, "CNI_CONTAINERID="+id, "CNI_NETNS="+netns, "CNI_IFNAME=eth0",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME="+id,
		"CNI_PATH="+l.Layout.CNIBinDir(node))
	cmd.Stdin = bytes.NewReader(conf)
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", command, id, err, out)
	}
	return string(out), nil
}

// addPods creates n namespaces and ADDs them with conc plugin calls in
// flight, returning each ADD's latency in milliseconds.
func addPods(l *Lab, node string, n, conc int, tag string) ([]float64, error) {
	conf := cniConf(l, node, "1.0.0", nil)
	lat := make([]float64, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%sbench-%s-%d", l.Layout.NetnsPrefix(), tag, i)
		if err := netnsutil.Create(name); err != nil {
			return nil, err
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, name string) {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			if _, err := benchCNI(l, node, "ADD", fmt.Sprintf("%s-%d", tag, i), netnsutil.Path(name), conf); err != nil {
				errs <- err
				return
			}
			lat[i] = float64(time.Since(start).Microseconds()) / 1000
		}(i, name)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return lat, nil
}

func delPods(l *Lab, node string, n int, tag string) error {
	conf := cniConf(l, node, "1.0.0", nil)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%sbench-%s-%d", l.Layout.NetnsPrefix(), tag, i)
		if _, err := benchCNI(l, node, "DEL", fmt.Sprintf("%s-%d", tag, i), netnsutil.Path(name), conf); err != nil {
			return err
		}
		if err := netnsutil.Delete(name); err != nil {
			return err
		}
	}
	return nil
}

func countFlows(b *testing.B, l *Lab, node string) int {
	out, errOut, code := l.Run("node-exec", node, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int")
	if code != 0 {
		b.Fatalf("dump-flows: %s", errOut)
	}
	return strings.Count(out, "cookie=")
}

func agentRSS(l *Lab, node string) uint64 {
	pid, err := agentPID(context.Background(), l, node)
	if err != nil {
		return 0
	}
	return rss(pid)
}

// BenchmarkPodThroughput measures TCP throughput (iperf3, 5 s) and request
// latency between two pods on the same node and on two nodes, for antrea,
// for the reference bridge CNI (same node only: it has no cross-node
// path), and for a bare OVS bridge whose only flow is actions=NORMAL on the
// same userspace datapath.
func BenchmarkPodThroughput(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for _, cni := range []string{"antrea", "bridge"} {
			withBenchLab(b, "bench-"+cni, []string{"--nodes", "2", "--cni", cni}, func(l *Lab) {
				pods := benchPods(b, l, cni)
				report := func(name, from, to string) {
					gbps, err := iperf(l.Layout.PodNetns(pods[from].UID), l.Layout.PodNetns(pods[to].UID), pods[to].Status.PodIP)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(gbps, "Gbit/s-"+cni+"-"+name)
					us, err := rrLatency(l.Layout.PodNetns(pods[from].UID), pods[to].Status.PodIP+":80")
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(us, "us/rr-"+cni+"-"+name)
				}
				report("same-node", "node-1-a", "node-1-b")
				if cni == "antrea" {
					report("cross-node", "node-1-a", "node-2-a")
				}
			})
		}
		gbps, err := bareOVSThroughput(b)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(gbps, "Gbit/s-bare-ovs-normal")
	}
}

func benchPods(b *testing.B, l *Lab, cni string) map[string]podInfo {
	b.Helper()
	nodes := []string{"node-1", "node-2"}
	var yaml strings.Builder
	for _, n := range nodes {
		for _, s := range []string{"a", "b"} {
			if cni == "bridge" && n == "node-2" {
				continue
			}
			fmt.Fprintf(&yaml, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s-%s, namespace: default}\nspec:\n  nodeName: %s\n  containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]\n---\n", n, s, n)
		}
	}
	cmd := exec.Command(labBin, "--name", l.Layout.Name, "--state-dir", l.Layout.StateDir, "kubectl", "--", "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("create pods: %v: %s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		out, _, code := l.Run("kubectl", "--", "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid} {.status.podIP} {.status.phase}{\"\\n\"}{end}")
		if code == 0 {
			pods := map[string]podInfo{}
			running := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				if len(f) == 4 && f[3] == "Running" {
					pods[f[0]] = podInfo{UID: types.UID(f[1]), Status: podStatus{PodIP: f[2]}}
					running++
				}
			}
			if (cni == "bridge" && running == 2) || running == 4 {
				return pods
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.Fatal("benchmark pods not Running")
	return nil
}

type podStatus struct{ PodIP string }

type podInfo struct {
	UID    types.UID
	Status podStatus
}

// iperf runs an iperf3 server in one namespace and a 5 s client in
// another, and returns the received throughput in Gbit/s.
func iperf(clientNs, serverNs, serverIP string) (float64, error) {
	srv := exec.Command("ip", "netns", "exec", serverNs, "iperf3", "-s", "-1", "-p", "5201")
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("start iperf3 server: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var out []byte
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		time.Sleep(100 * time.Millisecond)
		out, err = exec.Command("ip", "netns", "exec", clientNs, "iperf3", "-c", serverIP, "-p", "5201", "-t", "5", "-J").Output()
		if err == nil {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3 client: %w: %s", err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("decode iperf3 output: %w", err)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9, nil
}

// bareOVSThroughput is the baseline: two namespaces on an OVS netdev
// bridge with only the default actions=NORMAL flow, TX checksum offload off
// on both sides as for our pods.
func bareOVSThroughput(b *testing.B) (float64, error) {
	o := ovstest.Start(b)
	o.Vsctl(b, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
	var nss []string
	defer func() {
		for _, n := range nss {
			_ = netnsutil.Delete(n)
		}
	}()
	for i, side := range []string{"a", "b"} {
		ns := "benchbare." + side
		_ = netnsutil.Delete(ns)
		if err := netnsutil.Create(ns); err != nil {
			return 0, err
		}
		nss = append(nss, ns)
		host := "v" + side
		steps := [][]string{
			{"ip", "netns", "exec", o.Netns, "ip", "link", "add", host, "type", "veth", "peer", "name", "p" + side},
			{"ip", "netns", "exec", o.Netns, "ip", "link", "set", "p" + side, "netns", ns},
			{"ip", "netns", "exec", o.Netns, "ip", "link", "set", host, "up"},
			{"ip", "netns", "exec", ns, "ip", "addr", "add", fmt.Sprintf("10.200.0.%d/24", i+1), "dev", "p" + side},
			{"ip", "netns", "exec", ns, "ip", "link", "set", "p" + side, "up"},
			{"ip", "netns", "exec", ns, "ethtool", "-K", "p" + side, "tx", "off"},
		}
		for _, s := range steps {
			if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
				return 0, fmt.Errorf("%v: %w: %s", s, err, out)
			}
		}
		o.Vsctl(b, "add-port", "br0", host)
	}
	srv := exec.Command("ip", "netns", "exec", nss[1], filepath.Join(labBinDir, "lab-agnhost"), "--name", "bare", "--tcp", "80")
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("start lab-agnhost: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	gbps, err := iperf(nss[0], nss[1], "10.200.0.2")
	if err != nil {
		return 0, err
	}
	var us float64
	for attempt := 0; attempt < 20; attempt++ {
		if us, err = rrLatency(nss[0], "10.200.0.2:80"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return 0, err
	}
	b.ReportMetric(us, "us/rr-bare-ovs-normal")
	return gbps, nil
}

// rrLatency is the mean time of one request/response (an HTTP GET on a
// kept-alive connection) from a namespace to addr, over 500 requests.
func rrLatency(netns, addr string) (float64, error) {
	var conn net.Conn
	err := netnsutil.Do(netns, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		conn = c
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	const n = 500
	start := time.Now()
	for i := 0; i < n; i++ {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return float64(time.Since(start).Microseconds()) / n, nil
}
