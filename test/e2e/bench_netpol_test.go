package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// flowMonitor timestamps the flow table changes of one node's br-int as
// ovs-vswitchd reports them (ovs-ofctl monitor watch:, whose updates come
// on stderr, unbuffered), so latencies are measured to the moment the
// switch changed, without polling.
type flowMonitor struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []flowEvent
}

type flowEvent struct {
	at   time.Time
	line string
}

func startFlowMonitor(l *Lab, node string, table int) (*flowMonitor, error) {
	m := &flowMonitor{}
	m.cmd = exec.Command(labBin, "--name", l.Layout.Name, "--state-dir", l.Layout.StateDir, "node-exec", node, "--",
		"ovs-ofctl", "-O", "OpenFlow15", "monitor", "br-int", fmt.Sprintf("watch:table=%d", table))
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	m.cmd.Stderr = m.cmd.Stdout
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			now := time.Now()
			m.mu.Lock()
			m.events = append(m.events, flowEvent{now, s.Text()})
			m.mu.Unlock()
		}
	}()
	return m, nil
}

func (m *flowMonitor) stop() {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// until waits until ok accepts the events since from, and returns the
// time of the event that completed them.
func (m *flowMonitor) until(from time.Time, timeout time.Duration, ok func(events []string) bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		m.mu.Lock()
		var lines []string
		var last time.Time
		for _, e := range m.events {
			if !e.at.Before(from) {
				lines = append(lines, e.line)
				last = e.at
			}
		}
		m.mu.Unlock()
		if ok(lines) {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("flow events not as expected within %s (%d events since the start, first: %q, last: %q)", timeout, len(lines), lines[:min(len(lines), 3)], lines[max(len(lines)-3, 0):])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lastOnAll waits on every node's monitor and returns the latest time.
func lastOnAll(mons map[string]*flowMonitor, from time.Time, ok func(node string, events []string) bool) (time.Time, error) {
	var last time.Time
	for n, m := range mons {
		t, err := m.until(from, 30*time.Second, func(ev []string) bool { return ok(n, ev) })
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", n, err)
		}
		if t.After(last) {
			last = t
		}
	}
	return last, nil
}

// isolationDrops counts the events of kind (event=ADDED, ...) of
// isolation drops: the flows of table 100 that match an output port
// (reg1), not their Traceflow companions (which send to the controller).
// The monitor prints a drop without actions.
func isolationDrops(events []string, kind string) int {
	return countEvents(events, kind, "reg1=") - countEvents(events, kind, "reg1=", "CONTROLLER")
}

func countEvents(events []string, substrs ...string) int {
	n := 0
	for _, e := range events {
		all := true
		for _, s := range substrs {
			if !strings.Contains(e+" ", s) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}

// BenchmarkPolicyRealization measures NetworkPolicy realization in a
// 3-node lab with 300 pods: (1) from the creation of a policy selecting
// 100 pods to its last flow installed on every node (the isolation drop
// of the last selected pod, not its Traceflow companion, as the switch
// reports it: the agent installs a state in one bundle), 10
// times; (2) from a new peer pod being Ready (as a watch reports it) to
// its IP being in the rule's peer clause on every node, 10 times.
func BenchmarkPolicyRealization(b *testing.B) {
	for i := 0; i < b.N; i++ {
		withBenchLab(b, "bench-np", []string{"--nodes", "3", "--cni", "antrea"}, func(l *Lab) {
			policyLat, peerLat, err := benchRealization(l)
			if err != nil {
				dumpLogs(l)
				b.Fatal(err)
			}
			b.ReportMetric(percentile(policyLat, 50), "ms/policy-p50")
			b.ReportMetric(percentile(policyLat, 99), "ms/policy-p99")
			b.ReportMetric(percentile(peerLat, 50), "ms/peer-p50")
			b.ReportMetric(percentile(peerLat, 99), "ms/peer-p99")
		})
	}
}

func benchRealization(l *Lab) (policyLat, peerLat []float64, err error) {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const ns = "bench-np"
	if _, err := l.Client.CoreV1().Namespaces().Create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, nil, err
	}
	nodes := []string{"node-1", "node-2", "node-3"}
	servers := map[string]int{}
	for i := 0; i < 300; i++ {
		node := nodes[i%3]
		role := "client"
		if i < 100 {
			role = "server"
		}
		pod := labPod(ns, fmt.Sprintf("p%03d", i), node, corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolTCP})
		pod.Labels["role"] = role
		if role == "server" {
			servers[node]++
		}
		if _, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{}); err != nil {
			return nil, nil, err
		}
	}
	total := 0
	for _, n := range servers {
		total += n
	}
	if total != 100 {
		return nil, nil, fmt.Errorf("%d servers, want 100", total)
	}
	for {
		list, err := l.Client.CoreV1().Pods(ns).List(c, metav1.ListOptions{})
		if err == nil && allRunningReady(300)(list.Items) {
			break
		}
		if c.Err() != nil {
			return nil, nil, fmt.Errorf("300 pods not ready: %w", c.Err())
		}
		time.Sleep(500 * time.Millisecond)
	}
	isolation, rules := map[string]*flowMonitor{}, map[string]*flowMonitor{}
	for _, n := range nodes {
		for table, mons := range map[int]map[string]*flowMonitor{100: isolation, 90: rules} {
			m, err := startFlowMonitor(l, n, table)
			if err != nil {
				return nil, nil, err
			}
			defer m.stop()
			mons[n] = m
		}
	}
	time.Sleep(time.Second) // the monitors are listening
	tcp := corev1.ProtocolTCP
	port := func(p int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(p))}}
	}
	np := func(name string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "server"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
					Ports: port(80),
				}},
			},
		}
	}
	for k := 0; k < 10; k++ {
		start := time.Now()
		if _, err := l.Client.NetworkingV1().NetworkPolicies(ns).Create(c, np(fmt.Sprintf("p%d", k)), metav1.CreateOptions{}); err != nil {
			return nil, nil, err
		}
		last, err := lastOnAll(isolation, start, func(n string, ev []string) bool { return isolationDrops(ev, "event=ADDED") == servers[n] })
		if err != nil {
			return nil, nil, fmt.Errorf("policy %d: %w", k, err)
		}
		policyLat = append(policyLat, float64(last.Sub(start).Microseconds())/1000)
		if k == 9 {
			break // keep the last policy for the peer measurements
		}
		del := time.Now()
		if err := l.Client.NetworkingV1().NetworkPolicies(ns).Delete(c, fmt.Sprintf("p%d", k), metav1.DeleteOptions{}); err != nil {
			return nil, nil, err
		}
		if _, err := lastOnAll(isolation, del, func(n string, ev []string) bool { return isolationDrops(ev, "event=DELETED") == servers[n] }); err != nil {
			return nil, nil, fmt.Errorf("deleting policy %d: %w", k, err)
		}
	}
	for k := 0; k < 10; k++ {
		node := nodes[k%3]
		pod := labPod(ns, fmt.Sprintf("peer%d", k), node, corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolTCP})
		pod.Labels["role"] = "client"
		w, err := l.Client.CoreV1().Pods(ns).Watch(c, metav1.ListOptions{FieldSelector: "metadata.name=" + pod.Name})
		if err != nil {
			return nil, nil, err
		}
		created := time.Now()
		if _, err := l.Client.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{}); err != nil {
			w.Stop()
			return nil, nil, err
		}
		var ready time.Time
		var ip string
		for e := range w.ResultChan() {
			if p, ok := e.Object.(*corev1.Pod); ok && podReady(p) {
				ready, ip = time.Now(), p.Status.PodIP
				break
			}
		}
		w.Stop()
		if ip == "" {
			return nil, nil, fmt.Errorf("peer %d never Ready", k)
		}
		last, err := lastOnAll(rules, created, func(_ string, ev []string) bool { return countEvents(ev, "nw_src="+ip+" ") > 0 })
		if err != nil {
			return nil, nil, fmt.Errorf("peer %d: %w", k, err)
		}
		d := float64(last.Sub(ready).Microseconds()) / 1000
		if d < 0 {
			d = 0 // in every conjunction before the watch even reported Ready
		}
		peerLat = append(peerLat, d)
	}
	return policyLat, peerLat, nil
}
