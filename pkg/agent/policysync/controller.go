package policysync

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// Realizer installs the flows of a State.
type Realizer interface {
	Realize(ctx context.Context, s *networkpolicy.State) error
}

// LocalPods returns this node's pods that have an OVS port: IP -> ofport.
type LocalPods func() map[netip.Addr]uint32

// Config wires a Controller.
type Config struct {
	NodeName  string
	GatewayIP netip.Addr
	Client    rest.Interface
	Realizer  Realizer
	LocalPods LocalPods
	// Holds, when set, is told about every realized state, to release the
	// pods it holds.
	Holds *Holds
	// Metrics, when set, records realizations.
	Metrics *Metrics
}

// Controller keeps the node's policy flows those of the controller's
// objects and the node's pods.
type Controller struct {
	cfg   Config
	cache *Cache
	// podsChanged is signalled when local pods come or go.
	podsChanged chan struct{}

	realized chan struct{} // closed after the first successful realization
	once     sync.Once
	// last is what the latest successful realization installed.
	last atomic.Pointer[realizedSnapshot]
	// unrealizedSince is when the oldest change not yet realized arrived:
	// local pod changes, and changes a failed realization took from the
	// cache. Used by the realize loop only.
	unrealizedSince time.Time
}

// New returns a controller; call Run.
func New(cfg Config) *Controller {
	return &Controller{cfg: cfg, cache: NewCache(), podsChanged: make(chan struct{}, 1), realized: make(chan struct{})}
}

// LastRealized returns what the latest successful realization installed,
// or nil before the first.
func (c *Controller) LastRealized() *RealizedState {
	r := c.last.Load()
	if r == nil {
		return nil
	}
	return NewRealizedState(r.at, r.policies, r.appliedTo, r.addresses)
}

// LastRealizedObjects returns the policies and AppliedToGroups the latest
// successful realization installed (nil before the first). They are
// shared: do not modify them.
func (c *Controller) LastRealizedObjects() ([]*controlplane.NetworkPolicy, map[string]*controlplane.AppliedToGroup) {
	r := c.last.Load()
	if r == nil {
		return nil, nil
	}
	return r.policies, r.appliedTo
}

// realizedSnapshot is a cache snapshot (immutable) and when it was
// realized; summarized only when asked for.
type realizedSnapshot struct {
	at        time.Time
	policies  []*controlplane.NetworkPolicy
	appliedTo map[string]*controlplane.AppliedToGroup
	addresses map[string]*controlplane.AddressGroup
}

// Cache returns the controller's cache.
func (c *Controller) Cache() *Cache { return c.cache }

// PodsChanged tells the controller that local pods came or went.
func (c *Controller) PodsChanged() {
	select {
	case c.podsChanged <- struct{}{}:
	default:
	}
}

// Realized is closed once the objects of the first complete lists are
// installed.
func (c *Controller) Realized() <-chan struct{} { return c.realized }

// Run syncs the three resources and realizes them until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	resources := []struct {
		name    string
		newList func() runtime.Object
	}{
		{ResourceAppliedToGroups, func() runtime.Object { return &v1beta1.AppliedToGroupList{} }},
		{ResourceAddressGroups, func() runtime.Object { return &v1beta1.AddressGroupList{} }},
		{ResourceNetworkPolicies, func() runtime.Object { return &v1beta1.NetworkPolicyList{} }},
	}
	var wg sync.WaitGroup
	for _, r := range resources {
		rs := &resourceSync{client: c.cfg.Client, resource: r.name, node: c.cfg.NodeName, newList: r.newList, cache: c.cache, watchTimeout: 10 * time.Minute}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.run(ctx)
		}()
	}
	c.realizeLoop(ctx)
	wg.Wait()
}

func (c *Controller) realizeLoop(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	// While pods are held, their labels or the Kubernetes policies may
	// change in ways the controller sends nothing about (a label change
	// that deselects the pod): look again now and then.
	recheck := time.NewTicker(time.Second)
	defer recheck.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.cache.Changed():
		case <-c.podsChanged:
			c.unrealizedSince = earliest(c.unrealizedSince, time.Now())
		case <-retry.C:
		case <-recheck.C:
			if c.cfg.Holds == nil || c.cfg.Holds.Pending() == 0 {
				continue
			}
		}
		if !c.cache.Synced() {
			continue
		}
		if err := c.realize(ctx); err != nil {
			failures++
			d := time.Duration(min(failures, 6)) * 500 * time.Millisecond
			klog.ErrorS(err, "Realizing NetworkPolicies failed; retrying", "in", d)
			retry.Reset(d)
			continue
		}
		failures = 0
		c.once.Do(func() {
			klog.InfoS("NetworkPolicies of the controller's first complete lists are realized")
			close(c.realized)
		})
	}
}

// earliest returns the earlier of two times, a zero time counting as
// none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (c *Controller) realize(ctx context.Context) error {
	start := time.Now()
	since := earliest(c.unrealizedSince, c.cache.TakeChangedSince())
	c.unrealizedSince = since // until it succeeds
	policies, appliedTo, addresses := c.cache.Snapshot()
	s := &networkpolicy.State{
		NodeName:        c.cfg.NodeName,
		GatewayIP:       c.cfg.GatewayIP,
		Policies:        policies,
		AppliedToGroups: appliedTo,
		AddressGroups:   addresses,
		LocalPods:       c.cfg.LocalPods(),
	}
	err := c.cfg.Realizer.Realize(ctx, s)
	c.cfg.Metrics.observe(err, since, len(policies))
	if err != nil {
		return err
	}
	c.unrealizedSince = time.Time{}
	c.last.Store(&realizedSnapshot{at: time.Now(), policies: policies, appliedTo: appliedTo, addresses: addresses})
	klog.V(2).InfoS("Realized NetworkPolicies", "policies", len(policies), "appliedToGroups", len(appliedTo), "addressGroups", len(addresses), "duration", time.Since(start))
	if c.cfg.Holds != nil {
		c.cfg.Holds.Release(ctx, s)
	}
	return nil
}
