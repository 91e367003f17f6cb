// Package networkpolicy computes, from Kubernetes Pods, Namespaces and
// NetworkPolicies, the objects agents enforce: AppliedToGroups (the pods a
// policy applies to), AddressGroups (the peer pods of rules, shared between
// policies that select the same peers) and internal NetworkPolicies (rules
// that refer to those groups), each with the span of nodes that need it.
//
// The computation is incremental. Informer handlers only update indexes
// (pods and namespaces by label, group selections by the labels they
// require) and mark the groups and policies that changed; a worker then
// rebuilds just those objects, as a pure function of the indexed state,
// into a Store that the API server serves per node. It syncs the marked
// AppliedToGroups first, then the policies and AddressGroups whose spans
// derive from theirs, so that the initial lists, marked while the
// informers sync, are computed in one pass, each object once.
//
// Groups are shared by selector key: the policies with the same pod
// selector in a namespace share one AppliedToGroup, those with the same
// peer one AddressGroup, and the AppliedToGroup and AddressGroup of the
// same key share their members and the published list of them.
package networkpolicy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// Controller computes AppliedToGroups, AddressGroups and internal
// NetworkPolicies.
type Controller struct {
	// mu guards index, policies and the dirty lists, for handlers and
	// the worker; the stores are written with it held.
	mu       sync.Mutex
	index    *index
	policies map[string]*policyState

	synced []cache.InformerSynced
	// podStore is the pod informer's cache (of *pod).
	podStore cache.Indexer

	// The objects marked for sync, synced in this order; wake tells the
	// worker there are some.
	dirtyATGs     []*group
	dirtyPolicies []*policyState
	dirtyAGs      []*group
	wake          chan struct{}
	// scratch is reused for spans.
	scratch []string

	appliedToGroups *MemoryStore[controlplane.AppliedToGroup]
	addressGroups   *MemoryStore[controlplane.AddressGroup]
	networkPolicies *MemoryStore[controlplane.NetworkPolicy]

	// pending counts the marked objects not synced yet; with started and
	// processed, it lets tests tell when the controller is idle. syncedAt
	// is when the handlers had seen the initial lists.
	metrics   *metrics
	pending   atomic.Int64
	processed atomic.Uint64
	started   atomic.Bool
	syncedAt  time.Time
}

// policyState is a NetworkPolicy being maintained.
type policyState struct {
	key         string // namespace/name
	uid         types.UID
	rules       []controlplane.NetworkPolicyRule
	policyTypes []controlplane.Direction
	// atg is its AppliedToGroup, ags its AddressGroups.
	atg *group
	ags []*group
	// dirty: marked for sync; dead: deleted; stale: its spec changed since
	// it was last stored.
	dirty, dead, stale bool
	// publishedSpan is the span version of the AppliedToGroup when the
	// policy was last stored.
	publishedSpan uint64
}

// New returns a controller watching Pods, Namespaces and NetworkPolicies
// through the factory's informers. Start the factory and call Run. The
// informers' caches then hold trimmed objects (pods as *pod): the
// factory's Pod, Namespace and NetworkPolicy informers are the
// controller's alone; others read pods through Controller.Pod.
func New(factory informers.SharedInformerFactory) (*Controller, error) {
	c := &Controller{metrics: newMetrics(),
		policies:        map[string]*policyState{},
		wake:            make(chan struct{}, 1),
		appliedToGroups: newAppliedToGroupStore(),
		addressGroups:   newAddressGroupStore(),
		networkPolicies: newNetworkPolicyStore(),
	}
	c.index = newIndex(c.selectionChanged)
	c.podStore = factory.Core().V1().Pods().Informer().GetIndexer()
	handlers := []struct {
		kind      string
		informer  cache.SharedIndexInformer
		transform cache.TransformFunc
		handler   cache.ResourceEventHandler
	}{
		{"pods", factory.Core().V1().Pods().Informer(), transformPod, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPod(obj) },
			UpdateFunc: func(_, obj any) { c.onPod(obj) },
			DeleteFunc: c.onPodDelete,
		}},
		{"namespaces", factory.Core().V1().Namespaces().Informer(), transformNamespace, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onNamespace(obj) },
			UpdateFunc: func(_, obj any) { c.onNamespace(obj) },
			DeleteFunc: c.onNamespaceDelete,
		}},
		{"networkpolicies", factory.Networking().V1().NetworkPolicies().Informer(), transformPolicy, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPolicy(obj) },
			UpdateFunc: c.onPolicyUpdate,
			DeleteFunc: c.onPolicyDelete,
		}},
	}
	for _, h := range handlers {
		// The caches keep only what the computation reads (objects.go).
		if err := h.informer.SetTransform(h.transform); err != nil {
			return nil, fmt.Errorf("setting the %s informer's transform: %w", h.kind, err)
		}
		reg, err := h.informer.AddEventHandler(h.handler)
		if err != nil {
			return nil, fmt.Errorf("adding %s event handler: %w", h.kind, err)
		}
		c.synced = append(c.synced, reg.HasSynced)
	}
	return c, nil
}

// Pod returns what the pod informer keeps of a pod: a Pod with only its
// identity, labels, node, host network, phase and IPs set (a NotFound
// error when there is no such pod).
func (c *Controller) Pod(namespace, name string) (*corev1.Pod, error) {
	obj, ok, err := c.podStore.GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	if ok {
		if p, ok := podFromObject(obj); ok {
			return p.asPod(), nil
		}
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

// AppliedToGroups returns the store of AppliedToGroups.
func (c *Controller) AppliedToGroups() Store[controlplane.AppliedToGroup] { return c.appliedToGroups }

// AddressGroups returns the store of AddressGroups.
func (c *Controller) AddressGroups() Store[controlplane.AddressGroup] { return c.addressGroups }

// NetworkPolicies returns the store of internal NetworkPolicies, named
// namespace/name.
func (c *Controller) NetworkPolicies() Store[controlplane.NetworkPolicy] { return c.networkPolicies }

// Run waits for the informers' initial lists, then computes until ctx
// ends.
func (c *Controller) Run(ctx context.Context) error {
	klog.InfoS("Starting NetworkPolicy controller")
	if !c.waitSynced(ctx) {
		return fmt.Errorf("waiting for pod, namespace and networkpolicy caches: %w", context.Cause(ctx))
	}
	c.syncedAt = time.Now()
	c.started.Store(true)
	for {
		start := time.Now()
		c.mu.Lock()
		c.flush(ctx.Done())
		c.mu.Unlock()
		c.metrics.observeFlush(start)
		select {
		case <-ctx.Done():
			klog.InfoS("Stopped NetworkPolicy controller")
			return nil
		case <-c.wake:
		}
	}
}

// waitSynced waits until the handlers have seen the informers' initial
// lists. It polls every 10 ms, not every 100 ms as
// cache.WaitForCacheSync does: the computation starts then.
func (c *Controller) waitSynced(ctx context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !c.cacheSynced() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// cacheSynced reports whether the handlers have seen the informers'
// initial lists.
func (c *Controller) cacheSynced() bool {
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return true
}

// idle reports whether the handlers have seen the initial lists and no
// object is marked or being synced; processed lets a caller check that
// nothing ran between two calls. It takes no lock, so that polling it
// does not slow the informers down.
func (c *Controller) idle() (idle bool, processed uint64) {
	processed = c.processed.Load()
	return c.started.Load() && c.pending.Load() == 0, processed
}

// markGroup marks a group for sync.
func (c *Controller) markGroup(g *group) {
	if g == nil || g.dirty {
		return
	}
	g.dirty = true
	if g.kind == appliedToKind {
		c.dirtyATGs = append(c.dirtyATGs, g)
	} else {
		c.dirtyAGs = append(c.dirtyAGs, g)
	}
	c.marked()
}

// markPolicy marks a policy for sync.
func (c *Controller) markPolicy(ps *policyState) {
	if ps.dirty {
		return
	}
	ps.dirty = true
	c.dirtyPolicies = append(c.dirtyPolicies, ps)
	c.marked()
}

func (c *Controller) marked() {
	c.pending.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// selectionChanged marks the groups of a selection whose members changed.
func (c *Controller) selectionChanged(s *podSelection) {
	c.markGroup(s.atg)
	c.markGroup(s.ag)
}

// deleted unwraps the object of a delete event.
func deleted(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

func (c *Controller) onPod(obj any) {
	pod, ok := podFromObject(obj)
	if !ok {
		return
	}
	state := pod
	if !podEligible(pod) {
		state = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setPod(pod.Namespace, pod.Name, state)
}

func (c *Controller) onPodDelete(obj any) {
	pod, ok := podFromObject(deleted(obj))
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setPod(pod.Namespace, pod.Name, nil)
}

func (c *Controller) onNamespace(obj any) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setNamespace(ns.Name, ns)
}

func (c *Controller) onNamespaceDelete(obj any) {
	ns, ok := deleted(obj).(*corev1.Namespace)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setNamespace(ns.Name, nil)
}

func (c *Controller) onPolicy(obj any) {
	np, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok {
		return
	}
	c.setPolicy(np.Namespace+"/"+np.Name, np)
}

func (c *Controller) onPolicyUpdate(oldObj, obj any) {
	old, ok1 := oldObj.(*networkingv1.NetworkPolicy)
	np, ok2 := obj.(*networkingv1.NetworkPolicy)
	if ok1 && ok2 && old.UID == np.UID && apiequality.Semantic.DeepEqual(old.Spec, np.Spec) {
		return
	}
	c.onPolicy(obj)
}

func (c *Controller) onPolicyDelete(obj any) {
	np, ok := deleted(obj).(*networkingv1.NetworkPolicy)
	if !ok {
		return
	}
	c.setPolicy(np.Namespace+"/"+np.Name, nil)
}

// setPolicy records a policy's new spec (nil when deleted): it takes
// references on the groups the new spec uses before it drops those of the
// old one, so shared groups are kept, and drops groups left unused.
func (c *Controller) setPolicy(key string, np *networkingv1.NetworkPolicy) {
	var spec policySpec
	if np != nil {
		spec = translatePolicy(np)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.policies[key]
	if np == nil {
		if ps == nil {
			return
		}
		delete(c.policies, key)
		ps.dead = true
		c.unref(ps, ps.atg, ps.ags)
		c.markPolicy(ps)
		if klog.V(4).Enabled() {
			klog.InfoS("NetworkPolicy deleted", "policy", key)
		}
		return
	}
	if ps == nil {
		ps = &policyState{key: key}
		c.policies[key] = ps
	}
	oldATG, oldAGs := ps.atg, ps.ags
	ps.uid = np.UID
	ps.rules, ps.policyTypes = spec.rules, spec.policyTypes
	c.ref(ps, &spec)
	if oldATG != nil {
		c.unref(ps, oldATG, oldAGs)
	}
	ps.stale = true
	c.markPolicy(ps)
	if klog.V(4).Enabled() {
		klog.InfoS("NetworkPolicy changed", "policy", key)
	}
}

// ref takes the references of a policy's spec on its groups.
func (c *Controller) ref(ps *policyState, spec *policySpec) {
	atg, created := c.index.ensureGroup(appliedToKind, spec.appliedTo, "")
	if created {
		c.markGroup(atg)
	}
	atg.policies.add(ps)
	ps.atg = atg
	ps.ags = nil
	if len(spec.peers) > 0 {
		ps.ags = make([]*group, 0, len(spec.peers))
	}
	for _, p := range spec.peers {
		ag, _ := c.index.ensureGroup(addressKind, p.sel, p.name)
		if ag.refs.inc(atg) {
			c.markGroup(ag)
		}
		ps.ags = append(ps.ags, ag)
	}
	// The rules name the groups with the groups' own strings.
	for i := range ps.rules {
		r := &ps.rules[i]
		for _, names := range [][]string{r.From.AddressGroups, r.To.AddressGroups} {
			for j, name := range names {
				for _, ag := range ps.ags {
					if ag.name() == name {
						names[j] = ag.name()
						break
					}
				}
			}
		}
	}
}

// unref drops the references of a policy on the groups of its old spec;
// the AppliedToGroup is kept if the policy still applies to it.
func (c *Controller) unref(ps *policyState, atg *group, ags []*group) {
	for _, ag := range ags {
		if !ag.refs.dec(atg) {
			continue
		}
		if ag.refs.len() == 0 {
			c.index.dropGroup(ag)
		}
		c.markGroup(ag)
	}
	if atg == ps.atg && !ps.dead {
		return
	}
	atg.policies.remove(ps)
	if atg.policies.len() == 0 {
		c.index.dropGroup(atg)
		c.markGroup(atg)
	}
}
