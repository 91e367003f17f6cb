package networkpolicy

import (
	"context"
	"strings"
	"sync"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Flows installs flows by owner; openflow.FlowSyncer implements it.
type Flows interface {
	// SyncAllKeyed makes each listed owner's flows (keyed by their Key();
	// none: the owner goes) the given ones in one atomic bundle.
	SyncAllKeyed(ctx context.Context, category int, desired map[string]map[string]of.Flow) error
	Owners() []string
}

// Reconciler makes the bridge's policy flows those of the latest State.
type Reconciler struct {
	mu       sync.Mutex
	flows    Flows
	compiler *Compiler

	// rules maps the rule ids of the installed flows to their rule
	// owners (guarded by rulesMu, so that reading it never waits for a
	// bundle).
	rulesMu sync.Mutex
	rules   map[uint32]string
}

// NewReconciler returns a reconciler that installs through flows, with
// conjunction ids from 1.
func NewReconciler(flows Flows) *Reconciler { return NewReconcilerFrom(flows, 1) }

// NewReconcilerFrom returns a reconciler whose conjunction ids start at
// firstConjID (see NewCompilerFrom).
func NewReconcilerFrom(flows Flows, firstConjID uint32) *Reconciler {
	return &Reconciler{flows: flows, compiler: NewCompilerFrom(firstConjID)}
}

// Realize compiles s and makes the policy owners of the bridge exactly
// those of s, in one atomic bundle: the switch goes from the previous
// state to s without any state in between (no moment where a rule's
// clauses and its conj_id flow disagree, where isolation is in place
// without its allow flows, or the reverse). Only the owners whose flows
// changed are in the bundle. On failure nothing changed; calling it again
// retries.
func (r *Reconciler) Realize(ctx context.Context, s *State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	desired := r.compiler.CompileKeyed(s)
	for _, owner := range r.flows.Owners() {
		if _, ok := desired[owner]; !ok && strings.HasPrefix(owner, OwnerPrefix) {
			desired[owner] = nil
		}
	}
	if err := r.flows.SyncAllKeyed(ctx, agentof.CategoryPolicy, desired); err != nil {
		return err
	}
	r.rulesMu.Lock()
	r.rules = r.compiler.RuleOwners()
	r.rulesMu.Unlock()
	r.compiler.ReleaseUnusedIDs()
	return nil
}

// RuleOwner returns the owner (networkpolicy/rule/<uid>/<in|out>/<index>)
// of the rule whose installed allow flows load id into IngressRuleReg or
// EgressRuleReg.
func (r *Reconciler) RuleOwner(id uint32) (string, bool) {
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	owner, ok := r.rules[id]
	return owner, ok
}

// ParseRuleOwner splits a rule owner into the policy's UID, its direction
// ("in" or "out") and the rule's index.
func ParseRuleOwner(owner string) (uid, dir, index string, ok bool) {
	rest, ok := strings.CutPrefix(owner, ownerRulePrefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
