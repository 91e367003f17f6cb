package netpol

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// connection is one probe to run.
type connection struct {
	from, to PodID
	ip       string
	proto    corev1.Protocol
	port     int
}

func (c connection) String() string {
	return fmt.Sprintf("%s -> %s (%s) %s/%d", c.from, c.to, c.ip, c.proto, c.port)
}

// outcome is the result of one probe.
type outcome struct {
	conn    connection
	allowed bool
	err     error
}

// probeAll runs conns on at most workers goroutines and returns their
// outcomes in the order of conns. SCTP connections go to tracer when set.
func probeAll(ctx context.Context, p Prober, tracer Tracer, conns []connection, workers int) []outcome {
	out := make([]outcome, len(conns))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := conns[i]
				var allowed bool
				var err error
				if c.proto == corev1.ProtocolSCTP && tracer != nil {
					allowed, err = tracer.Trace(ctx, c.from, c.to, c.ip, c.proto, c.port)
				} else {
					allowed, err = p.Probe(ctx, c.from, c.to, c.ip, c.proto, c.port)
				}
				out[i] = outcome{conn: c, allowed: allowed, err: err}
			}
		}()
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// matrixConnections lists the connections of a full matrix over pods.
func matrixConnections(pods []PodID, ips PodIPs, proto corev1.Protocol, port int, self bool) ([]connection, error) {
	var conns []connection
	for _, from := range pods {
		for _, to := range pods {
			if from == to && !self {
				continue
			}
			ip, ok := ips[to]
			if !ok || ip == "" {
				return nil, fmt.Errorf("no IP for pod %s", to)
			}
			conns = append(conns, connection{from: from, to: to, ip: ip, proto: proto, port: port})
		}
	}
	return conns, nil
}

// checkMatrix probes the full matrix of probe until it matches probe.Want
// or opts.Attempts are spent, and logs the tables when it fails.
func checkMatrix(ctx context.Context, r Reporter, p Prober, ips PodIPs, probe Probe, opts Options) error {
	name := fmt.Sprintf("%s/%d", probe.Protocol, probe.Port)
	conns, err := matrixConnections(probe.Want.Pods(), ips, probe.Protocol, probe.Port, opts.ProbeSelf)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var observed *Table
	var mismatches []Mismatch
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, opts.RetryDelay); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		observed = newUnknownTable(probe.Want.Pods())
		var probeErrs []string
		for _, o := range probeAll(ctx, p, opts.Tracer, conns, opts.Workers) {
			if o.err != nil {
				probeErrs = append(probeErrs, fmt.Sprintf("%s: %v", o.conn, o.err))
				continue
			}
			observed.Set(o.conn.from, o.conn.to, o.allowed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(probeErrs) > 0 {
			r.Logf("%s attempt %d: %d probes could not run:\n  %s", name, attempt, len(probeErrs), strings.Join(probeErrs, "\n  "))
		}
		if mismatches, err = probe.Want.Diff(observed, !opts.ProbeSelf); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(mismatches) == 0 {
			r.Logf("%s: matrix as expected (attempt %d)", name, attempt)
			return nil
		}
		r.Logf("%s attempt %d (done %s): %d cells differ, first %s", name, attempt, time.Now().Format("15:04:05.000"), len(mismatches), mismatches[0])
	}
	r.Logf("%s: expected:\n%s\nobserved (mismatches between asterisks):\n%s", name, probe.Want, FormatDiff(observed, mismatches))
	return &MatrixError{Name: name, Protocol: probe.Protocol, Port: probe.Port, Attempts: opts.Attempts, Mismatches: mismatches}
}

// MatrixError is a probed matrix that still differs from the expected one
// after every attempt.
type MatrixError struct {
	Name       string
	Protocol   corev1.Protocol
	Port       int
	Attempts   int
	Mismatches []Mismatch
}

func (e *MatrixError) Error() string {
	return fmt.Sprintf("%s: %d cells differ after %d attempts, first %s", e.Name, len(e.Mismatches), e.Attempts, e.Mismatches[0])
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
