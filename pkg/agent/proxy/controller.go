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
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/idalloc"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/route"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Flows installs flows by owner (openflow.FlowSyncer).
type Flows interface {
	SyncAll(ctx context.Context, category int, desired map[string][]of.Flow) error
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

// Controller realizes Services and EndpointSlices incrementally. Informer
// events mark Services dirty; a sync computes the dirty Services' ports
// again from the caches into the model (what every Service wants, by
// service port), then brings the switch in line with the model for the
// ports that changed, in one pass: new and changed groups first, then
// the flows of every changed port in one bundle, then the node ports,
// then the groups no port uses any more. A failed pass leaves the ports
// pending and is retried; the model is not computed again.
type Controller struct {
	node     string
	flows    Flows
	groups   Groups
	host     NodePortHost
	metrics  *Metrics
	services corelisters.ServiceLister
	slices   cache.Indexer
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	started  time.Time

	// Changes no sync has taken yet.
	mu       sync.Mutex
	dirty    map[string]bool      // Services (namespace/name) to compute again
	all      bool                 // every Service is to be computed again
	triggers map[string]time.Time // earliest unrealized EndpointSlice change, by Service

	// The model. Only the sync goroutine uses it.
	ids       *idalloc.Allocator
	ports     map[string]*portState      // by port Key
	byService map[string][]string        // the port Keys each Service holds
	claims    map[string]string          // port Key or NodePortClaim -> the Service holding it
	waiting   map[string]map[string]bool // claim -> Services with a duplicate of it
	pending   map[string]bool            // port Keys the switch may not have as the model says
	nodePorts map[string]route.NodePort  // by port Key
	// nodePortsChanged: nodePorts changed since they were last handed
	// to host.
	nodePortsChanged bool
	endpoints        int // buckets of the model's ports

	// What the switch has. ReplayGroups reads it from the OpenFlow
	// connection's goroutine.
	gmu       sync.Mutex
	installed map[uint32]of.GroupEntry
	groupsOf  map[string][]uint32 // port Key -> its installed groups
	idKeysOf  map[string][]string // port Key -> the id keys it holds
	// hostPorts are the node ports last handed to host, nil before the
	// first sync.
	hostPorts []route.NodePort

	// firstSync is closed after the first successful sync.
	firstSync     chan struct{}
	firstSyncOnce sync.Once
}

// portState is a service port of the model, compiled.
type portState struct {
	service   string
	claims    []string
	res       PortResult
	endpoints int
}

const (
	syncKey = "services"
	// serviceIndex indexes EndpointSlices by their Service's key.
	serviceIndex = "service"
)

// NewController watches Services and EndpointSlices of factory (to be
// started after). host, when not nil, gets the node ports; metrics, when
// not nil, are kept up to date.
func NewController(node string, factory informers.SharedInformerFactory, flows Flows, groups Groups, host NodePortHost, metrics *Metrics) (*Controller, error) {
	svc := factory.Core().V1().Services()
	eps := factory.Discovery().V1().EndpointSlices()
	if err := eps.Informer().AddIndexers(cache.Indexers{serviceIndex: sliceServiceIndex}); err != nil {
		return nil, fmt.Errorf("index EndpointSlices by Service: %w", err)
	}
	c := &Controller{
		node: node, flows: flows, groups: groups, host: host, metrics: metrics,
		services: svc.Lister(), slices: eps.Informer().GetIndexer(),
		synced: []cache.InformerSynced{svc.Informer().HasSynced, eps.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy"}),
		dirty: map[string]bool{}, triggers: map[string]time.Time{},
		ids: idalloc.New(FirstGroupID), ports: map[string]*portState{}, byService: map[string][]string{},
		claims: map[string]string{}, waiting: map[string]map[string]bool{}, pending: map[string]bool{},
		nodePorts: map[string]route.NodePort{},
		installed: map[uint32]of.GroupEntry{}, groupsOf: map[string][]uint32{}, idKeysOf: map[string][]string{},
		firstSync: make(chan struct{}), started: time.Now(),
	}
	_, err := svc.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.serviceChanged,
		UpdateFunc: func(_, obj any) { c.serviceChanged(obj) },
		DeleteFunc: c.serviceChanged,
	})
	if err != nil {
		return nil, fmt.Errorf("watch Services: %w", err)
	}
	_, err = eps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.sliceChanged(obj, triggerOf(obj, nil, c.started)) },
		UpdateFunc: func(old, obj any) {
			// A slice moved to another Service changes both.
			c.sliceChanged(old, time.Time{})
			c.sliceChanged(obj, triggerOf(obj, old, c.started))
		},
		DeleteFunc: func(obj any) { c.sliceChanged(obj, time.Time{}) },
	})
	if err != nil {
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	return c, nil
}

// sliceServiceIndex indexes an EndpointSlice by "namespace/service".
func sliceServiceIndex(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		return []string{s.Namespace + "/" + name}, nil
	}
	return nil, nil
}

func (c *Controller) serviceChanged(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.markDirty(key, time.Time{})
}

func (c *Controller) sliceChanged(obj any, trigger time.Time) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		c.markDirty(s.Namespace+"/"+name, trigger)
	}
}

// triggerOf is the change trigger time a slice event carries for the
// network programming latency: the slice's
// endpoints.kubernetes.io/last-change-trigger-time when it is new (it
// differs from old's) and not from before the controller started (a
// change the initial list shows is not one this agent was late for).
func triggerOf(obj, old any, started time.Time) time.Time {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return time.Time{}
	}
	v, ok := s.Annotations[corev1.EndpointsLastChangeTriggerTime]
	if !ok {
		return time.Time{}
	}
	if o, ok := old.(*discoveryv1.EndpointSlice); ok && o.Annotations[corev1.EndpointsLastChangeTriggerTime] == v {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Before(started) {
		return time.Time{}
	}
	return t
}

func (c *Controller) markDirty(service string, trigger time.Time) {
	c.mu.Lock()
	c.dirty[service] = true
	if !trigger.IsZero() {
		if t, ok := c.triggers[service]; !ok || trigger.Before(t) {
			c.triggers[service] = trigger
		}
	}
	c.mu.Unlock()
	c.queue.Add(syncKey)
}

// Synced is closed once every Service of the informer caches has been
// realized for the first time (flows of an earlier agent run may go then).
func (c *Controller) Synced() <-chan struct{} { return c.firstSync }

// Enqueue asks for every Service to be computed again.
func (c *Controller) Enqueue() {
	c.mu.Lock()
	c.all = true
	c.mu.Unlock()
	c.queue.Add(syncKey)
}

// Group returns an installed service group (for troubleshooting traces).
func (c *Controller) Group(id uint32) (of.GroupEntry, bool) {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	g, ok := c.installed[id]
	return g, ok
}

// ReplayGroups installs every group again, e.g. into a restarted switch.
// It must run before the flows are replayed: a flow that points to a
// missing group is refused, and with it the whole bundle.
func (c *Controller) ReplayGroups(ctx context.Context) error {
	c.gmu.Lock()
	groups := make([]of.GroupEntry, 0, len(c.installed))
	for _, g := range c.installed {
		groups = append(groups, g)
	}
	c.gmu.Unlock()
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
			}
			c.queue.Done(key)
		}
	}, time.Second)
	<-ctx.Done()
}

// Sync computes the dirty Services again and brings the switch in line
// with the model.
func (c *Controller) Sync(ctx context.Context) error {
	start := time.Now()
	c.mu.Lock()
	dirty, all, triggers := c.dirty, c.all, c.triggers
	c.dirty, c.all, c.triggers = map[string]bool{}, false, map[string]time.Time{}
	c.mu.Unlock()
	if all {
		if err := c.markAll(dirty); err != nil {
			c.putBack(dirty, true, triggers)
			return err
		}
	}
	c.compute(dirty)
	computed := time.Now()
	if err := c.apply(ctx); err != nil {
		// The model has the changes; the pending ports are retried.
		// Their triggers wait for the pass that realizes them.
		c.putBack(nil, false, triggers)
		if c.metrics != nil {
			c.metrics.SyncErrors.Inc()
		}
		return err
	}
	done := time.Now()
	c.firstSyncOnce.Do(func() {
		klog.InfoS("Service proxy synced for the first time", "servicePorts", len(c.ports), "endpoints", c.endpoints,
			"duration", done.Sub(start), "compute", computed.Sub(start), "apply", done.Sub(computed))
		close(c.firstSync)
	})
	if m := c.metrics; m != nil {
		m.SyncDuration.Observe(done.Sub(start).Seconds())
		m.LastSync.Set(float64(done.UnixNano()) / 1e9)
		m.ServicePorts.Set(float64(len(c.ports)))
		m.Endpoints.Set(float64(c.endpoints))
		for _, t := range triggers {
			m.NetworkProgramming.Observe(done.Sub(t).Seconds())
		}
	}
	klog.V(4).InfoS("Service proxy synced", "services", len(dirty), "duration", done.Sub(start))
	return nil
}

// putBack returns changes a sync took to the next one.
func (c *Controller) putBack(dirty map[string]bool, all bool, triggers map[string]time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range dirty {
		c.dirty[s] = true
	}
	c.all = c.all || all
	for s, t := range triggers {
		if old, ok := c.triggers[s]; !ok || t.Before(old) {
			c.triggers[s] = t
		}
	}
}

// markAll adds every Service of the cache and of the model to dirty.
func (c *Controller) markAll(dirty map[string]bool) error {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	for _, s := range svcs {
		dirty[s.Namespace+"/"+s.Name] = true
	}
	for s := range c.byService {
		dirty[s] = true
	}
	return nil
}

// compute updates the model for the dirty Services. A Service whose port
// duplicates a claim (port Key or node port) another Service holds skips
// that port and waits: when the holder lets the claim go, the waiting
// Services are computed again in the same pass.
func (c *Controller) compute(dirty map[string]bool) {
	queue := make([]string, 0, len(dirty))
	for s := range dirty {
		queue = append(queue, s)
	}
	sort.Strings(queue)
	queued := dirty
	for len(queue) > 0 {
		svc := queue[0]
		queue = queue[1:]
		delete(queued, svc)
		wanted := c.portsOf(svc)
		var keys []string
		for i := range wanted {
			sp := &wanted[i]
			key := sp.Key()
			claims := []string{key}
			if sp.NodePort != 0 {
				claims = append(claims, sp.NodePortClaim())
			}
			if holder := c.heldElsewhere(svc, claims); holder != "" {
				klog.V(2).InfoS("Skipping a service port: another Service has it", "port", key, "service", svc, "holder", holder)
				continue
			}
			if slices.Contains(keys, key) {
				klog.V(2).InfoS("Skipping a service port: the Service has it twice", "port", key, "service", svc)
				continue
			}
			pr, err := CompilePort(sp, c.ids.Get)
			for _, why := range pr.Invalid {
				klog.V(2).InfoS("Skipping a service port or endpoint", "service", svc, "reason", why)
			}
			if err != nil {
				continue
			}
			c.setPort(key, &portState{service: svc, claims: claims, res: pr, endpoints: bucketsOf(pr)}, sp)
			keys = append(keys, key)
		}
		for _, key := range c.byService[svc] {
			if slices.Contains(keys, key) {
				continue
			}
			for _, waiter := range c.setPort(key, nil, nil) {
				if !queued[waiter] && waiter != svc {
					queued[waiter] = true
					queue = append(queue, waiter)
				}
			}
		}
		if len(keys) == 0 {
			delete(c.byService, svc)
		} else {
			c.byService[svc] = keys
		}
	}
}

// heldElsewhere returns the Service, other than svc, that holds one of
// claims, and records svc as waiting for it; "" if none does.
func (c *Controller) heldElsewhere(svc string, claims []string) string {
	for _, cl := range claims {
		if holder, ok := c.claims[cl]; ok && holder != svc {
			if c.waiting[cl] == nil {
				c.waiting[cl] = map[string]bool{}
			}
			c.waiting[cl][svc] = true
			return holder
		}
	}
	return ""
}

// setPort puts a port into the model (st nil: takes it out), marks it
// pending, and returns the Services waiting for claims it let go.
func (c *Controller) setPort(key string, st *portState, sp *ServicePort) []string {
	old := c.ports[key]
	var released []string
	if old != nil {
		c.endpoints -= old.endpoints
		for _, cl := range old.claims {
			if st == nil || !slices.Contains(st.claims, cl) {
				delete(c.claims, cl)
				for w := range c.waiting[cl] {
					released = append(released, w)
				}
				delete(c.waiting, cl)
			}
		}
	}
	c.pending[key] = true
	oldNP, hadNP := c.nodePorts[key]
	if st == nil {
		delete(c.ports, key)
		delete(c.nodePorts, key)
		c.nodePortsChanged = c.nodePortsChanged || hadNP
		return released
	}
	c.ports[key] = st
	c.endpoints += st.endpoints
	for _, cl := range st.claims {
		c.claims[cl] = st.service
		if w := c.waiting[cl]; w != nil {
			delete(w, st.service)
		}
	}
	if sp.NodePort != 0 {
		np := route.NodePort{Protocol: strings.ToLower(string(sp.Protocol)), Port: sp.NodePort, Local: sp.ExternalTrafficPolicyLocal}
		c.nodePorts[key] = np
		c.nodePortsChanged = c.nodePortsChanged || !hadNP || oldNP != np
	} else {
		delete(c.nodePorts, key)
		c.nodePortsChanged = c.nodePortsChanged || hadNP
	}
	return released
}

func bucketsOf(pr PortResult) int {
	if len(pr.Groups) == 0 {
		return 0
	}
	return len(pr.Groups[0].Buckets)
}

// apply brings the switch in line with the model for the pending ports.
func (c *Controller) apply(ctx context.Context) error {
	keys := make([]string, 0, len(c.pending))
	for k := range c.pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var add []of.GroupEntry
	var del []uint32
	desired := make(map[string][]of.Flow, len(keys))
	c.gmu.Lock()
	for _, key := range keys {
		want := map[uint32]bool{}
		if st := c.ports[key]; st != nil {
			desired[st.res.Owner] = st.res.Flows
			for _, g := range st.res.Groups {
				want[g.ID] = true
				if old, ok := c.installed[g.ID]; !ok || !sameGroup(old, g) {
					add = append(add, g)
				}
			}
		} else {
			desired[ownerServicePrefix+key] = nil
		}
		for _, id := range c.groupsOf[key] {
			if !want[id] {
				del = append(del, id)
			}
		}
	}
	c.gmu.Unlock()
	if len(add) > 0 {
		if err := c.groups.Apply(ctx, of.Change{AddGroups: add}); err != nil {
			return fmt.Errorf("install %d service groups: %w", len(add), err)
		}
		c.gmu.Lock()
		for _, g := range add {
			c.installed[g.ID] = g
		}
		c.gmu.Unlock()
	}
	// Every changed port's flows in one bundle: one change for the switch
	// (and one datapath purge on netdev), not one per port.
	if len(desired) > 0 {
		if err := c.flows.SyncAll(ctx, CategoryService, desired); err != nil {
			return err
		}
	}
	if err := c.syncNodePorts(ctx); err != nil {
		return err
	}
	// Groups no flow points to any more: those of gone ports, and those of
	// ports left without endpoints.
	if len(del) > 0 {
		if err := c.groups.Apply(ctx, of.Change{DelGroups: del}); err != nil {
			return fmt.Errorf("delete %d service groups: %w", len(del), err)
		}
	}
	c.gmu.Lock()
	for _, id := range del {
		delete(c.installed, id)
	}
	for _, key := range keys {
		st := c.ports[key]
		var ids []uint32
		var idKeys []string
		if st != nil {
			for _, g := range st.res.Groups {
				ids = append(ids, g.ID)
			}
			for k := range st.res.GroupIDs {
				idKeys = append(idKeys, k)
			}
		}
		// Ids nothing in the switch uses any more can go to new ports.
		for _, k := range c.idKeysOf[key] {
			if !slices.Contains(idKeys, k) {
				c.ids.Release(k)
			}
		}
		setOrDelete(c.groupsOf, key, ids)
		setOrDelete(c.idKeysOf, key, idKeys)
	}
	c.gmu.Unlock()
	c.pending = map[string]bool{}
	return nil
}

func setOrDelete[V any](m map[string][]V, key string, v []V) {
	if len(v) == 0 {
		delete(m, key)
	} else {
		m[key] = v
	}
}

// sameGroup reports whether two group entries are the same.
func sameGroup(a, b of.GroupEntry) bool { return a.String() == b.String() }

// syncNodePorts hands the model's node ports to the node's stack when
// they changed (and on the first sync).
func (c *Controller) syncNodePorts(ctx context.Context) error {
	if c.host == nil || (c.hostPorts != nil && !c.nodePortsChanged) {
		return nil
	}
	want := make([]route.NodePort, 0, len(c.nodePorts))
	seen := map[route.NodePort]bool{}
	for _, np := range c.nodePorts {
		if !seen[np] {
			seen[np] = true
			want = append(want, np)
		}
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].Port != want[j].Port {
			return want[i].Port < want[j].Port
		}
		return want[i].Protocol < want[j].Protocol
	})
	if c.hostPorts == nil || !slices.Equal(want, c.hostPorts) {
		if err := c.host.SyncNodePorts(ctx, agentof.NodePortVirtualIP, want); err != nil {
			return err
		}
	}
	c.hostPorts, c.nodePortsChanged = want, false
	return nil
}

// portsOf joins a Service of the cache with its EndpointSlices; none if
// the Service is gone or has no IPv4 ClusterIP (headless, ExternalName).
func (c *Controller) portsOf(key string) []ServicePort {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		return nil
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return nil
	}
	objs, err := c.slices.ByIndex(serviceIndex, key)
	if err != nil {
		klog.ErrorS(err, "Reading the EndpointSlices of a Service failed", "service", key)
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
	ports := make([]ServicePort, 0, len(svc.Spec.Ports))
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
		for _, obj := range objs {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok || s.AddressType != discoveryv1.AddressTypeIPv4 {
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
	return ports
}

// isTrue reads an optional condition; nil means def, as the API says
// (a nil ready condition is to be read as ready).
func isTrue(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
