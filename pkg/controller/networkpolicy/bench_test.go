package networkpolicy

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// scale builds the objects of a benchmark shape (docs: the controller
// shapes (a), (b), (c) of Antrea's perf test), with pods on 1,000 nodes
// drawn at random.
type scale struct {
	rng *rand.Rand
	n   int
	out []k8sruntime.Object
}

func (s *scale) namespace(name string) {
	s.out = append(s.out, makeNamespace(name, map[string]string{"app": name}))
}

func (s *scale) pod(ns, name string, lbls map[string]string) {
	s.n++
	ip := fmt.Sprintf("10.%d.%d.%d", s.n>>16&255, s.n>>8&255, s.n&255)
	pod := makePod(ns, name, fmt.Sprintf("node-%d", s.rng.IntN(1000)), ip, lbls)
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	s.out = append(s.out, pod)
}

// policy adds a policy for Ingress and Egress applied to podSel, with one
// ingress rule from peerSel when it is not nil.
func (s *scale) policy(ns, name string, podSel, peerSel map[string]string) {
	tweaks := []func(*networkingv1.NetworkPolicy){
		withPodSelector(podSel), withTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
	}
	if peerSel != nil {
		tweaks = append(tweaks, withIngress([]networkingv1.NetworkPolicyPeer{podPeer(peerSel)}))
	}
	np := makePolicy(ns, name, tweaks...)
	np.UID = types.UID(fmt.Sprintf("uid-%s-%s", ns, name))
	s.out = append(s.out, np)
}

// smallNamespaces is shape (a): 25,000 namespaces of 4 pods and 3
// policies.
func smallNamespaces(s *scale) {
	app1, app2 := map[string]string{"app-1": "scale-1"}, map[string]string{"app-2": "scale-2"}
	for i := range 25000 {
		ns := fmt.Sprintf("ns-%d", i)
		s.namespace(ns)
		s.policy(ns, "default-deny-all", nil, nil)
		s.policy(ns, "np-1", app1, app1)
		s.policy(ns, "np-2", app2, app2)
		s.pod(ns, "pod1", app1)
		s.pod(ns, "pod2", app1)
		s.pod(ns, "pod3", app2)
		s.pod(ns, "pod4", app2)
	}
}

// oneNamespace is shape (b): 10,000 pods and 10,000 identical policies.
func oneNamespace(s *scale) {
	app1 := map[string]string{"app-1": "scale-1"}
	s.namespace("ns")
	for i := range 10000 {
		s.policy("ns", fmt.Sprintf("np-%d", i), app1, app1)
		s.pod("ns", fmt.Sprintf("pod-%d", i), app1)
	}
}

// policyPerPod is shape (c): 10,000 pods in pairs, each with a policy
// allowing ingress only from its partner.
func policyPerPod(s *scale) {
	s.namespace("ns")
	for i := range 5000 {
		l1 := map[string]string{"app": fmt.Sprintf("scale-%d-a", i)}
		l2 := map[string]string{"app": fmt.Sprintf("scale-%d-b", i)}
		s.policy("ns", fmt.Sprintf("np-%d-a", i), l1, l2)
		s.policy("ns", fmt.Sprintf("np-%d-b", i), l2, l1)
		s.pod("ns", fmt.Sprintf("pod-%d-a", i), l1)
		s.pod("ns", fmt.Sprintf("pod-%d-b", i), l2)
	}
}

func BenchmarkComputeScale(b *testing.B) {
	// Quiet the controller's and the informers' logs.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(discard{})

	shapes := []struct {
		name     string
		build    func(*scale)
		policies int
	}{
		{"a-small-namespaces", smallNamespaces, 75000},
		{"b-one-namespace", oneNamespace, 10000},
		{"c-policy-per-pod", policyPerPod, 10000},
	}
	for _, shape := range shapes {
		b.Run(shape.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				client := preload(shape.build)
				runtime.GC()
				b.StartTimer()
				r := runScale(b, client)
				if r.policies != shape.policies {
					b.Fatalf("computed %d policies, want %d", r.policies, shape.policies)
				}
				b.ReportMetric(r.seconds, "s-compute")
				b.ReportMetric(float64(r.maxAlloc)/(1<<20), "MiB-max-alloc")
				b.ReportMetric(float64(r.events[0]), "atg-events")
				b.ReportMetric(float64(r.events[1]), "ag-events")
				b.ReportMetric(float64(r.events[2]), "np-events")
			}
		})
	}
}

// preload returns a fake clientset holding the objects of a shape.
func preload(build func(*scale)) *fake.Clientset {
	s := &scale{rng: rand.New(rand.NewPCG(1, 2))}
	build(s)
	return fake.NewClientset(s.out...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type scaleResult struct {
	seconds  float64
	maxAlloc uint64
	policies int
	events   [3]int64
}

// runScale times a controller from informer start until it has computed
// everything and is idle, sampling runtime.MemStats.Alloc every 500 ms.
func runScale(b *testing.B, client *fake.Clientset) scaleResult {
	var r scaleResult
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(factory)
	if err != nil {
		b.Fatal(err)
	}
	// Watch everything, as the API server would.
	var atgEvents, agEvents, npEvents atomic.Int64
	_, _, stop1 := c.appliedToGroups.Watch("", func(Event[controlplane.AppliedToGroup]) { atgEvents.Add(1) })
	_, _, stop2 := c.addressGroups.Watch("", func(Event[controlplane.AddressGroup]) { agEvents.Add(1) })
	_, _, stop3 := c.networkPolicies.Watch("", func(Event[controlplane.NetworkPolicy]) { npEvents.Add(1) })
	defer func() { stop1(); stop2(); stop3() }()

	var maxAlloc atomic.Uint64
	var wg sync.WaitGroup
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.Alloc > maxAlloc.Load() {
			maxAlloc.Store(ms.Alloc)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sample()
			}
		}
	}()

	start := time.Now()
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	// Idle: every handler has seen the initial lists and no key is queued
	// or being synced, for three polls in a row with nothing processed.
	var end time.Time
	var last uint64
	for stable := 0; stable < 3; {
		time.Sleep(5 * time.Millisecond)
		idle, n := c.idle()
		switch {
		case !idle || n != last:
			stable = 0
		case stable == 0:
			end = time.Now()
			stable++
		default:
			stable++
		}
		last = n
	}
	r.seconds = end.Sub(start).Seconds()
	sample()
	cancel()
	wg.Wait()
	<-done
	factory.Shutdown()
	r.maxAlloc = maxAlloc.Load()
	r.policies = c.networkPolicies.Len()
	r.events = [3]int64{atgEvents.Load(), agEvents.Load(), npEvents.Load()}
	return r
}
