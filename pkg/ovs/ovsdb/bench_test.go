package ovsdb_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

// BenchmarkEnsurePort measures EnsurePort on a real OVS (userspace
// datapath), from the call to the returned ofport, i.e. one transaction plus
// ovs-vswitchd's reconfiguration. Setup (veths) and cleanup are not timed.
// Besides ns/op it reports the median and 90th percentile in ms.
func BenchmarkEnsurePort(b *testing.B) {
	o, c := withBridge(b)
	// Sub-benchmarks run several times: more than testCtx's 30 s in all.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.Run("internal", func(b *testing.B) {
		benchAdd(b, func(i int) ovsdb.PortConfig {
			return ovsdb.PortConfig{Name: fmt.Sprintf("int%d", i), Type: ovsdb.PortTypeInternal}
		}, c, nil)
	})
	b.Run("veth-pod", func(b *testing.B) {
		benchAdd(b, func(i int) ovsdb.PortConfig {
			name := fmt.Sprintf("veth%d", i)
			addVeth(b, o, name)
			return ovsdb.PortConfig{Name: name, ExternalIDs: map[string]string{
				"k8s-pod-namespace": "default", "k8s-pod-name": fmt.Sprintf("pod-%d", i),
				"container-id": fmt.Sprintf("%064d", i), "ip": "10.10.0.5", "mac": "aa:bb:cc:dd:ee:01",
			}}
		}, c, func(name string) { run(b, "ip", "netns", "exec", o.Netns, "ip", "link", "del", name) })
	})
	b.Run("internal-with-100-ports", func(b *testing.B) {
		for i := range 100 {
			_, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: fmt.Sprintf("bg%d", i), Type: ovsdb.PortTypeInternal})
			require.NoError(b, err)
		}
		benchAdd(b, func(i int) ovsdb.PortConfig {
			return ovsdb.PortConfig{Name: fmt.Sprintf("int%d", i), Type: ovsdb.PortTypeInternal}
		}, c, nil)
	})
	b.Run("unchanged", func(b *testing.B) {
		cfg := ovsdb.PortConfig{Name: "same0", Type: ovsdb.PortTypeInternal}
		_, err := c.EnsurePort(ctx, cfg)
		require.NoError(b, err)
		b.ResetTimer()
		for range b.N {
			if _, err := c.EnsurePort(ctx, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeletePort measures DeletePort, including waiting for
// ovs-vswitchd to release the port.
func BenchmarkDeletePort(b *testing.B) {
	o, c := withBridge(b)
	b.Run("internal", func(b *testing.B) {
		benchDelete(b, c, func(i int) ovsdb.PortConfig {
			return ovsdb.PortConfig{Name: fmt.Sprintf("int%d", i), Type: ovsdb.PortTypeInternal}
		}, nil)
	})
	b.Run("veth-pod", func(b *testing.B) {
		benchDelete(b, c, func(i int) ovsdb.PortConfig {
			return ovsdb.PortConfig{Name: addVeth(b, o, fmt.Sprintf("veth%d", i))}
		}, func(name string) { run(b, "ip", "netns", "exec", o.Netns, "ip", "link", "del", name) })
	})
}

func benchDelete(b *testing.B, c *ovsdb.Client, cfgOf func(int) ovsdb.PortConfig, cleanup func(string)) {
	ctx := testCtx(b)
	var durs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		cfg := cfgOf(i)
		_, err := c.EnsurePort(ctx, cfg)
		require.NoError(b, err)
		b.StartTimer()
		start := time.Now()
		if err := c.DeletePort(ctx, cfg.Name); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
		if cleanup != nil {
			b.StopTimer()
			cleanup(cfg.Name)
			b.StartTimer()
		}
	}
	reportPercentiles(b, durs)
}

func benchAdd(b *testing.B, cfgOf func(int) ovsdb.PortConfig, c *ovsdb.Client, cleanup func(string)) {
	ctx := testCtx(b)
	var durs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		cfg := cfgOf(i)
		b.StartTimer()
		start := time.Now()
		ofport, err := c.EnsurePort(ctx, cfg)
		durs = append(durs, time.Since(start))
		b.StopTimer()
		if err != nil || ofport <= 0 {
			b.Fatalf("EnsurePort %s: ofport %d, %v", cfg.Name, ofport, err)
		}
		require.NoError(b, c.DeletePort(ctx, cfg.Name))
		if cleanup != nil {
			cleanup(cfg.Name)
		}
		b.StartTimer()
	}
	reportPercentiles(b, durs)
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
	slices.Sort(durs)
	ms := func(q float64) float64 { return float64(durs[int(q*float64(len(durs)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.9), "p90-ms")
}
