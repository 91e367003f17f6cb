package networkpolicy

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Flows installs flows by owner; openflow.FlowSyncer implements it.
type Flows interface {
	// SyncAllKeyed makes each listed owner's flows (keyed by their Key();
	// none: the owner goes) the given ones in one atomic bundle.
	SyncAllKeyed(ctx context.Context, category int, desired map[string]map[string]of.Flow) error
	// SyncPatch changes only the listed flows of the listed owners, in one
	// atomic bundle.
	SyncPatch(ctx context.Context, category int, patches map[string]*agentof.OwnerPatch) error
	Owners() []string
	// Cookie is the cookie of the flows of category.
	Cookie(category int) uint64
}

// Reconciler makes the bridge's policy flows those of the latest State.
type Reconciler struct {
	mu       sync.Mutex
	flows    Flows
	compiler *Compiler
	// rules are the rules of the installed flows, by conjunction id.
	rules atomic.Pointer[map[uint32]Rule]
	// full makes the next Realize sync every policy owner, not only the
	// compile's changes: the first time, and after a failure, when what
	// is installed is the state before a change the compiler has already
	// moved past.
	full bool
}

// Rule returns the rule whose allow flows load id, as of the last
// successful Realize (safe for concurrent use).
func (r *Reconciler) Rule(id uint32) (Rule, bool) {
	m := r.rules.Load()
	if m == nil {
		return Rule{}, false
	}
	rule, ok := (*m)[id]
	return rule, ok
}

// NewReconciler returns a reconciler that installs through flows, with
// conjunction ids from 1.
func NewReconciler(flows Flows) *Reconciler { return NewReconcilerFrom(flows, 1) }

// NewReconcilerFrom returns a reconciler whose conjunction ids start at
// firstConjID (see NewCompilerFrom).
func NewReconcilerFrom(flows Flows, firstConjID uint32) *Reconciler {
	c := NewCompilerFrom(firstConjID)
	c.SetCookie(flows.Cookie(agentof.CategoryPolicy))
	return &Reconciler{flows: flows, compiler: c, full: true}
}

// Realize compiles s and makes the policy owners of the bridge exactly
// those of s, in one atomic bundle: the switch goes from the previous
// state to s without any state in between (no moment where a rule's
// clauses and its conj_id flow disagree, where isolation is in place
// without its allow flows, or the reverse). Only the flows that changed
// are in the bundle, and only the policies whose inputs changed are
// compiled again. On failure nothing changed; calling it again retries
// (comparing every policy owner with the bridge's).
func (r *Reconciler) Realize(ctx context.Context, s *State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.full {
		desired := r.compiler.CompileKeyed(s)
		for _, owner := range r.flows.Owners() {
			if _, ok := desired[owner]; !ok && strings.HasPrefix(owner, OwnerPrefix) {
				desired[owner] = nil
			}
		}
		err = r.flows.SyncAllKeyed(ctx, agentof.CategoryPolicy, desired)
	} else {
		err = r.flows.SyncPatch(ctx, agentof.CategoryPolicy, r.compiler.CompileChanges(s))
	}
	if err != nil {
		r.full = true
		return err
	}
	r.full = false
	r.compiler.ReleaseUnusedIDs()
	rules := r.compiler.Rules()
	r.rules.Store(&rules)
	return nil
}
