// Package agent wires the antrea-agent together: the bridge and its
// gateway and tunnel ports, the OpenFlow pipeline, the pods, the routes to
// other nodes, masquerading, and the CNI server. Run is the whole start-up
// sequence, in order, with nothing hidden in package state.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniinstall"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/agent/nodebundle"
	"github.com/ovs-cni/antrea/pkg/agent/noderoute"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/podnet"
	"github.com/ovs-cni/antrea/pkg/agent/policystats"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/agent/proxy"
	"github.com/ovs-cni/antrea/pkg/agent/route"
	"github.com/ovs-cni/antrea/pkg/agent/traceflow"
	"github.com/ovs-cni/antrea/pkg/agent/tunnelneigh"
	"github.com/ovs-cni/antrea/pkg/agent/uninstall"
	crdv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/crdclient"
	"github.com/ovs-cni/antrea/pkg/kubeclient"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
	"github.com/ovs-cni/antrea/pkg/supportbundle"
	"github.com/ovs-cni/antrea/pkg/version"
)

// Fixed port numbers of the tunnel and the gateway on the bridge.
const (
	TunnelOFPort  = 1
	GatewayOFPort = 2
	// TunnelPortName is the tunnel port, as in the seed documents.
	TunnelPortName = "tun0"
	// roundKey keeps the flow round in the bridge's external_ids, and
	// staleRoundsKey the rounds whose flows are not swept yet.
	roundKey       = "antrea-flow-round"
	staleRoundsKey = "antrea-flow-stale-rounds"
)

// Options are how the agent was started, besides its configuration.
type Options struct {
	// ConfigFile is the file cfg was loaded from.
	ConfigFile string
	// LogFile is where the agent logs besides standard error (empty:
	// nowhere else).
	LogFile string
}

// Run starts the agent and blocks until ctx ends.
func Run(ctx context.Context, cfg config.AgentConfig, opts Options) error {
	started := time.Now()
	// The agent's metrics, served at /metrics on its API socket.
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	restCfg, err := kubeclient.Config(cfg.Kubeconfig, cfg.KubeAPIServerOverride)
	if err != nil {
		return err
	}
	// Built-in types in protobuf: lists of thousands of Services and
	// EndpointSlices decode several times faster than in JSON.
	kubeCfg := rest.CopyConfig(restCfg)
	kubeCfg.ContentType = "application/vnd.kubernetes.protobuf"
	kubeCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	policyClient, err := policysync.NewRESTClient(restCfg)
	if err != nil {
		return err
	}
	traceflowClient, err := crdclient.NewTraceflows(restCfg)
	if err != nil {
		return err
	}
	uninstallWatch := watchUninstall(ctx, client)
	node, err := waitForPodCIDR(ctx, client, cfg.NodeName)
	if err != nil {
		return err
	}
	podCIDR, nodeIP, err := nodeAddresses(node)
	if err != nil {
		return err
	}
	gwIP := podCIDR.Addr().Next()
	mtu := cfg.DefaultMTU
	if mtu == 0 {
		uplink, err := uplinkMTU(nodeIP)
		if err != nil {
			return err
		}
		mtu = uplink - cfg.TunnelOverhead()
	}
	klog.InfoS("Node network", "node", cfg.NodeName, "podCIDR", podCIDR, "nodeIP", nodeIP, "gateway", gwIP, "mtu", mtu)

	// The bridge and its two fixed ports.
	br, err := ovsdb.Connect(ctx, filepath.Join(cfg.OVSRunDir, "db.sock"), cfg.OVSBridge)
	if err != nil {
		return err
	}
	defer br.Close()
	if err := br.EnsureBridge(ctx, ovsdb.BridgeConfig{
		DatapathType: ovsdb.DatapathType(cfg.OVSDatapathType),
		ExternalIDs:  map[string]string{"antrea-managed": "true"},
	}); err != nil {
		return err
	}
	round, stale, err := nextRound(ctx, br)
	if err != nil {
		return err
	}
	if _, err := br.EnsurePort(ctx, ovsdb.PortConfig{Name: TunnelPortName, Type: cfg.TunnelType,
		Options: map[string]string{"key": "flow", "remote_ip": "flow"}, OFPortRequest: TunnelOFPort}); err != nil {
		return err
	}
	if _, err := br.EnsurePort(ctx, ovsdb.PortConfig{Name: cfg.HostGateway, Type: ovsdb.PortTypeInternal,
		OFPortRequest: GatewayOFPort, MTURequest: mtu, MAC: GatewayMAC(gwIP).String()}); err != nil {
		return err
	}
	routes, err := route.New(cfg.HostGateway)
	if err != nil {
		return err
	}
	gwAddr := netip.PrefixFrom(gwIP, podCIDR.Bits())
	gwMAC, err := routes.ConfigureGateway(cfg.HostGateway, gwAddr, mtu)
	if err != nil {
		return err
	}
	nodeCfg := agentof.NodeConfig{GatewayOFPort: GatewayOFPort, TunnelOFPort: TunnelOFPort,
		GatewayMAC: gwMAC, GatewayIP: gwIP, PodCIDR: podCIDR,
		// The userspace datapath's conntrack has no counters: the flow
		// exporter counts connections with learned flows.
		ConnectionStats: cfg.FlowExporter.Enable && cfg.OVSDatapathType == config.DatapathNetdev}

	// OpenFlow: every (re)connect replays what the syncer installed, so a
	// restarted ovs-vswitchd gets the whole pipeline back.
	// With the userspace datapath, a restarted ovs-vswitchd also re-creates
	// the gateway's tap device: give it back its address first. The
	// callback runs on the connection's goroutine, hence the atomics.
	var flows *agentof.FlowSyncer
	var nodes atomic.Pointer[noderoute.Controller]
	var services atomic.Pointer[proxy.Controller]
	var connects atomic.Int32
	conn := of.NewConn(filepath.Join(cfg.OVSRunDir, cfg.OVSBridge+".mgmt"), func(ctx context.Context) error {
		if connects.Add(1) == 1 {
			klog.InfoS("OpenFlow connection established")
			return nil
		}
		klog.InfoS("OpenFlow connection re-established; restoring the gateway and replaying flows")
		// Only a failed replay fails the connection; host networking is
		// retried by the node controller, not by reconnecting.
		if _, err := routes.ConfigureGateway(cfg.HostGateway, gwAddr, mtu); err != nil {
			klog.ErrorS(err, "Restoring the gateway failed; the node controller retries")
		}
		if p := services.Load(); p != nil {
			if err := p.ReplayGroups(ctx); err != nil {
				return err
			}
		}
		if err := flows.Replay(ctx); err != nil {
			return err
		}
		if n := nodes.Load(); n != nil {
			n.Enqueue()
		}
		if p := services.Load(); p != nil {
			p.Enqueue()
		}
		return nil
	})
	flows = agentof.NewFlowSyncer(newObservedBundler(conn, registry), round)
	registry.MustRegister(stateCollector{flowsByTable: flows.CountByTable, conntrack: conntrackEntries(cfg)})
	var groups proxy.Groups = conn
	if cfg.OVSDatapathType == config.DatapathNetdev {
		// The userspace datapath can keep a megaflow that a flow change
		// made wrong, revalidation notwithstanding (seen with OVS 3.1: a
		// connection an isolating policy denies keeps being forwarded);
		// after changes to policy, service and node flows, the datapath
		// starts over from the OpenFlow tables.
		purge := datapathPurger(cfg.OVSRunDir)
		flows.SetAfterChange(func(ctx context.Context, category int) {
			if category != agentof.CategoryPod && category != agentof.CategoryBase {
				purge(ctx)
			}
		})
		groups = purgingGroups{Groups: conn, purge: purge}
	}
	// Packet-ins: traced packets (Traceflow, whichever table sent them)
	// first, then connections to a Service without endpoints, which the
	// agent rejects (a few thousand a second at most).
	var traces atomic.Pointer[traceflow.Controller]
	var rejecter *proxy.Rejecter
	if cfg.ProxyEnabled() {
		rejecter = proxy.NewRejecter(conn, 5000, 500)
	}
	conn.SetPacketInHandler(1024, func(p of.PacketIn) {
		if t := traces.Load(); t != nil && t.HandlePacketIn(ctx, p) {
			return
		}
		if rejecter == nil || !rejecter.HandlePacketIn(ctx, p) {
			klog.V(4).InfoS("Ignoring a packet-in", "table", p.TableID, "cookie", fmt.Sprintf("%#x", p.Cookie))
		}
	})
	go func() { _ = conn.Run(ctx) }()
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return conn.Connected(), nil
	}); err != nil {
		return fmt.Errorf("connect to the OpenFlow socket of %s: %w", cfg.OVSBridge, err)
	}
	if err := flows.Sync(ctx, "base", agentof.CategoryBase, agentof.BaseFlows(nodeCfg)); err != nil {
		return err
	}
	if !nodeCfg.ConnectionStats {
		// Counter flows an earlier run learned for its flow exporter
		// have no timeout: nothing reads or deletes them any more.
		if err := conn.DeleteByCookie(ctx, agentof.LearnedCookie(agentof.CategoryFlowExporter), ^uint64(0)); err != nil {
			return fmt.Errorf("delete the flow exporter's counter flows: %w", err)
		}
	}

	// NetworkPolicy: realized from the controller's objects for this node
	// and the node's pods. Conjunction ids of this round live in the half
	// of the id space that the previous round did not use.
	var policies *policysync.Controller
	var pods *podconfig.Configurator
	factory := informers.NewSharedInformerFactory(client, 0)
	nodePods := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + cfg.NodeName
	}))
	podLister := nodePods.Core().V1().Pods().Lister()
	npLister := factory.Networking().V1().NetworkPolicies().Lister()
	holds := policysync.NewHolds(flows,
		func(ctx context.Context, namespace, name string) (map[string]string, error) {
			if p, err := podLister.Pods(namespace).Get(name); err == nil {
				return p.Labels, nil
			}
			p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return p.Labels, nil
		},
		func(namespace string) ([]*networkingv1.NetworkPolicy, error) {
			return npLister.NetworkPolicies(namespace).List(labels.Everything())
		})
	reconciler := networkpolicy.NewReconcilerFrom(flows, uint32((round+1)%2)<<31|1)
	policies = policysync.New(policysync.Config{
		Metrics:   policysync.NewMetrics(registry),
		Holds:     holds,
		NodeName:  cfg.NodeName,
		GatewayIP: gwIP,
		Client:    policyClient,
		Realizer:  reconciler,
		LocalPods: func() map[netip.Addr]uint32 {
			out := map[netip.Addr]uint32{}
			for _, p := range pods.Pods() {
				out[p.IP] = p.OFPort
			}
			return out
		},
	})

	// Pods: rebuild from OVSDB, dropping those that went away meanwhile.
	pods = podconfig.New(podconfig.Config{
		Node: nodeCfg, MTU: mtu, DisableTxChecksum: cfg.OVSDatapathType == config.DatapathNetdev,
		Bridge: br, Flows: flows,
		OnChange:  policies.PodsChanged,
		Admission: holds,
		IPAM:      &podnet.IPAM{BinDir: cfg.CNIBinDir, DataDir: filepath.Join(cfg.StateDir, "ipam"), PodCIDR: podCIDR, Gateway: gwIP},
		Ready: func() error {
			if !conn.Connected() {
				return fmt.Errorf("not connected to OVS")
			}
			return nil
		},
	})
	// Restore may release addresses through host-local, which the
	// install-cni init container put in place.
	if err := cniinstall.CheckInstalled(cfg.CNIBinDir); err != nil {
		return err
	}
	exists, err := podsOnNode(ctx, client, cfg.NodeName)
	if err != nil {
		return err
	}
	if err := pods.Restore(ctx, exists); err != nil {
		return err
	}

	// Other nodes: one synchronous pass before sweeping, so that no tunnel
	// flow is missing in between.
	nc := noderoute.New(cfg.NodeName, nodeCfg, factory.Core().V1().Nodes(), flows, routes)
	if cfg.OVSDatapathType == config.DatapathNetdev {
		// The userspace datapath drops a tunnel packet to a node it has
		// not resolved yet: resolve the peers ahead (tunnelneigh).
		warmer := tunnelneigh.New(tunnelneigh.OVSNudge(func() (string, error) { return unixctl.VswitchdSocket(cfg.OVSRunDir) }))
		nc.SetOnPeers(warmer.SetPeers)
		go warmer.Run(ctx, time.Minute)
	}
	nodes.Store(nc)
	var pc *proxy.Controller
	if cfg.ProxyEnabled() {
		if err := routes.EnsureNodePortRoute(agentof.NodePortVirtualIP, agentof.GlobalVirtualMAC); err != nil {
			return err
		}
		// The node's own connections to Services (host-network pods,
		// the kubelet, this agent) go through the bridge too.
		serviceCIDR, err := netip.ParsePrefix(cfg.ServiceCIDR)
		if err != nil {
			return fmt.Errorf("serviceCIDR %q: %w", cfg.ServiceCIDR, err)
		}
		if err := routes.EnsureServiceRoutes(serviceCIDR, agentof.NodePortVirtualIP, agentof.HairpinVirtualIP, agentof.GlobalVirtualMAC); err != nil {
			return err
		}
		if pc, err = proxy.NewController(cfg.NodeName, factory, flows, groups, routes, proxy.NewMetrics(registry)); err != nil {
			return err
		}
		services.Store(pc)
	}
	// Traceflow: every agent follows the running Traceflows; the one of
	// the source pod's node runs each.
	tfInformer := traceflowClient.NewInformer(0)
	tfc := traceflow.New(traceflow.Config{
		NodeName: cfg.NodeName, Node: nodeCfg, Client: traceflowClient,
		Traceflow: func(name string) (*crdv1alpha1.Traceflow, bool) {
			obj, ok, _ := tfInformer.GetStore().GetByKey(name)
			if !ok {
				return nil, false
			}
			tf, ok := obj.(*crdv1alpha1.Traceflow)
			return tf, ok
		},
		NodePods: podLister, Kube: client, LocalPods: traceflowPods(pods),
		Flows: flows, Out: conn,
		Cluster:  traceflowCluster{nodes: factory.Core().V1().Nodes().Lister(), services: factory.Core().V1().Services().Lister()},
		Policies: traceflowPolicies{rules: reconciler, realized: policies.LastRealizedObjects},
	})
	if _, err := tfInformer.AddEventHandler(traceflowEvents(tfc)); err != nil {
		return fmt.Errorf("watch Traceflows: %w", err)
	}
	traces.Store(tfc)
	var exporter *flowexporter.Exporter
	if cfg.FlowExporter.Enable {
		if exporter, err = newFlowExporter(cfg, flowExporterDeps{conn: conn, factory: factory, pods: pods, policies: policies, rules: reconciler, registry: registry}); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	nodePods.Start(ctx.Done())
	go tfInformer.Run(ctx.Done())
	go tfc.Run(ctx)
	factory.WaitForCacheSync(ctx.Done())
	nodePods.WaitForCacheSync(ctx.Done())
	// Every flow we want must carry the new round before the others are
	// swept: retry the first node sync for a while, and if it still fails,
	// keep the stale rounds for the next start rather than delete flows
	// that may still carry traffic.
	syncErr := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := nc.Sync(ctx); err != nil {
			klog.ErrorS(err, "Node route sync failed; retrying before sweeping old flows")
			return false, nil
		}
		return true, nil
	})
	go policies.Run(ctx)
	if syncErr == nil {
		// Policy flows of earlier rounds stay until this round realized
		// the controller's complete state: an isolated pod keeps its
		// isolation, an allowed connection its allow flows, even while the
		// controller is unreachable.
		// Service flows likewise stay until the proxy's first sync.
		ready := []<-chan struct{}{policies.Realized()}
		if pc != nil {
			ready = append(ready, pc.Synced())
		}
		go func() {
			for _, ready := range ready {
				select {
				case <-ctx.Done():
					return
				case <-ready:
				}
			}
			if err := sweepRounds(ctx, conn, br, stale); err != nil {
				klog.ErrorS(err, "Sweeping the flows of earlier rounds failed; the next start retries", "staleRounds", stale)
			}
		}()
	} else {
		klog.ErrorS(syncErr, "Not sweeping the flows of earlier rounds: node routes are not all installed", "staleRounds", stale)
	}
	go nc.Run(ctx)
	if pc != nil {
		go pc.Run(ctx)
	}
	if interval := cfg.StatsInterval(); interval > 0 {
		reporter := &policystats.Reporter{
			Collector: policystats.NewCollector(conn, flows.KeyOwners, policies.LastRealizedObjects),
			Sender:    policystats.RESTSender{Client: policyClient},
			Node:      cfg.NodeName,
			Interval:  interval,
			Metrics:   policystats.NewMetrics(registry),
		}
		go reporter.Run(ctx)
	}
	if exporter != nil {
		go exporter.Run(ctx)
	}

	masqueraded := []netip.Prefix{podCIDR}
	if cfg.ProxyEnabled() {
		// The node's connections to Services whose endpoints are outside
		// the pod network leave the bridge from the hairpin address.
		masqueraded = append(masqueraded, netip.PrefixFrom(agentof.HairpinVirtualIP, 32))
	}
	if err := routes.EnsureMasquerade(ctx, masqueraded); err != nil {
		return err
	}

	var ready atomic.Bool
	readiness := func() error {
		switch {
		case !ready.Load():
			return fmt.Errorf("not serving CNI yet")
		case !conn.Connected():
			return fmt.Errorf("not connected to OVS")
		}
		return nil
	}
	go func() {
		in := &inspector{cfg: cfg, nodeIP: nodeIP, podCIDR: podCIDR, gatewayIP: gwIP, started: started,
			ovsVersion: ovsVersionOf(br.OVSVersion, cfg.OVSRunDir), pods: pods.Pods, flows: flows,
			policies: policies.LastRealized, realized: policies.LastRealizedObjects, ready: readiness, connected: conn.Connected,
			podIP: func(ctx context.Context, ns, name string) (netip.Addr, error) {
				p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return netip.Addr{}, err
				}
				ip, err := netip.ParseAddr(p.Status.PodIP)
				if err != nil {
					return netip.Addr{}, fmt.Errorf("pod %s/%s has no IP yet", ns, name)
				}
				return ip, nil
			},
			group: func(id uint32) (of.GroupEntry, bool) {
				if pc := services.Load(); pc != nil {
					return pc.Group(id)
				}
				return of.GroupEntry{}, false
			},
			serviceIP: func(ctx context.Context, ns, name string) (netip.Addr, error) {
				svc, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return netip.Addr{}, err
				}
				ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
				if err != nil || !ip.Is4() {
					return netip.Addr{}, fmt.Errorf("service %s/%s has no IPv4 ClusterIP (%q)", ns, name, svc.Spec.ClusterIP)
				}
				return ip, nil
			}}
		bundle := nodebundle.Sources{Config: cfg, ConfigFile: opts.ConfigFile, LogFile: opts.LogFile, Version: version.Version,
			Runner: supportbundle.ExecRunner{}, Inspector: in, NetworkPolicies: policies.LastRealized, Metrics: registry}
		api := agentapi.Handler(agentapi.Sources{NetworkPolicies: policies.LastRealized, Metrics: registry, Ready: readiness,
			Inspector: in, SupportBundle: bundle.Write})
		if cfg.APIPort != 0 {
			go serveSecureAPI(ctx, cfg, client, nodeIP, api)
		}
		if err := agentapi.ServeHandler(ctx, cfg.APISocket, api); err != nil {
			klog.ErrorS(err, "The agent API stopped")
		}
	}()

	// Serve CNI, then tell the runtime we are here.
	srv, err := cniserver.New(cniserver.Config{SocketPath: cfg.CNISocket, Configurator: pods,
		Observe: cniserver.NewMetrics(registry).Observe})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	ready.Store(true)
	klog.InfoS("Agent ready", "node", cfg.NodeName, "round", round, "pods", len(pods.Pods()))
	err = srv.Serve(ctx)
	if uninstallWatch != nil {
		// ctx has ended: a short context of its own for the last reads
		// and the cleanup.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if uninstallWatch.Uninstalling(cctx) {
			return errors.Join(err, cleanupNode(cctx, cfg, br, routes))
		}
	}
	return err
}

// serveSecureAPI serves the agent's API over HTTPS on apiPort, for antctl
// from outside the node; without it the agent still runs (its local
// socket serves the same).
func serveSecureAPI(ctx context.Context, cfg config.AgentConfig, client kubernetes.Interface, nodeIP netip.Addr, api http.Handler) {
	err := func() error {
		authn, authz, err := agentapi.Delegated(ctx, client)
		if err != nil {
			return err
		}
		cert, err := agentapi.SelfSignedCertificate(cfg.NodeName, []net.IP{net.IP(nodeIP.AsSlice())})
		if err != nil {
			return err
		}
		return agentapi.SecureServer{Port: cfg.APIPort, Certificate: cert, Authenticator: authn, Authorizer: authz}.Serve(ctx, api)
	}()
	if err != nil {
		klog.ErrorS(err, "The agent's HTTPS API is not served; antctl reaches this agent only on the node", "apiPort", cfg.APIPort)
	}
}

// watchUninstall starts following the agent's DaemonSet when the agent
// runs in a pod (POD_NAMESPACE and POD_NAME set); nil otherwise.
func watchUninstall(ctx context.Context, client kubernetes.Interface) *uninstall.Watcher {
	ns, name := os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME")
	if ns == "" || name == "" {
		klog.InfoS("Not running in a pod (POD_NAMESPACE/POD_NAME unset): the node is never cleaned up on exit")
		return nil
	}
	return uninstall.Watch(ctx, client, ns, name)
}

// cleanupNode takes away what the agent put on the node, once Antrea is
// uninstalled: the bridge with its flows and ports (and the host ends of
// the pods' veths), routes, nftables, the CNI config and plugin, the IPAM
// store.
func cleanupNode(ctx context.Context, cfg config.AgentConfig, br *ovsdb.Client, routes *route.Netlink) error {
	klog.InfoS("Antrea is uninstalled: removing the agent's CNI config, routes, nftables and bridge from the node", "node", cfg.NodeName)
	var errs []error
	// What needs no OVS first: with ovsManagedBy container, antrea-ovs
	// stops the daemons once this agent is gone, but not a moment later.
	if err := cniinstall.Uninstall(cfg.CNIBinDir, cfg.CNIConfDir); err != nil {
		errs = append(errs, err)
	}
	if err := routes.Cleanup(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(cfg.StateDir, "ipam")); err != nil {
		errs = append(errs, fmt.Errorf("remove IPAM store: %w", err))
	}
	ports, err := br.ListPorts(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := br.DeleteBridge(bctx); err != nil {
		errs = append(errs, err)
	}
	for _, p := range ports {
		if p.ExternalIDs[podconfig.KeyContainerID] == "" {
			continue
		}
		if l, err := netlink.LinkByName(p.Name); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete pod interface %s: %w", p.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up node %s: %w", cfg.NodeName, err)
	}
	klog.InfoS("Node cleaned up", "node", cfg.NodeName, "ports", len(ports))
	return nil
}

// GatewayMAC is the fixed MAC of the gateway port: locally administered,
// unicast, and derived from the gateway IP so that it is stable across
// restarts of the agent and of ovs-vswitchd.
func GatewayMAC(gwIP netip.Addr) net.HardwareAddr {
	ip := gwIP.As4()
	return net.HardwareAddr{0x0e, 0x00, ip[0], ip[1], ip[2], ip[3]}
}

// sweepRounds deletes the flows of the earlier rounds and forgets them.
func sweepRounds(ctx context.Context, conn *of.Conn, br *ovsdb.Client, stale []uint16) error {
	for _, r := range stale {
		if err := conn.DeleteByCookie(ctx, uint64(r)<<agentof.RoundShift, agentof.RoundMask); err != nil {
			return fmt.Errorf("sweep flows of round %d: %w", r, err)
		}
	}
	if len(stale) > 0 {
		klog.InfoS("Swept the flows of earlier rounds", "rounds", stale)
	}
	return br.SetBridgeExternalIDs(ctx, map[string]string{staleRoundsKey: ""})
}

func waitForPodCIDR(ctx context.Context, client kubernetes.Interface, name string) (*corev1.Node, error) {
	var node *corev1.Node
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				klog.ErrorS(err, "Get own Node", "node", name)
			}
			return false, nil
		}
		node = n
		return n.Spec.PodCIDR != "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %s has no podCIDR: %w", name, err)
	}
	return node, nil
}

func nodeAddresses(n *corev1.Node) (netip.Prefix, netip.Addr, error) {
	cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("node %s: podCIDR %q is not an IPv4 prefix", n.Name, n.Spec.PodCIDR)
	}
	r, ok := noderoute.RemoteNode(n)
	if !ok {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("node %s has no IPv4 InternalIP", n.Name)
	}
	return cidr.Masked(), r.NodeIP, nil
}

// uplinkMTU is the MTU of the interface that holds the node's IP.
func uplinkMTU(nodeIP netip.Addr) (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(net.IP(nodeIP.AsSlice())) {
				return l.Attrs().MTU, nil
			}
		}
	}
	return 0, fmt.Errorf("no interface holds the node IP %s: set defaultMTU", nodeIP)
}

// nextRound picks this agent's flow round (the previous one plus one,
// wrapping within 16 bits, never 0) and records it on the bridge at once,
// together with every round whose flows are still to be swept: the
// previous round, and those of earlier agents that died before sweeping.
func nextRound(ctx context.Context, br *ovsdb.Client) (uint16, []uint16, error) {
	ids, err := br.BridgeExternalIDs(ctx)
	if err != nil {
		return 0, nil, err
	}
	prev, _ := strconv.Atoi(ids[roundKey])
	next := uint16(prev + 1)
	if next == 0 {
		next = 1
	}
	var stale []uint16
	seen := map[uint16]bool{next: true}
	for _, f := range append(strings.Split(ids[staleRoundsKey], ","), strconv.Itoa(prev)) {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 || seen[uint16(r)] {
			continue
		}
		seen[uint16(r)] = true
		stale = append(stale, uint16(r))
	}
	list := make([]string, len(stale))
	for i, r := range stale {
		list[i] = strconv.Itoa(int(r))
	}
	if err := br.SetBridgeExternalIDs(ctx, map[string]string{roundKey: strconv.Itoa(int(next)), staleRoundsKey: strings.Join(list, ",")}); err != nil {
		return 0, nil, err
	}
	return next, stale, nil
}

// podsOnNode returns a lookup of the pods the API server has on this node.
func podsOnNode(ctx context.Context, client kubernetes.Interface, node string) (podconfig.PodExists, error) {
	list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of node %s: %w", node, err)
	}
	have := map[string]bool{}
	for _, p := range list.Items {
		have[p.Namespace+"/"+p.Name] = true
	}
	return func(ns, name string) bool { return have[ns+"/"+name] }, nil
}

// datapathPurger returns a function that removes every datapath flow of
// the ovs-vswitchd of runDir (ovs-appctl revalidator/purge); packets then
// take the OpenFlow tables again.
func datapathPurger(runDir string) func(ctx context.Context) {
	return func(ctx context.Context) {
		sock, err := unixctl.VswitchdSocket(runDir)
		if err == nil {
			_, err = unixctl.Call(ctx, sock, "revalidator/purge")
		}
		if err != nil {
			klog.ErrorS(err, "Purging the datapath flows after a flow change failed; a stale datapath flow may live until it idles out")
		}
	}
}

// purgingGroups purges the datapath flows after groups are added or
// changed. A deletion needs none: the proxy deletes only groups no flow
// points to, after the flow change that purged.
type purgingGroups struct {
	proxy.Groups
	purge func(ctx context.Context)
}

func (g purgingGroups) Apply(ctx context.Context, ch of.Change) error {
	if err := g.Groups.Apply(ctx, ch); err != nil {
		return err
	}
	if len(ch.AddGroups) > 0 {
		g.purge(ctx)
	}
	return nil
}

// traceflowEvents queues every Traceflow that is added, changed or
// deleted.
func traceflowEvents(c *traceflow.Controller) cache.ResourceEventHandlerFuncs {
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.Enqueue(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}
