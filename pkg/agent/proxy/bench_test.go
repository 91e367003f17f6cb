package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
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
