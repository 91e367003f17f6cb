package openflow

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Bundler applies flow changes atomically: deletes, then adds (an add
// replaces a flow with the same table, priority and match).
type Bundler interface {
	Bundle(ctx context.Context, add, del []of.Flow) error
}

// Cookie layout: the top 16 bits carry the agent's round (incremented at
// each start), so that flows of an earlier round can be swept after a
// restart; the next 8 bits the category of the owner, for debugging.
const (
	RoundShift    = 48
	RoundMask     = uint64(0xffff) << RoundShift
	categoryShift = 40
)

// Categories of flow owners.
const (
	CategoryBase    = 1
	CategoryPod     = 2
	CategoryNode    = 3
	CategoryPolicy  = 4
	CategoryService = 5
	// CategoryFlowExporter is the category of the per-connection flows
	// that the commit flows learn into the ConnectionStats table when the
	// flow exporter counts connections on the userspace datapath. Like
	// every learned flow they carry no round (LearnedCookie).
	CategoryFlowExporter = 6
	// CategoryTraceflow: the flows of the running Traceflows.
	CategoryTraceflow = 7
)

// FlowSyncer keeps what is installed in the bridge, per owner (e.g.
// "pod/<container>"), and changes it by diff: Sync(owner, desired) sends
// one bundle with exactly the flows to add and delete. A failed bundle
// leaves the cache as it was, so the next Sync retries the same change.
type FlowSyncer struct {
	bundler Bundler
	round   uint16

	// applyMu serializes changes, and is held while a bundle is in
	// flight; mu guards the cache only and is never held across I/O, so
	// that Replay (called from the connection's on-connect hook while a
	// Sync waits for that connection) can always read the cache.
	applyMu   sync.Mutex
	mu        sync.Mutex
	installed map[string]map[string]of.Flow // owner -> flow key -> flow
	// refs counts the owners of each installed flow key.
	refs map[string]int
	// afterChange, when set, runs after every bundle that changed flows,
	// before the change returns (see SetAfterChange).
	afterChange func(ctx context.Context, category int)
}

// SetAfterChange sets a function that runs after every bundle that
// changed flows, with the category of the change, before Sync returns.
// The agent uses it on the userspace datapath to flush datapath flows
// that revalidation leaves stale. Set it before the first Sync.
func (s *FlowSyncer) SetAfterChange(f func(ctx context.Context, category int)) { s.afterChange = f }

// NewFlowSyncer returns a syncer that stamps flows with round.
func NewFlowSyncer(b Bundler, round uint16) *FlowSyncer {
	return &FlowSyncer{bundler: b, round: round, installed: map[string]map[string]of.Flow{}, refs: map[string]int{}}
}

// Round is the round stamped into every cookie.
func (s *FlowSyncer) Round() uint16 { return s.round }

func (s *FlowSyncer) cookie(category int) uint64 {
	return uint64(s.round)<<RoundShift | uint64(category&0xff)<<categoryShift
}

// Sync makes the owner's installed flows equal desired (SyncAll of one
// owner).
func (s *FlowSyncer) Sync(ctx context.Context, owner string, category int, desired []of.Flow) error {
	return s.SyncAll(ctx, category, map[string][]of.Flow{owner: desired})
}

// ownersOf names the owners of a change for an error message.
func ownersOf(wants map[string]map[string]of.Flow) string {
	if len(wants) == 1 {
		for owner := range wants {
			return owner
		}
	}
	return fmt.Sprintf("%d owners", len(wants))
}

// sortedByKey returns the flows of keys in pipeline order (table,
// priority descending, key), like of.SortFlows without rebuilding keys.
func sortedByKey(flows map[string]of.Flow, keys []string) []of.Flow {
	type entry struct {
		table uint8
		prio  uint16
		key   string
		f     of.Flow
	}
	es := make([]entry, len(keys))
	for i, k := range keys {
		f := flows[k]
		es[i] = entry{f.Table, f.Priority, k, f}
	}
	sort.Slice(es, func(i, j int) bool {
		a, b := &es[i], &es[j]
		if a.table != b.table {
			return a.table < b.table
		}
		if a.prio != b.prio {
			return a.prio > b.prio
		}
		return a.key < b.key
	})
	out := make([]of.Flow, len(es))
	for i := range es {
		out[i] = es[i].f
	}
	return out
}

// SyncAll makes the installed flows of every owner in desired equal its
// flows (none: the owner goes), in one atomic bundle: the switch sees the
// whole change at once or not at all. Owners not in desired are left
// alone. A flow key that one owner drops and another keeps or adds stays.
func (s *FlowSyncer) SyncAll(ctx context.Context, category int, desired map[string][]of.Flow) error {
	keyed := make(map[string]map[string]of.Flow, len(desired))
	for owner, flows := range desired {
		want := make(map[string]of.Flow, len(flows))
		for _, f := range flows {
			k := f.Key()
			if prev, dup := want[k]; dup && !of.SameFlow(prev, f) {
				return fmt.Errorf("owner %s: two flows with the same match and different actions: %s", owner, k)
			}
			want[k] = f
		}
		keyed[owner] = want
	}
	return s.SyncAllKeyed(ctx, category, keyed)
}

// SyncAllKeyed is SyncAll for flows already keyed by their Key(), as a
// compiler that deduplicates by key has them: it saves building every
// key again. The maps are the syncer's from then on; do not modify them.
func (s *FlowSyncer) SyncAllKeyed(ctx context.Context, category int, desired map[string]map[string]of.Flow) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	cookie := s.cookie(category)
	wants := make(map[string]map[string]of.Flow, len(desired))
	total := 0
	for _, flows := range desired {
		total += len(flows)
	}
	added := make(map[string]of.Flow, total)
	for owner, flows := range desired {
		for k, f := range flows {
			if f.Cookie != cookie {
				f.Cookie = cookie
				flows[k] = f
			}
		}
		wants[owner] = flows
	}
	s.mu.Lock()
	delta := make(map[string]int, total)
	gone := map[string]of.Flow{}
	changed := make(map[string]bool, len(wants))
	for owner, want := range wants {
		have := s.installed[owner]
		for k, f := range want {
			old, ok := have[k]
			if !ok {
				delta[k]++
				changed[owner] = true
			}
			if !ok || !of.SameFlow(old, f) {
				if prev, dup := added[k]; dup && !of.SameFlow(prev, f) {
					s.mu.Unlock()
					return fmt.Errorf("owners disagree on the actions of %s", k)
				}
				added[k] = f
				changed[owner] = true
			}
		}
		for k, f := range have {
			if _, ok := want[k]; !ok {
				delta[k]--
				gone[k] = f
				changed[owner] = true
			}
		}
	}
	delKeys := make([]string, 0, len(gone))
	for k := range gone {
		if s.refs[k]+delta[k] <= 0 {
			if _, readded := added[k]; !readded {
				delKeys = append(delKeys, k)
			}
		}
	}
	s.mu.Unlock()
	addKeys := make([]string, 0, len(added))
	for k := range added {
		addKeys = append(addKeys, k)
	}
	add, del := sortedByKey(added, addKeys), sortedByKey(gone, delKeys)
	if len(add) > 0 || len(del) > 0 {
		if err := s.bundler.Bundle(ctx, add, del); err != nil {
			return fmt.Errorf("install flows of %s (%d added, %d deleted): %w", ownersOf(wants), len(add), len(del), err)
		}
		if s.afterChange != nil {
			s.afterChange(ctx, category)
		}
	}
	s.mu.Lock()
	// Owners' key sets changed by delta: apply it, not a full re-count.
	for k, d := range delta {
		if s.refs[k] += d; s.refs[k] <= 0 {
			delete(s.refs, k)
		}
	}
	for owner := range changed {
		if want := wants[owner]; len(want) == 0 {
			delete(s.installed, owner)
		} else {
			s.installed[owner] = want
		}
	}
	s.mu.Unlock()
	return nil
}

// Delete removes every flow of owner.
func (s *FlowSyncer) Delete(ctx context.Context, owner string) error {
	return s.Sync(ctx, owner, 0, nil)
}

// Replay installs every cached flow again in one bundle, e.g. after
// ovs-vswitchd restarted with an empty bridge.
//
// Replay takes only the cache lock, for a snapshot: a Sync that waits for
// the connection holds the apply lock, and its change, computed against
// the same cache, applies cleanly on top of the replay.
func (s *FlowSyncer) Replay(ctx context.Context) error {
	s.mu.Lock()
	all := s.allLocked()
	s.mu.Unlock()
	if err := s.bundler.Bundle(ctx, all, nil); err != nil {
		return fmt.Errorf("replay %d flows: %w", len(all), err)
	}
	return nil
}

// Flows returns every installed flow, sorted.
func (s *FlowSyncer) Flows() []of.Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allLocked()
}

// OwnedFlows returns the installed flows of the owners keep accepts, by
// owner, each list sorted.
func (s *FlowSyncer) OwnedFlows(keep func(owner string) bool) map[string][]of.Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]of.Flow{}
	for owner, fs := range s.installed {
		if !keep(owner) {
			continue
		}
		list := make([]of.Flow, 0, len(fs))
		for _, f := range fs {
			list = append(list, f)
		}
		of.SortFlows(list)
		out[owner] = list
	}
	return out
}

// CountByTable counts the installed flows per table (a flow several owners
// share once), without copying or sorting them: for metrics scrapes.
func (s *FlowSyncer) CountByTable() map[uint8]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[uint8]int{}
	shared := map[string]bool{}
	for _, fs := range s.installed {
		for k, f := range fs {
			if s.refs[k] > 1 {
				if shared[k] {
					continue
				}
				shared[k] = true
			}
			counts[f.Table]++
		}
	}
	return counts
}

// Owners returns the owners that have flows.
func (s *FlowSyncer) Owners() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	owners := make([]string, 0, len(s.installed))
	for o := range s.installed {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	return owners
}

func (s *FlowSyncer) allLocked() []of.Flow {
	seen := map[string]bool{}
	var all []of.Flow
	for _, fs := range s.installed {
		for k, f := range fs {
			if !seen[k] {
				seen[k] = true
				all = append(all, f)
			}
		}
	}
	of.SortFlows(all)
	return all
}

// Dump prints every installed flow, one per line, in pipeline order.
func (s *FlowSyncer) Dump() string {
	var b strings.Builder
	for _, f := range s.Flows() {
		b.WriteString(f.String())
		b.WriteString("\n")
	}
	return b.String()
}
