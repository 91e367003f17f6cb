// Package openflowtest provides Fake, an in-memory openflow.Client for
// other packages' unit tests: it keeps the flows and groups a bridge would
// have (flows keyed by Flow.Key), applies changes all or nothing like an
// OpenFlow bundle, prints its state for golden tests, and can be told to
// fail so that callers can test their resync paths.
package openflowtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// ErrInjected is the error FailNext makes Apply return when given nil.
var ErrInjected = errors.New("openflowtest: injected failure")

// Fake is an in-memory openflow.Client. The zero value is not usable; use
// NewFake.
type Fake struct {
	mu        sync.Mutex
	flows     map[string]openflow.Flow
	groups    map[uint32]openflow.GroupEntry
	failures  []error
	connected bool
	applies   int
}

var _ openflow.Client = (*Fake)(nil)

// NewFake returns an empty, connected Fake.
func NewFake() *Fake {
	return &Fake{flows: map[string]openflow.Flow{}, groups: map[uint32]openflow.GroupEntry{}, connected: true}
}

// FailNext makes the next Apply (or Bundle, or DeleteByCookie) fail with
// err (ErrInjected if nil) and change nothing. Calls queue up: FailNext
// twice fails the next two.
func (f *Fake) FailNext(err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, err)
}

// SetConnected sets what Connected reports; while disconnected every
// change fails with openflow.ErrDisconnected.
func (f *Fake) SetConnected(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = up
}

// Reset forgets all flows and groups, as a restarted ovs-vswitchd would.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows = map[string]openflow.Flow{}
	f.groups = map[uint32]openflow.GroupEntry{}
}

// Applies is how many changes (Apply, Bundle, DeleteByCookie) succeeded.
func (f *Fake) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

// Connected implements openflow.Client.
func (f *Fake) Connected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

// Bundle implements openflow.Client.
func (f *Fake) Bundle(ctx context.Context, add, del []openflow.Flow) error {
	return f.Apply(ctx, openflow.Change{AddFlows: add, DelFlows: del})
}

// check runs the common preconditions of a change: ctx, connection and
// injected failures. Callers hold f.mu.
func (f *Fake) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("openflowtest: %w", err)
	}
	if !f.connected {
		return openflow.ErrDisconnected
	}
	if len(f.failures) > 0 {
		err := f.failures[0]
		f.failures = f.failures[1:]
		return err
	}
	return nil
}

// Apply implements openflow.Client: in order DelFlows, AddGroups,
// AddFlows, ModFlows, DelGroups, all or nothing. Like OVS, it rejects
// flows that cannot be encoded and flows that use a group that does not
// exist, and deleting a group deletes the flows that use it.
func (f *Fake) Apply(ctx context.Context, ch openflow.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(ctx); err != nil {
		return err
	}
	flows := make(map[string]openflow.Flow, len(f.flows)+len(ch.AddFlows))
	for k, v := range f.flows {
		flows[k] = v
	}
	groups := make(map[uint32]openflow.GroupEntry, len(f.groups)+len(ch.AddGroups))
	for k, v := range f.groups {
		groups[k] = v
	}
	for _, fl := range ch.DelFlows {
		delete(flows, fl.Key())
	}
	for _, g := range ch.AddGroups {
		if err := g.Validate(); err != nil {
			return fmt.Errorf("openflowtest: group %d: %w", g.ID, err)
		}
		groups[g.ID] = cloneGroup(g)
	}
	for _, fl := range ch.AddFlows {
		if err := fl.Validate(); err != nil {
			return fmt.Errorf("openflowtest: %w", err)
		}
		flows[fl.Key()] = cloneFlow(fl)
	}
	for _, fl := range ch.ModFlows {
		if err := fl.Validate(); err != nil {
			return fmt.Errorf("openflowtest: %w", err)
		}
		if old, ok := flows[fl.Key()]; ok {
			old.Actions = append([]openflow.Action(nil), fl.Actions...)
			flows[fl.Key()] = old
		}
	}
	for _, id := range ch.DelGroups {
		delete(groups, id)
		for k, fl := range flows {
			if usesGroup(fl.Actions, id) {
				delete(flows, k)
			}
		}
	}
	for _, fl := range flows {
		for _, id := range groupsUsed(fl.Actions) {
			if _, ok := groups[id]; !ok {
				return fmt.Errorf("openflowtest: flow %s uses group %d, which does not exist", fl.Key(), id)
			}
		}
	}
	f.flows, f.groups = flows, groups
	f.applies++
	return nil
}

// DeleteByCookie implements openflow.Client.
func (f *Fake) DeleteByCookie(ctx context.Context, cookie, mask uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(ctx); err != nil {
		return err
	}
	for k, fl := range f.flows {
		if fl.Cookie&mask == cookie&mask {
			delete(f.flows, k)
		}
	}
	f.applies++
	return nil
}

// DumpFlows implements openflow.Client; unlike the switch, the Fake
// returns actions too, and flows sorted by Key.
func (f *Fake) DumpFlows(ctx context.Context, table int) ([]openflow.FlowStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("openflowtest: %w", err)
	}
	if !f.connected {
		return nil, openflow.ErrDisconnected
	}
	var out []openflow.FlowStats
	for _, fl := range f.flows {
		if table == -1 || int(fl.Table) == table {
			out = append(out, openflow.FlowStats{Flow: cloneFlow(fl)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// Flows returns the installed flows sorted by table, then priority
// (highest first), then Key.
func (f *Fake) Flows() []openflow.Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]openflow.Flow, 0, len(f.flows))
	for _, fl := range f.flows {
		out = append(out, cloneFlow(fl))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Key() < b.Key()
	})
	return out
}

// Flow returns the installed flow with key, if any.
func (f *Fake) Flow(key string) (openflow.Flow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.flows[key]
	return cloneFlow(fl), ok
}

// Groups returns the installed groups sorted by ID.
func (f *Fake) Groups() []openflow.GroupEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]openflow.GroupEntry, 0, len(f.groups))
	for _, g := range f.groups {
		out = append(out, cloneGroup(g))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Dump prints the flows, one Flow.String per line, sorted, for golden
// tests.
func (f *Fake) Dump() string {
	f.mu.Lock()
	lines := make([]string, 0, len(f.flows))
	for _, fl := range f.flows {
		lines = append(lines, fl.String())
	}
	f.mu.Unlock()
	return joinSorted(lines)
}

// DumpGroups prints the groups, one GroupEntry.String per line, sorted.
func (f *Fake) DumpGroups() string {
	f.mu.Lock()
	lines := make([]string, 0, len(f.groups))
	for _, g := range f.groups {
		lines = append(lines, g.String())
	}
	f.mu.Unlock()
	return joinSorted(lines)
}

func joinSorted(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func usesGroup(as []openflow.Action, id uint32) bool {
	for _, g := range groupsUsed(as) {
		if g == id {
			return true
		}
	}
	return false
}

func groupsUsed(as []openflow.Action) []uint32 {
	var ids []uint32
	for _, a := range as {
		if g, ok := a.(openflow.Group); ok {
			ids = append(ids, g.ID)
		}
	}
	return ids
}

func cloneFlow(f openflow.Flow) openflow.Flow {
	f.Match = append([]openflow.MatchField(nil), f.Match...)
	f.Actions = append([]openflow.Action(nil), f.Actions...)
	return f
}

func cloneGroup(g openflow.GroupEntry) openflow.GroupEntry {
	g.Buckets = append([]openflow.Bucket(nil), g.Buckets...)
	return g
}
