// Package networkpolicy computes, from Kubernetes Pods, Namespaces and
// NetworkPolicies, the objects agents enforce: AppliedToGroups (the pods a
// policy applies to), AddressGroups (the peer pods of rules, shared between
// policies that select the same peers) and internal NetworkPolicies (rules
// that refer to those groups), each with the span of nodes that need it.
//
// The computation is incremental. Informer handlers only update indexes
// (pods and namespaces by label, group selectors by the labels they
// require) and mark the groups and policies that changed; a workqueue per
// kind then rebuilds just those objects, as a pure function of the
// indexed state, into a Store that the API server serves per node.
package networkpolicy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// Controller computes AppliedToGroups, AddressGroups and internal
// NetworkPolicies.
type Controller struct {
	// mu guards index and policies, for handlers and workers.
	mu       sync.Mutex
	index    *index
	policies map[string]*policyState

	synced []cache.InformerSynced

	appliedToQueue workqueue.TypedInterface[string]
	addressQueue   workqueue.TypedInterface[string]
	policyQueue    workqueue.TypedInterface[string]

	appliedToGroups *MemoryStore[controlplane.AppliedToGroup]
	addressGroups   *MemoryStore[controlplane.AddressGroup]
	networkPolicies *MemoryStore[controlplane.NetworkPolicy]

	// busy and processed let tests tell when the controller is idle.
	busy      atomic.Int64
	processed atomic.Uint64
}

// policyState is a NetworkPolicy being maintained.
type policyState struct {
	uid             types.UID
	namespace, name string
	spec            policySpec
	// appliedTo is its AppliedToGroup, addressGroups its AddressGroups.
	appliedTo     []string
	addressGroups []string
	// publishedSpan is the span version of the AppliedToGroup when the
	// policy was last stored; zero when its spec changed since.
	publishedSpan uint64
}

// New returns a controller watching Pods, Namespaces and NetworkPolicies
// through the factory's informers. Start the factory and call Run.
func New(factory informers.SharedInformerFactory) (*Controller, error) {
	c := &Controller{
		index:           newIndex(),
		policies:        map[string]*policyState{},
		appliedToQueue:  workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "appliedToGroup"}),
		addressQueue:    workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "addressGroup"}),
		policyQueue:     workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "networkPolicy"}),
		appliedToGroups: newAppliedToGroupStore(),
		addressGroups:   newAddressGroupStore(),
		networkPolicies: newNetworkPolicyStore(),
	}
	handlers := []struct {
		kind     string
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{"pods", factory.Core().V1().Pods().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPod(obj) },
			UpdateFunc: func(_, obj any) { c.onPod(obj) },
			DeleteFunc: c.onPodDelete,
		}},
		{"namespaces", factory.Core().V1().Namespaces().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onNamespace(obj) },
			UpdateFunc: func(_, obj any) { c.onNamespace(obj) },
			DeleteFunc: c.onNamespaceDelete,
		}},
		{"networkpolicies", factory.Networking().V1().NetworkPolicies().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPolicy(obj) },
			UpdateFunc: c.onPolicyUpdate,
			DeleteFunc: c.onPolicyDelete,
		}},
	}
	for _, h := range handlers {
		reg, err := h.informer.AddEventHandler(h.handler)
		if err != nil {
			return nil, fmt.Errorf("adding %s event handler: %w", h.kind, err)
		}
		c.synced = append(c.synced, reg.HasSynced)
	}
	return c, nil
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
	queues := []workqueue.TypedInterface[string]{c.appliedToQueue, c.addressQueue, c.policyQueue}
	defer func() {
		for _, q := range queues {
			q.ShutDown()
		}
	}()
	klog.InfoS("Starting NetworkPolicy controller")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("waiting for pod, namespace and networkpolicy caches: %w", context.Cause(ctx))
	}
	syncs := []func(string){c.syncAppliedToGroup, c.syncAddressGroup, c.syncPolicy}
	var wg sync.WaitGroup
	for i, q := range queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work(q, syncs[i])
		}()
	}
	<-ctx.Done()
	for _, q := range queues {
		q.ShutDown()
	}
	wg.Wait()
	klog.InfoS("Stopped NetworkPolicy controller")
	return nil
}

// work syncs the keys of a queue until it shuts down.
func (c *Controller) work(q workqueue.TypedInterface[string], sync func(string)) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		c.busy.Add(1)
		sync(key)
		q.Done(key)
		c.busy.Add(-1)
		c.processed.Add(1)
	}
}

// idle reports whether the handlers have seen the initial lists and no key
// is queued or being synced; processed lets a caller check that nothing
// ran between two calls.
func (c *Controller) idle() (idle bool, processed uint64) {
	processed = c.processed.Load()
	for _, s := range c.synced {
		if !s() {
			return false, processed
		}
	}
	idle = c.busy.Load() == 0 && c.appliedToQueue.Len() == 0 &&
		c.addressQueue.Len() == 0 && c.policyQueue.Len() == 0
	return idle, processed
}

func (c *Controller) enqueueGroup(g *group) {
	if g.kind == appliedToKind {
		c.appliedToQueue.Add(g.name)
	} else {
		c.addressQueue.Add(g.name)
	}
}

// deleted unwraps the object of a delete event.
func deleted(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

func (c *Controller) onPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	state := pod
	if !podEligible(pod) {
		state = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setPod(pod.Namespace, pod.Name, state, c.enqueueGroup)
}

func (c *Controller) onPodDelete(obj any) {
	pod, ok := deleted(obj).(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setPod(pod.Namespace, pod.Name, nil, c.enqueueGroup)
}

func (c *Controller) onNamespace(obj any) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setNamespace(ns.Name, ns, c.enqueueGroup)
}

func (c *Controller) onNamespaceDelete(obj any) {
	ns, ok := deleted(obj).(*corev1.Namespace)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.setNamespace(ns.Name, nil, c.enqueueGroup)
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
// old one, so shared groups are kept, and deletes groups left unused.
func (c *Controller) setPolicy(key string, np *networkingv1.NetworkPolicy) {
	var cur *policyState
	if np != nil {
		cur = &policyState{uid: np.UID, namespace: np.Namespace, name: np.Name, spec: translatePolicy(np)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.policies[key]
	if cur != nil {
		c.ref(key, cur)
		c.policies[key] = cur
	} else {
		delete(c.policies, key)
	}
	if old != nil {
		c.unref(key, old, cur)
	}
	c.policyQueue.Add(key)
	klog.V(4).InfoS("NetworkPolicy changed", "policy", key, "deleted", cur == nil)
}

// ref takes the references of a policy on its groups.
func (c *Controller) ref(key string, ps *policyState) {
	atg, created := c.index.ensureGroup(appliedToKind, ps.spec.appliedTo)
	if created {
		c.enqueueGroup(atg)
	}
	atg.policies[key] = struct{}{}
	ps.appliedTo = []string{atg.name}
	for name, sel := range ps.spec.peers {
		ag, _ := c.index.ensureGroup(addressKind, sel)
		ag.atgRefs[atg.name]++
		ps.addressGroups = append(ps.addressGroups, name)
		c.enqueueGroup(ag)
	}
	slices.Sort(ps.addressGroups)
}

// unref drops the references of a policy's old state on its groups; cur is
// its new state, whose references are already taken, or nil.
func (c *Controller) unref(key string, old, cur *policyState) {
	atgName := old.appliedTo[0]
	for _, name := range old.addressGroups {
		ag := c.index.address[name]
		if ag == nil {
			continue
		}
		if ag.atgRefs[atgName]--; ag.atgRefs[atgName] <= 0 {
			delete(ag.atgRefs, atgName)
		}
		if len(ag.atgRefs) == 0 {
			c.index.deleteGroup(ag)
		}
		c.enqueueGroup(ag)
	}
	atg := c.index.appliedTo[atgName]
	if atg == nil || (cur != nil && cur.appliedTo[0] == atgName) {
		return
	}
	delete(atg.policies, key)
	if len(atg.policies) == 0 {
		c.index.deleteGroup(atg)
		c.enqueueGroup(atg)
	}
}
