package netpol

import (
	"fmt"
	"strings"
)

// Verdict is the content of one cell of a reachability [Table].
type Verdict int8

const (
	// Unknown means the cell was not probed (or the probe failed).
	Unknown Verdict = iota
	// Allowed means the connection goes through.
	Allowed
	// Blocked means the connection is dropped or rejected.
	Blocked
)

// verdictOf converts a boolean to a verdict.
func verdictOf(allowed bool) Verdict {
	if allowed {
		return Allowed
	}
	return Blocked
}

// String returns the mark the printer uses: "." allowed, "X" blocked, "?"
// unknown.
func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "."
	case Blocked:
		return "X"
	default:
		return "?"
	}
}

// Peer matches pods by namespace and/or name; an empty field matches
// anything.
type Peer struct {
	Namespace string
	Pod       string
}

func (p Peer) matches(id PodID) bool {
	return (p.Namespace == "" || p.Namespace == id.Namespace) && (p.Pod == "" || p.Pod == id.Name)
}

// Table is a reachability matrix over a fixed list of pods: cell (from, to)
// tells whether from can connect to to. The expectation helpers return the
// table so that calls can be chained; later calls override earlier ones.
type Table struct {
	pods  []PodID
	index map[PodID]int
	cells []Verdict
}

// NewTable returns a table over pods with every cell set to allowed.
func NewTable(pods []PodID, allowed bool) *Table {
	t := newUnknownTable(pods)
	t.ExpectAll(allowed)
	return t
}

// NewTable returns a table over the model's nine pods with every cell set to
// allowed.
func (m *Model) NewTable(allowed bool) *Table { return NewTable(m.pods, allowed) }

// newUnknownTable returns a table over pods with every cell unknown.
func newUnknownTable(pods []PodID) *Table {
	t := &Table{
		pods:  append([]PodID(nil), pods...),
		index: make(map[PodID]int, len(pods)),
		cells: make([]Verdict, len(pods)*len(pods)),
	}
	for i, p := range pods {
		t.index[p] = i
	}
	return t
}

// Pods returns the pods of the table, in row/column order.
func (t *Table) Pods() []PodID { return append([]PodID(nil), t.pods...) }

// Clone returns an independent copy of the table.
func (t *Table) Clone() *Table {
	c := newUnknownTable(t.pods)
	copy(c.cells, t.cells)
	return c
}

func (t *Table) cell(from, to PodID) *Verdict {
	i, ok := t.index[from]
	j, ok2 := t.index[to]
	if !ok || !ok2 {
		panic(fmt.Sprintf("netpol: %s -> %s is not in the table", from, to))
	}
	return &t.cells[i*len(t.pods)+j]
}

// Get returns the verdict of from -> to. It panics if a pod is not in the
// table.
func (t *Table) Get(from, to PodID) Verdict { return *t.cell(from, to) }

// Allowed tells whether from -> to is expected or observed allowed.
func (t *Table) Allowed(from, to PodID) bool { return t.Get(from, to) == Allowed }

// Set sets from -> to.
func (t *Table) Set(from, to PodID, allowed bool) *Table {
	*t.cell(from, to) = verdictOf(allowed)
	return t
}

// setVerdict sets from -> to to any verdict, including unknown.
func (t *Table) setVerdict(from, to PodID, v Verdict) { *t.cell(from, to) = v }

// ExpectAll sets every cell.
func (t *Table) ExpectAll(allowed bool) *Table {
	return t.ExpectPeer(Peer{}, Peer{}, allowed)
}

// ExpectFrom sets every connection out of pod (its egress).
func (t *Table) ExpectFrom(pod PodID, allowed bool) *Table {
	return t.ExpectPeer(Peer{Namespace: pod.Namespace, Pod: pod.Name}, Peer{}, allowed)
}

// ExpectTo sets every connection into pod (its ingress).
func (t *Table) ExpectTo(pod PodID, allowed bool) *Table {
	return t.ExpectPeer(Peer{}, Peer{Namespace: pod.Namespace, Pod: pod.Name}, allowed)
}

// ExpectFromNamespace sets every connection out of the pods of ns.
func (t *Table) ExpectFromNamespace(ns string, allowed bool) *Table {
	return t.ExpectPeer(Peer{Namespace: ns}, Peer{}, allowed)
}

// ExpectToNamespace sets every connection into the pods of ns.
func (t *Table) ExpectToNamespace(ns string, allowed bool) *Table {
	return t.ExpectPeer(Peer{}, Peer{Namespace: ns}, allowed)
}

// ExpectPeer sets every connection from a pod matching from to a pod
// matching to.
func (t *Table) ExpectPeer(from, to Peer, allowed bool) *Table {
	for _, src := range t.pods {
		if !from.matches(src) {
			continue
		}
		for _, dst := range t.pods {
			if to.matches(dst) {
				t.Set(src, dst, allowed)
			}
		}
	}
	return t
}

// ParseTable builds a table over pods from one row per source pod, each row
// giving one mark per destination pod: '.' allowed, 'X' (or 'x') blocked,
// '?' unknown. Spaces and tabs are ignored, so that rows can be grouped by
// namespace.
func ParseTable(pods []PodID, rows ...string) (*Table, error) {
	if len(rows) != len(pods) {
		return nil, fmt.Errorf("parse table: %d rows for %d pods", len(rows), len(pods))
	}
	t := newUnknownTable(pods)
	for i, row := range rows {
		marks := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, row)
		if len(marks) != len(pods) {
			return nil, fmt.Errorf("parse table: row %d (%s) has %d marks, want %d", i, pods[i], len(marks), len(pods))
		}
		for j, r := range marks {
			switch r {
			case '.':
				t.setVerdict(pods[i], pods[j], Allowed)
			case 'X', 'x':
				t.setVerdict(pods[i], pods[j], Blocked)
			case '?':
			default:
				return nil, fmt.Errorf("parse table: row %d (%s): unexpected mark %q", i, pods[i], r)
			}
		}
	}
	return t, nil
}

// MustParseTable is [ParseTable] for tables written in source code; it
// panics on a malformed table.
func MustParseTable(pods []PodID, rows ...string) *Table {
	t, err := ParseTable(pods, rows...)
	if err != nil {
		panic(err)
	}
	return t
}

// Mismatch is a cell where an observed table differs from the expected one.
type Mismatch struct {
	From, To  PodID
	Want, Got Verdict
}

// String describes the mismatch.
func (m Mismatch) String() string {
	return fmt.Sprintf("%s -> %s: want %s, got %s", m.From, m.To, describe(m.Want), describe(m.Got))
}

func describe(v Verdict) string {
	switch v {
	case Allowed:
		return "allowed"
	case Blocked:
		return "blocked"
	default:
		return "unknown"
	}
}

// Diff compares the expected table t with the observed one and returns the
// cells that differ, row by row. An observed unknown cell is a mismatch
// unless the expected cell is unknown too. With skipSelf, the cells from a
// pod to itself are not compared. Both tables must be over the same pods.
func (t *Table) Diff(observed *Table, skipSelf bool) ([]Mismatch, error) {
	if !samePods(t.pods, observed.pods) {
		return nil, fmt.Errorf("diff: tables are over different pods")
	}
	var out []Mismatch
	for i, from := range t.pods {
		for j, to := range t.pods {
			if skipSelf && i == j {
				continue
			}
			want, got := t.cells[i*len(t.pods)+j], observed.cells[i*len(t.pods)+j]
			if want != got && want != Unknown {
				out = append(out, Mismatch{From: from, To: to, Want: want, Got: got})
			}
		}
	}
	return out, nil
}

func samePods(a, b []PodID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// String prints the table as a matrix, sources in rows and destinations in
// columns.
func (t *Table) String() string { return t.render(nil) }

// FormatDiff prints the observed table with every mismatching cell wrapped
// in asterisks, for instance *X* where the connection was expected allowed.
func FormatDiff(observed *Table, mismatches []Mismatch) string {
	marked := map[[2]PodID]bool{}
	for _, m := range mismatches {
		marked[[2]PodID{m.From, m.To}] = true
	}
	return observed.render(marked)
}

func (t *Table) render(marked map[[2]PodID]bool) string {
	width := 3
	for _, p := range t.pods {
		width = max(width, len(p.String())+2)
	}
	row := func(head string, cells []string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%-*s", width, head)
		for _, c := range cells {
			fmt.Fprintf(&b, "%-*s", width, c)
		}
		return strings.TrimRight(b.String(), " ") + "\n"
	}
	header := make([]string, 0, len(t.pods))
	for _, to := range t.pods {
		header = append(header, to.String())
	}
	var b strings.Builder
	b.WriteString(row("-", header))
	for _, from := range t.pods {
		cells := make([]string, 0, len(t.pods))
		for _, to := range t.pods {
			mark := t.Get(from, to).String()
			if marked[[2]PodID{from, to}] {
				mark = "*" + mark + "*"
			}
			cells = append(cells, mark)
		}
		b.WriteString(row(from.String(), cells))
	}
	return b.String()
}
