package networkpolicy

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Flows installs flows by owner; openflow.FlowSyncer implements it.
type Flows interface {
	Sync(ctx context.Context, owner string, category int, flows []of.Flow) error
	Owners() []string
}

// Reconciler makes the bridge's policy flows those of the latest State.
type Reconciler struct {
	mu       sync.Mutex
	flows    Flows
	compiler *Compiler
	// installed is what each owner last synced successfully, for
	// make-before-break updates of allow flows.
	installed map[string][]of.Flow
}

// NewReconciler returns a reconciler that installs through flows, with
// conjunction ids from 1.
func NewReconciler(flows Flows) *Reconciler { return NewReconcilerFrom(flows, 1) }

// NewReconcilerFrom returns a reconciler whose conjunction ids start at
// firstConjID (see NewCompilerFrom).
func NewReconcilerFrom(flows Flows, firstConjID uint32) *Reconciler {
	return &Reconciler{flows: flows, compiler: NewCompilerFrom(firstConjID), installed: map[string][]of.Flow{}}
}

// ownerRank orders owner kinds for installation: allow flows first, then
// clause flows, then isolation. Removal goes in the reverse order.
func ownerRank(owner string) int {
	switch {
	case owner == ownerBase:
		return 0
	case strings.HasPrefix(owner, ownerRulePrefix):
		return 1
	case strings.HasPrefix(owner, ownerMatchPrefix):
		return 2
	}
	return 3
}

func sortOwners(owners []string, reverse bool) {
	sort.Slice(owners, func(i, j int) bool {
		ri, rj := ownerRank(owners[i]), ownerRank(owners[j])
		if ri != rj {
			return (ri < rj) != reverse
		}
		return owners[i] < owners[j]
	})
}

// Realize compiles s and syncs every owner, then deletes the policy owners
// that s no longer has. It goes on after a failed owner and returns all
// errors; calling it again with the same State retries what failed.
//
// Order: allow flows of rules are installed before their clause flows
// (and, while being replaced, kept until the clause flows changed), and
// isolation last; isolation is removed first and allow flows last.
func (r *Reconciler) Realize(ctx context.Context, s *State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	desired := r.compiler.Compile(s)
	var errs []error
	sync := func(owner string, flows []of.Flow) {
		if err := r.flows.Sync(ctx, owner, agentof.CategoryPolicy, flows); err != nil {
			errs = append(errs, err)
			return
		}
		if len(flows) == 0 {
			delete(r.installed, owner)
		} else {
			r.installed[owner] = flows
		}
	}

	present := make([]string, 0, len(desired))
	for owner := range desired {
		present = append(present, owner)
	}
	sortOwners(present, false)
	for _, owner := range present {
		flows := desired[owner]
		if ownerRank(owner) == 1 {
			// Keep the rule's previous allow flows until its clause
			// flows have moved on (a conjunction id may change).
			flows = union(r.installed[owner], flows)
		}
		sync(owner, flows)
	}
	for _, owner := range present {
		if ownerRank(owner) == 1 {
			sync(owner, desired[owner])
		}
	}

	var gone []string
	for _, owner := range r.flows.Owners() {
		if _, ok := desired[owner]; !ok && strings.HasPrefix(owner, OwnerPrefix) {
			gone = append(gone, owner)
		}
	}
	sortOwners(gone, true)
	for _, owner := range gone {
		sync(owner, nil)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.compiler.ReleaseUnusedIDs()
	return nil
}

// union returns the flows of a and b, b's winning for the same key.
func union(a, b []of.Flow) []of.Flow {
	if len(a) == 0 {
		return b
	}
	keys := make(map[string]bool, len(b))
	for _, f := range b {
		keys[f.Key()] = true
	}
	out := append([]of.Flow(nil), b...)
	for _, f := range a {
		if !keys[f.Key()] {
			out = append(out, f)
		}
	}
	return out
}
