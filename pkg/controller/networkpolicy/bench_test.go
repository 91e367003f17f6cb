package networkpolicy

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
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
	// only, when set, keeps the objects of one kind (Pod, Namespace,
	// NetworkPolicy) and builds no other.
	only string
}

func newScale(only string) *scale {
	return &scale{rng: rand.New(rand.NewPCG(1, 2)), only: only}
}

func (s *scale) keeps(kind string) bool { return s.only == "" || s.only == kind }

func (s *scale) namespace(name string) {
	if s.keeps("Namespace") {
		s.out = append(s.out, makeNamespace(name, map[string]string{"app": name}))
	}
}

func (s *scale) pod(ns, name string, lbls map[string]string) {
	s.n++
	node := fmt.Sprintf("node-%d", s.rng.IntN(1000))
	if !s.keeps("Pod") {
		return
	}
	ip := fmt.Sprintf("10.%d.%d.%d", s.n>>16&255, s.n>>8&255, s.n&255)
	pod := makePod(ns, name, node, ip, lbls)
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	s.out = append(s.out, pod)
}

// policy adds a policy for Ingress and Egress applied to podSel, with one
// ingress rule from peerSel when it is not nil.
func (s *scale) policy(ns, name string, podSel, peerSel map[string]string) {
	if !s.keeps("NetworkPolicy") {
		return
	}
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

// shapes are the benchmark shapes, with the policies each computes.
var shapes = []struct {
	name     string
	build    func(*scale)
	policies int
}{
	{"a-small-namespaces", smallNamespaces, 75000},
	{"b-one-namespace", oneNamespace, 10000},
	{"c-policy-per-pod", policyPerPod, 10000},
}

// BenchmarkComputeScale times the controller on each shape, with the
// method of Antrea's controller test: see runScale.
func BenchmarkComputeScale(b *testing.B) {
	benchmarkScale(b, true, clientsetFactory)
}

// BenchmarkComputeDecoded times the controller on each shape as
// BenchmarkComputeScale does, but its informers receive each list once,
// built when they list, as a client decodes it from the API server's
// answer: no fake clientset keeps a copy of every object in the process,
// and its list does not copy them three more times on the way. Its
// memory is what the controller's process holds in a cluster: the
// informers' caches, the list being processed, and the controller.
func BenchmarkComputeDecoded(b *testing.B) {
	benchmarkScale(b, true, decodedFactory)
}

// BenchmarkInformersOnly runs the same informers on the same shapes with
// handlers that do nothing: the part of BenchmarkComputeScale's figures
// that the fake clientset and the informers' caches take, whatever the
// controller does.
func BenchmarkInformersOnly(b *testing.B) {
	benchmarkScale(b, false, clientsetFactory)
}

// BenchmarkControllerOnly feeds each shape's objects straight to the
// controller's handlers (namespaces, then policies, then pods), without
// informers nor clientset, and syncs everything: the controller's own
// cost, steadier than the end-to-end figures on a noisy machine.
func BenchmarkControllerOnly(b *testing.B) {
	for _, shape := range shapes {
		b.Run(shape.name, func(b *testing.B) {
			s := newScale("")
			shape.build(s)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c, err := New(informers.NewSharedInformerFactory(fake.NewClientset(), 0))
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				before := ms.Alloc
				b.StartTimer()
				for _, kind := range []string{"Namespace", "NetworkPolicy", "Pod"} {
					for _, o := range s.out {
						switch o := o.(type) {
						case *corev1.Namespace:
							if kind == "Namespace" {
								c.onNamespace(o)
							}
						case *networkingv1.NetworkPolicy:
							if kind == "NetworkPolicy" {
								c.onPolicy(o)
							}
						case *corev1.Pod:
							if kind == "Pod" {
								c.onPod(o)
							}
						}
					}
				}
				c.mu.Lock()
				c.flush(nil)
				c.mu.Unlock()
				b.StopTimer()
				if n := c.networkPolicies.Len(); n != shape.policies {
					b.Fatalf("computed %d policies, want %d", n, shape.policies)
				}
				// What the controller keeps: its indexes and stores.
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.Alloc-before)/(1<<20), "MiB-controller-live")
				runtime.KeepAlive(c)
			}
		})
	}
}

// factoryMaker prepares, outside the clock, the informer factory a run
// starts from.
type factoryMaker func(build func(*scale)) informers.SharedInformerFactory

func benchmarkScale(b *testing.B, withController bool, makeFactory factoryMaker) {
	// Quiet the controller's and the informers' logs.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(discard{})

	for _, shape := range shapes {
		b.Run(shape.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				factory := makeFactory(shape.build)
				runtime.GC()
				b.StartTimer()
				r := runScale(b, factory, withController)
				if withController && r.policies != shape.policies {
					b.Fatalf("computed %d policies, want %d", r.policies, shape.policies)
				}
				b.ReportMetric(r.seconds, "s-compute")
				if withController {
					b.ReportMetric(r.syncedSeconds, "s-informers-synced")
				}
				b.ReportMetric(r.cpuSeconds, "s-cpu")
				b.ReportMetric(float64(r.maxAlloc)/(1<<20), "MiB-max-alloc")
				b.ReportMetric(float64(r.liveAlloc)/(1<<20), "MiB-live-idle")
				if r.peakRSS > 0 {
					b.ReportMetric(float64(r.peakRSS)/(1<<20), "MiB-peak-rss")
				}
				if withController {
					b.ReportMetric(float64(r.events[0]), "atg-events")
					b.ReportMetric(float64(r.events[1]), "ag-events")
					b.ReportMetric(float64(r.events[2]), "np-events")
				}
			}
		})
	}
}

// clientsetFactory returns informers on a fake clientset preloaded with
// the objects of a shape: the method of Antrea's controller test.
func clientsetFactory(build func(*scale)) informers.SharedInformerFactory {
	s := newScale("")
	build(s)
	return informers.NewSharedInformerFactory(fake.NewClientset(s.out...), 0)
}

// decodedFactory returns informers whose Pod, Namespace and NetworkPolicy
// lists are built when the informer lists (building them stands for
// decoding the API server's answer), each object once, and whose watches
// stay quiet.
func decodedFactory(build func(*scale)) informers.SharedInformerFactory {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	register := func(obj k8sruntime.Object, kind string, list func([]k8sruntime.Object) k8sruntime.Object) {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(context.Context, metav1.ListOptions) (k8sruntime.Object, error) {
				s := newScale(kind)
				build(s)
				return list(s.out), nil
			},
			WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
		}
		factory.InformerFor(obj, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
			return cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		})
	}
	listMeta := metav1.ListMeta{ResourceVersion: "1"}
	register(&corev1.Pod{}, "Pod", func(objs []k8sruntime.Object) k8sruntime.Object {
		l := &corev1.PodList{ListMeta: listMeta, Items: make([]corev1.Pod, len(objs))}
		for i, o := range objs {
			l.Items[i] = *o.(*corev1.Pod)
		}
		return l
	})
	register(&corev1.Namespace{}, "Namespace", func(objs []k8sruntime.Object) k8sruntime.Object {
		l := &corev1.NamespaceList{ListMeta: listMeta, Items: make([]corev1.Namespace, len(objs))}
		for i, o := range objs {
			l.Items[i] = *o.(*corev1.Namespace)
		}
		return l
	})
	register(&networkingv1.NetworkPolicy{}, "NetworkPolicy", func(objs []k8sruntime.Object) k8sruntime.Object {
		l := &networkingv1.NetworkPolicyList{ListMeta: listMeta, Items: make([]networkingv1.NetworkPolicy, len(objs))}
		for i, o := range objs {
			l.Items[i] = *o.(*networkingv1.NetworkPolicy)
		}
		return l
	})
	return factory
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type scaleResult struct {
	seconds float64
	// syncedSeconds is when the informers had listed everything and the
	// handlers had seen it all.
	syncedSeconds float64
	// cpuSeconds is the CPU time of the process (all threads, GC
	// included) until idle.
	cpuSeconds float64
	maxAlloc   uint64
	// peakRSS is the peak resident memory of the process during the run
	// (0 where unknown); liveAlloc the heap left live at idle, after a GC.
	peakRSS, liveAlloc uint64
	policies           int
	events             [3]int64
}

// runScale times a controller from informer start until it has computed
// everything and is idle, as Antrea's controller test does: the fake
// clientset holds every object, the informers list them from it, and
// memory is the maximum of runtime.MemStats.Alloc sampled every 500 ms,
// so it counts the clientset's objects and the informers' caches. It
// also reports what that sampling may miss: the peak RSS of the process
// over the run (read from the kernel), the heap left live at idle, and
// the process's CPU time. Without the controller, it times the informers
// alone until their no-op handlers have seen the initial lists.
func runScale(b *testing.B, factory informers.SharedInformerFactory, withController bool) scaleResult {
	var r scaleResult
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c *Controller
	var synced []cache.InformerSynced
	var atgEvents, agEvents, npEvents atomic.Int64
	if withController {
		var err error
		if c, err = New(factory); err != nil {
			b.Fatal(err)
		}
		// Watch everything, as the API server would.
		_, _, stop1 := c.appliedToGroups.Watch("", func(Event[controlplane.AppliedToGroup]) { atgEvents.Add(1) })
		_, _, stop2 := c.addressGroups.Watch("", func(Event[controlplane.AddressGroup]) { agEvents.Add(1) })
		_, _, stop3 := c.networkPolicies.Watch("", func(Event[controlplane.NetworkPolicy]) { npEvents.Add(1) })
		defer func() { stop1(); stop2(); stop3() }()
	} else {
		for _, inf := range []cache.SharedIndexInformer{
			factory.Core().V1().Pods().Informer(),
			factory.Core().V1().Namespaces().Informer(),
			factory.Networking().V1().NetworkPolicies().Informer(),
		} {
			reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{})
			if err != nil {
				b.Fatal(err)
			}
			synced = append(synced, reg.HasSynced)
		}
	}

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

	// Peak RSS from here: return the memory freed so far to the system
	// and reset the high-water mark.
	debug.FreeOSMemory()
	resetPeakRSS()
	cpu0 := cpuTime()
	start := time.Now()
	factory.Start(ctx.Done())
	done := make(chan struct{})
	if !withController {
		close(done)
		for !allSynced(synced) {
			time.Sleep(5 * time.Millisecond)
		}
	} else {
		go func() {
			defer close(done)
			_ = c.Run(ctx)
		}()
	}
	// Idle: every handler has seen the initial lists and nothing is
	// marked or being synced, for three polls in a row with nothing
	// processed.
	end := time.Now()
	var last uint64
	for stable := 0; withController && stable < 3; {
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
	if withController {
		r.syncedSeconds = c.syncedAt.Sub(start).Seconds()
	}
	r.cpuSeconds = (cpuTime() - cpu0).Seconds()
	sample()
	r.peakRSS = peakRSS()
	// After the clock: what stays live (informer caches and the fake
	// clientset's objects included), and a heap profile of it on demand.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.liveAlloc = ms.Alloc
	if f := os.Getenv("NP_BENCH_HEAPPROFILE"); f != "" {
		if fh, err := os.Create(f); err == nil {
			_ = pprof.WriteHeapProfile(fh)
			_ = fh.Close()
		}
	}
	cancel()
	wg.Wait()
	<-done
	factory.Shutdown()
	r.maxAlloc = maxAlloc.Load()
	if withController {
		r.policies = c.networkPolicies.Len()
	}
	r.events = [3]int64{atgEvents.Load(), agEvents.Load(), npEvents.Load()}
	return r
}

func allSynced(synced []cache.InformerSynced) bool {
	for _, s := range synced {
		if !s() {
			return false
		}
	}
	return true
}

// resetPeakRSS resets the kernel's peak resident memory of the process
// (Linux; a no-op elsewhere).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns the peak resident memory of the process since the last
// reset, 0 where unknown.
func peakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
