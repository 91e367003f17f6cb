package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// BenchmarkInstallServices compiles 10,000 service ports with 10 endpoints
// each and installs them into a real OVS (userspace datapath) in one
// atomic change: 10,000 select groups and 10,000 flows. It measures the
// agent's side of a full sync, from service ports in memory to the switch;
// the informers' share (API to cache) is not included.
func BenchmarkInstallServices(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%d-services-x10", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				_, c := startBridge(b)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				installPipeline(b, ctx, c)
				ports := make([]ServicePort, n)
				for s := range ports {
					ip := netip.AddrFrom4([4]byte{10, 96, byte(s >> 8), byte(s)})
					eps := make([]Endpoint, 10)
					for e := range eps {
						eps[e] = ready(netip.AddrFrom4([4]byte{10, 10, byte(e), byte(s % 250)}).String(), 8080)
					}
					ports[s] = svcPort(fmt.Sprintf("svc-%d", s), ip.String(), 80, ProtocolTCP, eps...)
				}
				start := time.Now()
				r := NewCompiler().Compile(ports)
				compiled := time.Since(start)
				if err := apply(ctx, c, nil, r, nil); err != nil {
					cancel()
					b.Fatal(err)
				}
				total := time.Since(start)
				cancel()
				b.ReportMetric(compiled.Seconds(), "s/compile")
				b.ReportMetric(total.Seconds(), "s/compile+install")
			}
		})
	}
}

// BenchmarkControllerSync measures the controller's own share of a sync,
// with the switch faked: 10,000 Services of 10 endpoints each in the
// informer caches (a fake clientset), the first sync of all of them, then
// the sync of one changed EndpointSlice.
func BenchmarkControllerSync(b *testing.B) {
	const services = 10000
	for i := 0; i < b.N; i++ {
		f := newControllerFixture(b)
		for s := 0; s < services; s++ {
			name := fmt.Sprintf("svc-%d", s)
			ip := netip.AddrFrom4([4]byte{10, 96, byte(s >> 8), byte(s)})
			if _, err := f.client.CoreV1().Services("default").Create(f.ctx, service(name, ip.String(), tcpPort("http", 80)), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			ips := make([]string, 10)
			for e := range ips {
				ips[e] = netip.AddrFrom4([4]byte{10, 10, byte(e), byte(s % 250)}).String()
			}
			if _, err := f.client.DiscoveryV1().EndpointSlices("default").Create(f.ctx, slice(name, name+"-1", 8080, ips...), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := wait.PollUntilContextTimeout(f.ctx, 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			return len(f.c.slices.List()) == services, nil
		}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := f.c.Sync(f.ctx); err != nil {
			b.Fatal(err)
		}
		full := time.Since(start)
		changed := slice("svc-7", "svc-7-1", 8080, "10.10.0.1", "10.10.0.2")
		if _, err := f.client.DiscoveryV1().EndpointSlices("default").Update(f.ctx, changed, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(f.ctx, time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			return f.bucketIPsInCache("svc-7-1", "10.10.0.2") && f.dirtyCount() > 0, nil
		}); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := f.c.Sync(f.ctx); err != nil {
			b.Fatal(err)
		}
		one := time.Since(start)
		b.ReportMetric(full.Seconds(), "s/full-sync")
		b.ReportMetric(float64(one.Microseconds())/1000, "ms/one-change")
	}
}
