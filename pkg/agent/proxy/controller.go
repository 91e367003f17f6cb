package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/route"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Flows installs flows by owner (openflow.FlowSyncer).
type Flows interface {
	SyncAll(ctx context.Context, category int, desired map[string][]of.Flow) error
	Owners() []string
}

// Groups applies group changes (openflow.Conn).
type Groups interface {
	Apply(ctx context.Context, ch of.Change) error
}

// NodePortHost hands node ports from the node's network stack to the
// bridge (route.Netlink).
type NodePortHost interface {
	SyncNodePorts(ctx context.Context, vip netip.Addr, ports []route.NodePort) error
}

// Controller realizes Services and EndpointSlices: every sync recomputes
// all service ports from the informer caches, compiles them, and applies
// the difference: new and changed groups first, then flows, then the
// groups no port uses any more.
type Controller struct {
	node     string
	flows    Flows
	groups   Groups
	compiler *Compiler
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]

	host NodePortHost
	// nodePorts are the node ports last handed to host, nil before the
	// first sync.
	nodePorts []route.NodePort

	mu        sync.Mutex
	installed map[uint32]of.GroupEntry // as installed in the switch

	// firstSync is closed after the first successful sync.
	firstSync     chan struct{}
	firstSyncOnce sync.Once
}

const syncKey = "services"

// NewController watches Services and EndpointSlices of factory.
// host, when not nil, gets the node ports.
func NewController(node string, factory informers.SharedInformerFactory, flows Flows, groups Groups, host NodePortHost) *Controller {
	svc := factory.Core().V1().Services()
	eps := factory.Discovery().V1().EndpointSlices()
	c := &Controller{
		node: node, flows: flows, groups: groups, compiler: NewCompiler(), host: host,
		services: svc.Lister(), slices: eps.Lister(),
		synced:    []cache.InformerSynced{svc.Informer().HasSynced, eps.Informer().HasSynced},
		installed: map[uint32]of.GroupEntry{}, firstSync: make(chan struct{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy"}),
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.queue.Add(syncKey) },
		UpdateFunc: func(_, _ any) { c.queue.Add(syncKey) },
		DeleteFunc: func(any) { c.queue.Add(syncKey) },
	}
	_, _ = svc.Informer().AddEventHandler(handler)
	_, _ = eps.Informer().AddEventHandler(handler)
	return c
}

// Synced is closed once every Service of the informer caches has been
// realized for the first time (flows of an earlier agent run may go then).
func (c *Controller) Synced() <-chan struct{} { return c.firstSync }

// Enqueue asks for a sync.
func (c *Controller) Enqueue() { c.queue.Add(syncKey) }

// ReplayGroups installs every group again, e.g. into a restarted switch.
// It must run before the flows are replayed: a flow that points to a
// missing group is refused, and with it the whole bundle.
func (c *Controller) ReplayGroups(ctx context.Context) error {
	c.mu.Lock()
	groups := make([]of.GroupEntry, 0, len(c.installed))
	for _, g := range c.installed {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	if len(groups) == 0 {
		return nil
	}
	if err := c.groups.Apply(ctx, of.Change{AddGroups: groups}); err != nil {
		return fmt.Errorf("replay %d service groups: %w", len(groups), err)
	}
	return nil
}

// Run syncs until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	c.queue.Add(syncKey)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for {
			key, quit := c.queue.Get()
			if quit {
				return
			}
			if err := c.Sync(ctx); err != nil {
				klog.ErrorS(err, "Service proxy sync failed; retrying")
				c.queue.AddRateLimited(key)
			} else {
				c.queue.Forget(key)
				c.firstSyncOnce.Do(func() { close(c.firstSync) })
			}
			c.queue.Done(key)
		}
	}, time.Second)
	<-ctx.Done()
}

// Sync realizes every service port of the caches.
func (c *Controller) Sync(ctx context.Context) error {
	ports, err := c.servicePorts()
	if err != nil {
		return err
	}
	res := c.compiler.Compile(ports)
	for _, why := range res.Invalid {
		klog.V(2).InfoS("Skipping a service port", "reason", why)
	}
	c.mu.Lock()
	var add []of.GroupEntry
	for _, g := range res.Groups {
		if old, ok := c.installed[g.ID]; !ok || old.String() != g.String() {
			add = append(add, g)
		}
	}
	c.mu.Unlock()
	if len(add) > 0 {
		if err := c.groups.Apply(ctx, of.Change{AddGroups: add}); err != nil {
			return fmt.Errorf("install %d service groups: %w", len(add), err)
		}
		c.mu.Lock()
		for _, g := range add {
			c.installed[g.ID] = g
		}
		c.mu.Unlock()
	}
	// Every service port's flows in one bundle: one change for the switch
	// (and one datapath purge on netdev), not one per service.
	desired := make(map[string][]of.Flow, len(res.Flows))
	for owner, flows := range res.Flows {
		desired[owner] = flows
	}
	for _, owner := range c.flows.Owners() {
		if _, ok := res.Flows[owner]; !ok && strings.HasPrefix(owner, OwnerPrefix) {
			desired[owner] = nil
		}
	}
	if err := c.flows.SyncAll(ctx, CategoryService, desired); err != nil {
		return err
	}
	if err := c.syncNodePorts(ctx, ports, res); err != nil {
		return err
	}
	// Groups no flow points to any more: those of gone ports, and those of
	// ports left without endpoints.
	inUse := map[uint32]bool{}
	for _, g := range res.Groups {
		inUse[g.ID] = true
	}
	var del []uint32
	c.mu.Lock()
	for id := range c.installed {
		if !inUse[id] {
			del = append(del, id)
		}
	}
	c.mu.Unlock()
	c.compiler.ReleaseUnused()
	if len(del) > 0 {
		if err := c.groups.Apply(ctx, of.Change{DelGroups: del}); err != nil {
			return fmt.Errorf("delete %d service groups: %w", len(del), err)
		}
		c.mu.Lock()
		for _, id := range del {
			delete(c.installed, id)
		}
		c.mu.Unlock()
	}
	return nil
}

// syncNodePorts hands the node ports of the valid service ports to the
// node's stack when they changed.
func (c *Controller) syncNodePorts(ctx context.Context, ports []ServicePort, res Result) error {
	if c.host == nil {
		return nil
	}
	want := []route.NodePort{}
	seen := map[string]bool{}
	for i := range ports {
		sp := &ports[i]
		if _, valid := res.GroupIDs[sp.Key()]; !valid || sp.NodePort == 0 {
			continue
		}
		np := route.NodePort{Protocol: strings.ToLower(string(sp.Protocol)), Port: sp.NodePort, Local: sp.ExternalTrafficPolicyLocal}
		if k := fmt.Sprintf("%s/%d", np.Protocol, np.Port); !seen[k] {
			seen[k] = true
			want = append(want, np)
		}
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].Port != want[j].Port {
			return want[i].Port < want[j].Port
		}
		return want[i].Protocol < want[j].Protocol
	})
	if c.nodePorts != nil && slices.Equal(want, c.nodePorts) {
		return nil
	}
	if err := c.host.SyncNodePorts(ctx, agentof.NodePortVirtualIP, want); err != nil {
		return err
	}
	c.nodePorts = want
	return nil
}

// servicePorts joins Services with their EndpointSlices.
func (c *Controller) servicePorts() ([]ServicePort, error) {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var ports []ServicePort
	for _, svc := range svcs {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !ip.Is4() {
			continue // headless, ExternalName, or not IPv4
		}
		sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
		slices, err := c.slices.EndpointSlices(svc.Namespace).List(sel)
		if err != nil {
			return nil, fmt.Errorf("list endpoint slices of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		local := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
		hasNodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
		var affinity uint32
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			affinity = uint32(corev1.DefaultClientIPServiceAffinitySeconds)
			if cfg := svc.Spec.SessionAffinityConfig; cfg != nil && cfg.ClientIP != nil && cfg.ClientIP.TimeoutSeconds != nil && *cfg.ClientIP.TimeoutSeconds > 0 {
				affinity = uint32(*cfg.ClientIP.TimeoutSeconds)
			}
		}
		for _, p := range svc.Spec.Ports {
			sp := ServicePort{
				Name:      fmt.Sprintf("%s/%s:%s", svc.Namespace, svc.Name, p.Name),
				ClusterIP: ip, Port: uint16(p.Port), Protocol: Protocol(p.Protocol),
				InternalTrafficPolicyLocal: local,
				AffinityTimeout:            affinity,
			}
			if hasNodePorts && p.NodePort > 0 && p.NodePort <= 65535 {
				sp.NodePort = uint16(p.NodePort)
				sp.ExternalTrafficPolicyLocal = svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
			}
			for _, s := range slices {
				if s.AddressType != discoveryv1.AddressTypeIPv4 {
					continue
				}
				for _, sport := range s.Ports {
					if sport.Port == nil || (sport.Name != nil && *sport.Name != p.Name) || (sport.Protocol != nil && *sport.Protocol != p.Protocol) {
						continue
					}
					for _, ep := range s.Endpoints {
						e := Endpoint{Port: uint16(*sport.Port), Ready: isTrue(ep.Conditions.Ready, true),
							Serving: isTrue(ep.Conditions.Serving, isTrue(ep.Conditions.Ready, true)), Terminating: isTrue(ep.Conditions.Terminating, false),
							NodeLocal: ep.NodeName != nil && *ep.NodeName == c.node}
						for _, a := range ep.Addresses {
							if addr, err := netip.ParseAddr(a); err == nil {
								e.IP = addr
								sp.Endpoints = append(sp.Endpoints, e)
							}
						}
					}
				}
			}
			ports = append(ports, sp)
		}
	}
	return ports, nil
}

// isTrue reads an optional condition; nil means def, as the API says
// (a nil ready condition is to be read as ready).
func isTrue(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
