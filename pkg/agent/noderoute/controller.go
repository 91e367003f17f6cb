// Package noderoute connects this node to every other node: for each Node
// with a podCIDR and an InternalIP it installs the tunnel flows and the
// host route to that podCIDR, and removes them when the node goes or
// changes. Every sync recomputes the whole desired state from the informer
// cache and applies the difference.
package noderoute

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

const ownerPrefix = "node/"

// FlowSyncer installs flows by owner (openflow.FlowSyncer).
type FlowSyncer interface {
	SyncAll(ctx context.Context, category int, desired map[string][]of.Flow) error
	Owners() []string
}

// Routes sets the host routes through the gateway (route.Client).
type Routes interface {
	EnsureRoutes(routes map[netip.Prefix]netip.Addr) error
}

// Controller watches Nodes.
type Controller struct {
	self   string
	node   openflow.NodeConfig
	flows  FlowSyncer
	routes Routes
	lister corelisters.NodeLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	// onPeers, when set, is told the tunnel peers' IPs after each sync
	// that installed their flows.
	onPeers func([]netip.Addr)
}

// SetOnPeers sets a function told the tunnel peers' IPs after each sync
// that installed their flows (call before Run).
func (c *Controller) SetOnPeers(f func([]netip.Addr)) { c.onPeers = f }

const syncKey = "nodes"

// New returns a controller for node self.
func New(self string, node openflow.NodeConfig, informer coreinformers.NodeInformer, flows FlowSyncer, routes Routes) *Controller {
	c := &Controller{
		self: self, node: node, flows: flows, routes: routes,
		lister: informer.Lister(), synced: informer.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "noderoute"}),
	}
	enqueue := func(any) { c.queue.Add(syncKey) }
	_, _ = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, _ any) { c.queue.Add(syncKey) },
		DeleteFunc: enqueue,
	})
	return c
}

// Enqueue asks for a sync, e.g. after OVS lost its state.
func (c *Controller) Enqueue() { c.queue.Add(syncKey) }

// Run syncs until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return
	}
	c.queue.Add(syncKey)
	go wait.UntilWithContext(ctx, c.worker, time.Second)
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.Sync(ctx); err != nil {
			klog.ErrorS(err, "Node route sync failed; retrying")
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// RemoteNode derives the tunnel peer of a Node object, or false when the
// node cannot be reached yet (no podCIDR or no InternalIP).
func RemoteNode(n *corev1.Node) (openflow.RemoteNode, bool) {
	cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return openflow.RemoteNode{}, false
	}
	var ip netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if p, err := netip.ParseAddr(a.Address); err == nil && p.Is4() {
				ip = p
				break
			}
		}
	}
	if !ip.IsValid() {
		return openflow.RemoteNode{}, false
	}
	cidr = cidr.Masked()
	return openflow.RemoteNode{PodCIDR: cidr, GatewayIP: cidr.Addr().Next(), NodeIP: ip}, true
}

// Sync makes flows and routes match the Nodes in the cache.
func (c *Controller) Sync(ctx context.Context) error {
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	routes := map[netip.Prefix]netip.Addr{}
	var peers []netip.Addr
	// Every node's tunnel flows in one bundle (one change for the switch,
	// one datapath purge on netdev).
	desired := map[string][]of.Flow{}
	for _, n := range nodes {
		if n.Name == c.self {
			continue
		}
		r, ok := RemoteNode(n)
		if !ok {
			continue
		}
		desired[ownerPrefix+n.Name] = openflow.RemoteNodeFlows(c.node, r)
		routes[r.PodCIDR] = r.GatewayIP
		peers = append(peers, r.NodeIP)
	}
	var gone []string
	for _, owner := range c.flows.Owners() {
		if _, ok := desired[owner]; !ok && strings.HasPrefix(owner, ownerPrefix) {
			desired[owner] = nil
			gone = append(gone, strings.TrimPrefix(owner, ownerPrefix))
		}
	}
	var errs []error
	if err := c.flows.SyncAll(ctx, openflow.CategoryNode, desired); err != nil {
		errs = append(errs, err)
	} else {
		if len(gone) > 0 {
			klog.InfoS("Removed tunnel flows of nodes that left", "nodes", gone)
		}
		if c.onPeers != nil {
			c.onPeers(peers)
		}
	}
	if err := c.routes.EnsureRoutes(routes); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
