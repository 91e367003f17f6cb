package openflow

import (
	"context"
	"fmt"
	"maps"
	"slices"
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
	// CookieFlagsMask are the bits under the category that a flow's
	// owner sets itself (the syncer stamps the round and the category
	// and keeps these).
	CookieFlagsMask = uint64(0xff) << 32
	// CookieCounted marks the flows whose counters are NetworkPolicy
	// statistics, so that the collector asks the switch for those only.
	CookieCounted = uint64(1) << 32
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

// Cookie is the cookie the syncer installs flows of category with (plus
// the flags under CookieFlagsMask the flow carries). Flows that already
// carry it are taken as they are.
func (s *FlowSyncer) Cookie(category int) uint64 { return s.cookie(category) }

func (s *FlowSyncer) cookie(category int) uint64 {
	return uint64(s.round)<<RoundShift | uint64(category&0xff)<<categoryShift
}

// Sync makes the owner's installed flows equal desired (SyncAll of one
// owner).
func (s *FlowSyncer) Sync(ctx context.Context, owner string, category int, desired []of.Flow) error {
	return s.SyncAll(ctx, category, map[string][]of.Flow{owner: desired})
}

// ownersOf names the owners of a change for an error message.
func ownersOf[V any](wants map[string]V) string {
	if len(wants) == 1 {
		for owner := range wants {
			return owner
		}
	}
	return fmt.Sprintf("%d owners", len(wants))
}

// keyedFlow is a flow and its Key().
type keyedFlow struct {
	key string
	f   of.Flow
}

// pipelineOrdered returns the flows of kfs ordered by table, then
// priority, highest first, as the pipeline meets them. Flows of one table
// and priority stay in the order given: the switch applies a bundle as a
// whole, so their order does not matter, and ordering them by key would
// cost more than the rest of a large diff.
func pipelineOrdered(kfs []keyedFlow) []of.Flow {
	order := make([]uint64, len(kfs))
	for i := range kfs {
		f := &kfs[i].f
		order[i] = uint64(f.Table)<<56 | uint64(0xffff-f.Priority)<<32 | uint64(i)
	}
	slices.Sort(order)
	out := make([]of.Flow, len(kfs))
	for i, o := range order {
		out[i] = kfs[uint32(o)].f
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
	d := diff{cookie: s.cookie(category)}
	s.mu.Lock()
	// Every flow of an owner not installed yet is a change.
	fresh := 0
	for owner, want := range desired {
		if s.installed[owner] == nil {
			fresh += len(want)
		}
	}
	d.changes = make([]keyedFlow, 0, fresh)
	s.reserveRefs(fresh)
	for owner, want := range desired {
		have := s.installed[owner]
		ownerChanged := false
		for k, f := range want {
			ownerChanged = d.set(s, have, want, k, f) || ownerChanged
		}
		for k, f := range have {
			if _, ok := want[k]; !ok {
				d.remove(k, f)
				ownerChanged = true
			}
		}
		if ownerChanged {
			d.changed = append(d.changed, owner)
		}
	}
	s.mu.Unlock()
	return s.commit(ctx, category, &d, ownersOf(desired), func() {
		for _, owner := range d.changed {
			if want := desired[owner]; len(want) == 0 {
				delete(s.installed, owner)
			} else {
				s.installed[owner] = want
			}
		}
	})
}

// OwnerPatch changes some of one owner's flows: Set adds or replaces
// flows (keyed by their Key()), Remove drops keys (a key in both is set).
type OwnerPatch struct {
	Set    map[string]of.Flow
	Remove []string
}

// SyncPatch applies patches to the installed flows of their owners, in
// one atomic bundle, as SyncAllKeyed does for whole owners: its cost is
// that of the patches, not of the owners' flows. An owner left with no
// flows goes. The Set maps are the syncer's from then on.
func (s *FlowSyncer) SyncPatch(ctx context.Context, category int, patches map[string]*OwnerPatch) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	d := diff{cookie: s.cookie(category)}
	s.mu.Lock()
	fresh := 0
	for owner, p := range patches {
		if s.installed[owner] == nil {
			fresh += len(p.Set)
		}
	}
	d.changes = make([]keyedFlow, 0, fresh)
	s.reserveRefs(fresh)
	for owner, p := range patches {
		have := s.installed[owner]
		ownerChanged := false
		for k, f := range p.Set {
			ownerChanged = d.set(s, have, p.Set, k, f) || ownerChanged
		}
		// A key listed twice is removed once.
		var removed map[string]bool
		if len(p.Remove) > 1 {
			removed = make(map[string]bool, len(p.Remove))
		}
		for _, k := range p.Remove {
			if _, set := p.Set[k]; set || removed[k] {
				continue
			}
			if f, ok := have[k]; ok {
				if removed != nil {
					removed[k] = true
				}
				d.remove(k, f)
				ownerChanged = true
			}
		}
		if ownerChanged {
			d.changed = append(d.changed, owner)
		}
	}
	s.mu.Unlock()
	return s.commit(ctx, category, &d, fmt.Sprintf("%d owners", len(patches)), func() {
		for _, owner := range d.changed {
			p, have := patches[owner], s.installed[owner]
			if have == nil && len(p.Remove) == 0 {
				s.installed[owner] = p.Set
				continue
			}
			if have == nil {
				have = make(map[string]of.Flow, len(p.Set))
				s.installed[owner] = have
			}
			for _, k := range p.Remove {
				delete(have, k)
			}
			maps.Copy(have, p.Set)
			if len(have) == 0 {
				delete(s.installed, owner)
			}
		}
	})
}

// reserveRefs makes room for n more keys in the owner counts at once
// when they would more than double, rather than growing the map step by
// step (a first sync of 100,000 flows).
func (s *FlowSyncer) reserveRefs(n int) {
	if n > len(s.refs) {
		grown := make(map[string]int, len(s.refs)+n)
		maps.Copy(grown, s.refs)
		s.refs = grown
	}
}

// diff is a change being computed: the flows to add, and the keys owners
// gain and lose. The owner counts (refs) take gains as they are found,
// before the bundle, and commit restores them if it fails.
type diff struct {
	cookie  uint64
	changes []keyedFlow
	// gained and lost list a key once per owner that gains or loses it.
	gained, lost []string
	lostFlows    []of.Flow
	changed      []string
}

// set compares the desired flow f at k (in want, stamped with the cookie
// there) with have, and reports whether the owner changes.
func (d *diff) set(s *FlowSyncer, have, want map[string]of.Flow, k string, f of.Flow) bool {
	if c := d.cookie | f.Cookie&CookieFlagsMask; f.Cookie != c {
		f.Cookie = c
		want[k] = f
	}
	old, ok := have[k]
	if ok && of.SameFlow(old, f) {
		return false
	}
	if !ok {
		s.refs[k]++
		d.gained = append(d.gained, k)
	}
	d.changes = append(d.changes, keyedFlow{k, f})
	return true
}

func (d *diff) remove(k string, f of.Flow) {
	d.lost = append(d.lost, k)
	d.lostFlows = append(d.lostFlows, f)
}

// commit sends the bundle of d and, once the switch took it, updates the
// cache with apply.
func (s *FlowSyncer) commit(ctx context.Context, category int, d *diff, owners string, apply func()) error {
	s.mu.Lock()
	// A key goes from the switch when its last owner loses it; a key
	// another owner keeps or gains stays (the gain's add replaces it).
	var gone []keyedFlow
	for i, k := range d.lost {
		if s.refs[k]--; s.refs[k] <= 0 {
			delete(s.refs, k)
			gone = append(gone, keyedFlow{k, d.lostFlows[i]})
		}
	}
	restore := func() {
		for _, k := range d.lost {
			s.refs[k]++
		}
		for _, k := range d.gained {
			if s.refs[k]--; s.refs[k] <= 0 {
				delete(s.refs, k)
			}
		}
	}
	// A key several owners have goes once, and the owners that change it
	// must agree on its flow.
	var shared map[string]of.Flow
	adds := d.changes[:0]
	for _, c := range d.changes {
		if s.refs[c.key] > 1 {
			if prev, dup := shared[c.key]; dup {
				if !of.SameFlow(prev, c.f) {
					restore()
					s.mu.Unlock()
					return fmt.Errorf("owners disagree on the actions of %s", c.key)
				}
				continue
			}
			if shared == nil {
				shared = map[string]of.Flow{}
			}
			shared[c.key] = c.f
		}
		adds = append(adds, c)
	}
	s.mu.Unlock()
	if len(adds) > 0 || len(gone) > 0 {
		if err := s.bundler.Bundle(ctx, pipelineOrdered(adds), pipelineOrdered(gone)); err != nil {
			s.mu.Lock()
			restore()
			s.mu.Unlock()
			return fmt.Errorf("install flows of %s (%d added, %d deleted): %w", owners, len(adds), len(gone), err)
		}
		if s.afterChange != nil {
			s.afterChange(ctx, category)
		}
	}
	s.mu.Lock()
	apply()
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

// KeyOwners returns the owner of each installed flow that keep accepts,
// by flow key (one of its owners when several share it), without copying
// or sorting flows: for the statistics collector.
func (s *FlowSyncer) KeyOwners(keep func(owner string, f of.Flow) bool) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for owner, fs := range s.installed {
		for k, f := range fs {
			if keep(owner, f) {
				out[k] = owner
			}
		}
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
