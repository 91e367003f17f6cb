package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// BenchmarkLab measures the lab itself (binaries cached): time from `up` to
// every node Ready for 2 nodes, time for 50 pods to be Running and Ready,
// and the peak resident memory of all the lab's processes meanwhile.
func BenchmarkLab(b *testing.B) {
	for i := 0; i < b.N; i++ {
		l, err := NewLab("bench")
		if err != nil {
			b.Fatal(err)
		}
		_, _, _ = l.Run("down")
		mem := startMemorySampler(l)
		start := time.Now()
		if err := l.Up("--nodes", "2", "--cni", "bridge"); err != nil {
			dumpLogs(l)
			_ = l.Down()
			b.Fatal(err)
		}
		upTime := time.Since(start)

		podsTime, err := runPods(l, 50)
		peak := mem.stop()
		if derr := l.Down(); derr != nil {
			b.Error(derr)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(upTime.Seconds(), "s/up-2-nodes-ready")
		b.ReportMetric(podsTime.Seconds(), "s/50-pods-running")
		b.ReportMetric(float64(peak)/(1<<20), "MiB/peak-lab-rss")
	}
}

// runPods creates n pods spread by the scheduler and waits until all are
// Running and Ready.
func runPods(l *Lab, n int) (time.Duration, error) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := webDeployment("default", "bench", int32(n))
	start := time.Now()
	if _, err := l.Client.AppsV1().Deployments("default").Create(c, d, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	ready := allRunningReady(n)
	for {
		list, err := l.Client.CoreV1().Pods("default").List(c, metav1.ListOptions{LabelSelector: "app=bench"})
		if err == nil && ready(list.Items) {
			return time.Since(start), nil
		}
		if c.Err() != nil {
			var items []corev1.Pod
			if list != nil {
				items = list.Items
			}
			return 0, fmt.Errorf("%d pods not Running after 5m:\n%s", n, describePods(items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memorySampler sums the RSS of every process of a lab every 250 ms and
// keeps the maximum.
type memorySampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startMemorySampler(l *Lab) *memorySampler {
	m := &memorySampler{done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if total := labRSS(l); total > m.peak {
				m.peak = total
			}
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memorySampler) stop() uint64 {
	close(m.done)
	m.wg.Wait()
	return m.peak
}

// labRSS is the resident memory of the lab's recorded processes plus every
// process inside one of its namespaces (pod containers), each counted once.
func labRSS(l *Lab) uint64 {
	pids := map[int]bool{}
	recs, _ := proc.Load(l.Layout.PIDDir())
	for _, r := range recs {
		pids[r.PID] = true
	}
	names, _ := netnsutil.List(l.Layout.NetnsPrefix())
	var paths []string
	for _, n := range names {
		paths = append(paths, netnsutil.Path(n))
	}
	inNs, _ := proc.InNetns(paths)
	for _, p := range inNs {
		pids[p] = true
	}
	var total uint64
	for pid := range pids {
		total += rss(pid)
	}
	return total
}

func rss(pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
