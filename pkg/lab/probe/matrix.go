package probe

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Endpoint is one pod in a matrix: where probes start from (Netns) and where
// they go to (Addr, HOST:PORT).
type Endpoint struct {
	Name  string // "ns/pod"
	Netns string
	Addr  string
}

// Table is a reachability matrix: Cells[i][j] is whether Endpoints[i]
// reached Endpoints[j].
type Table struct {
	Endpoints []Endpoint
	Cells     [][]bool
}

// Matrix probes every ordered pair in parallel, at most concurrency at a
// time, up to attempts times until it connects (the upstream suite retries
// too: a first packet may be lost while a neighbour resolves). A probe that
// cannot run at all fails the whole matrix.
func Matrix(ctx context.Context, eps []Endpoint, protocol string, timeout time.Duration, concurrency, attempts int) (Table, error) {
	if attempts < 1 {
		attempts = 1
	}
	if concurrency < 1 {
		concurrency = 1
	}
	t := Table{Endpoints: eps, Cells: make([][]bool, len(eps))}
	for i := range t.Cells {
		t.Cells[i] = make([]bool, len(eps))
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, from := range eps {
		for j, to := range eps {
			wg.Add(1)
			sem <- struct{}{}
			go func(i, j int, from, to Endpoint) {
				defer wg.Done()
				defer func() { <-sem }()
				var r Result
				var err error
				for a := 0; a < attempts && err == nil && !r.Connected; a++ {
					r, err = Probe(ctx, from.Netns, protocol, to.Addr, timeout)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("probe %s -> %s: %w", from.Name, to.Name, err)
					}
					return
				}
				t.Cells[i][j] = r.Connected
			}(i, j, from, to)
		}
	}
	wg.Wait()
	return t, firstErr
}

// Write prints the table like the upstream NetworkPolicy e2e suite: a row per
// source, a column per destination, "." connected and "X" blocked, in
// space-aligned columns.
func (t Table) Write(w io.Writer) error {
	var b strings.Builder
	b.WriteString("-")
	for _, e := range t.Endpoints {
		b.WriteString("\t" + e.Name)
	}
	b.WriteString("\n")
	for i, e := range t.Endpoints {
		b.WriteString(e.Name)
		for j := range t.Endpoints {
			if t.Cells[i][j] {
				b.WriteString("\t.")
			} else {
				b.WriteString("\tX")
			}
		}
		b.WriteString("\n")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	if _, err := io.WriteString(tw, b.String()); err != nil {
		return err
	}
	return tw.Flush()
}
