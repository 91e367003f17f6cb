package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/hostpaths"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/ovsnode"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
	"github.com/ovs-cni/antrea/pkg/lab/underlay"
)

// Options configure `up`.
type Options struct {
	Nodes      int
	CNI        string
	BinDir     string // our binaries: antrea-lab-kubelet, lab-agnhost, cni/...
	KubeBinDir string // kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
	EtcdBin    string
	Timeout    time.Duration
	// TunnelType of the antrea agents: vxlan or geneve.
	TunnelType string
	// Manifest is the antrea.yml to deploy with --cni antrea.
	Manifest string
}

// Validate checks the options and that every program they name exists.
func (o Options) Validate() error {
	if o.Nodes < 1 || o.Nodes > layout.MaxNodes {
		return fmt.Errorf("--nodes %d: must be between 1 and %d", o.Nodes, layout.MaxNodes)
	}
	switch o.CNI {
	case CNIBridge, CNIAntrea:
	default:
		return fmt.Errorf("--cni %q: must be %q or %q", o.CNI, CNIBridge, CNIAntrea)
	}
	if o.TunnelType != "vxlan" && o.TunnelType != "geneve" {
		return fmt.Errorf("--tunnel-type %q: must be vxlan or geneve", o.TunnelType)
	}
	need := []string{
		filepath.Join(o.BinDir, "antrea-lab-kubelet"),
		filepath.Join(o.BinDir, "lab-agnhost"),
		filepath.Join(o.KubeBinDir, "kube-apiserver"),
		filepath.Join(o.KubeBinDir, "kube-controller-manager"),
		filepath.Join(o.KubeBinDir, "kube-scheduler"),
		o.EtcdBin,
	}
	if o.CNI == CNIBridge {
		for _, p := range bridgePlugins {
			need = append(need, filepath.Join(o.BinDir, "cni", p))
		}
	} else {
		for _, p := range antreaBinaries {
			need = append(need, filepath.Join(o.BinDir, p))
		}
		need = append(need, filepath.Join(o.KubeBinDir, "kubectl"))
	}
	var missing []string
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing programs (run 'make build'): %s", strings.Join(missing, ", "))
	}
	if o.CNI == CNIAntrea {
		if _, err := os.Stat(o.Manifest); err != nil {
			return fmt.Errorf("--manifest: %w", err)
		}
	}
	for _, tool := range []string{"ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"} {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("%s not found in PATH (install openvswitch-switch and iproute2; 'make lab' does)", tool)
		}
	}
	return nil
}

// Up brings a lab up. On failure it leaves what it made for `down` (which
// also works after a crash) and says so in the error.
func Up(ctx context.Context, lab layout.Lab, o Options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("antrea-lab up needs root (network namespaces, OVS)")
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := checkNotUp(lab); err != nil {
		return err
	}
	if err := up(ctx, lab, o); err != nil {
		return fmt.Errorf("%w\n(the partial lab is still there for inspection: logs in %s; 'antrea-lab down' removes it)", err, lab.LogDir())
	}
	return nil
}

func checkNotUp(lab layout.Lab) error {
	if _, err := os.Stat(lab.StateFile()); err == nil {
		return fmt.Errorf("lab %q is already up (state in %s); run 'antrea-lab down' first", lab.Name, lab.StateDir)
	}
	left, err := netnsutil.List(lab.NetnsPrefix())
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("lab %q has leftover network namespaces (%s); run 'antrea-lab down' first", lab.Name, strings.Join(left, ", "))
	}
	return nil
}

func up(ctx context.Context, lab layout.Lab, o Options) error {
	started := time.Now()
	for _, d := range []string{lab.StateDir, lab.LogDir(), lab.PIDDir(), lab.EtcdDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	st := State{Name: lab.Name, CNI: o.CNI, BinDir: o.BinDir, KubeBinDir: o.KubeBinDir, CreatedAt: started}
	if o.CNI == CNIAntrea {
		st.Manifest, st.TunnelType = o.Manifest, o.TunnelType
	}
	for i := 1; i <= o.Nodes; i++ {
		st.Nodes = append(st.Nodes, layout.NodeName(i))
	}
	// Recorded first, so that `down` knows the lab even if up crashes.
	if err := saveState(lab, st); err != nil {
		return err
	}

	ids := []controlplane.Identity{controlplane.Admin, controlplane.ControllerManager, controlplane.Scheduler}
	for _, n := range st.Nodes {
		ids = append(ids, controlplane.KubeletIdentity(n))
	}
	if err := controlplane.WritePKI(lab, ids); err != nil {
		return err
	}
	if err := buildUnderlay(lab, st.Nodes); err != nil {
		return err
	}
	klog.InfoS("Underlay ready", "elapsed", time.Since(started))

	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	// OVS does not depend on the API server: start it while the control
	// plane comes up.
	ovsErr := make(chan error, 1)
	go func() { ovsErr <- startOVS(lab, st.Nodes) }()
	bins := controlplane.Binaries{
		Etcd:                  o.EtcdBin,
		KubeAPIServer:         filepath.Join(o.KubeBinDir, "kube-apiserver"),
		KubeControllerManager: filepath.Join(o.KubeBinDir, "kube-controller-manager"),
		KubeScheduler:         filepath.Join(o.KubeBinDir, "kube-scheduler"),
	}
	if err := controlplane.Start(ctx, lab, bins, client); err != nil {
		return err
	}
	klog.InfoS("Control plane ready", "elapsed", time.Since(started))
	if err := <-ovsErr; err != nil {
		return err
	}
	for i, n := range st.Nodes {
		if o.CNI == CNIAntrea {
			if err := prepareUplink(lab, n, netip.PrefixFrom(layout.NodeIP(i+1), layout.UnderlayPrefix.Bits())); err != nil {
				return err
			}
		}
		if err := prepareCNI(lab, o, n); err != nil {
			return err
		}
		if err := startKubelet(lab, o, n, layout.NodeIP(i+1)); err != nil {
			return err
		}
	}
	if err := configureNodeNetworks(ctx, lab, o, client, st.Nodes); err != nil {
		return err
	}
	if o.CNI == CNIAntrea {
		// As on a real cluster: the nodes are up (NotReady, no CNI yet)
		// when antrea.yml is applied; its DaemonSet makes them Ready.
		if err := ApplyAntrea(ctx, lab, &st, Settings{}); err != nil {
			return err
		}
	}
	if err := waitNodesReady(ctx, client, st.Nodes, o.Timeout); err != nil {
		return err
	}
	if err := waitDefaultServiceAccount(ctx, client, o.Timeout); err != nil {
		return err
	}
	if o.CNI == CNIAntrea {
		if err := WaitAntreaReady(ctx, client, len(st.Nodes), o.Timeout); err != nil {
			return err
		}
		klog.InfoS("Antrea ready", "elapsed", time.Since(started))
		primeNeighbors(lab, st.Nodes)
	}
	st.Ready = true
	klog.InfoS("Lab is up", "name", lab.Name, "nodes", len(st.Nodes), "cni", o.CNI, "elapsed", time.Since(started))
	return saveState(lab, st)
}

func buildUnderlay(lab layout.Lab, nodes []string) error {
	if err := underlay.CreateSwitch(lab.UnderlayNetns()); err != nil {
		return err
	}
	mask := layout.UnderlayPrefix.Bits()
	hosts := []underlay.Host{
		{Netns: lab.ControlPlaneNetns(), Port: "v-cp", Addr: netip.PrefixFrom(layout.ControlPlaneIP, mask)},
		{Netns: lab.ExternalNetns(), Port: "v-external", Addr: netip.PrefixFrom(layout.ExternalIP, mask)},
	}
	for i, n := range nodes {
		hosts = append(hosts, underlay.Host{Netns: lab.NodeNetns(n), Port: underlayPort(n), Addr: netip.PrefixFrom(layout.NodeIP(i+1), mask)})
	}
	for _, h := range hosts {
		if err := netnsutil.Create(h.Netns); err != nil {
			return err
		}
		if err := underlay.Attach(lab.UnderlayNetns(), h); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if err := underlay.EnableForwarding(lab.NodeNetns(n)); err != nil {
			return err
		}
	}
	return nil
}

// underlayPort is the name of a node's port on the underlay switch.
func underlayPort(node string) string { return "v-" + node }

func startOVS(lab layout.Lab, nodes []string) error {
	for _, n := range nodes {
		inst := ovsnode.Instance{Netns: lab.NodeNetns(n), Dir: lab.OVSDir(n)}
		if err := inst.Start(lab.PIDDir(), n+"-"); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
	}
	return nil
}

// startKubelet runs a node's kubelet in the node's network namespace and
// in a mount namespace of its own where the node's private paths
// (layout.NodePrivatePaths) are the node's folders: its containers and CNI
// plugins, which it starts, see them as on a real node.
func startKubelet(lab layout.Lab, o Options, node string, ip netip.Addr) error {
	for _, d := range []string{lab.KubeletDir(node), lab.CNIConfDir(node), lab.CNIBinDir(node)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	kubelet := filepath.Join(o.BinDir, "antrea-lab-kubelet")
	// Pods' network namespaces, made by the kubelet, must show up on the
	// machine (lab tools) and in running containers (the agent).
	if err := netnsutil.ShareDir(); err != nil {
		return err
	}
	args := []string{kubelet, "run-container", "--keep-shared", netnsutil.Dir}
	var created []string
	for _, p := range layout.NodePrivatePaths {
		if err := os.MkdirAll(lab.NodePath(node, p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", lab.NodePath(node, p), err)
		}
		created = append(created, volumes.MissingPaths(p)...)
		args = append(args, "--mount", lab.NodePath(node, p)+":"+p)
	}
	// The mount points are made on the machine's file system; down removes
	// them once empty.
	if err := hostpaths.Record(lab.CreatedPathsFile(), created); err != nil {
		return err
	}
	args = append(args, "--", kubelet,
		"--lab-name="+lab.Name,
		"--state-dir="+lab.StateDir,
		"--node-name="+node,
		"--node-ip="+ip.String(),
		"--kubeconfig="+lab.NodeKubeconfig(node),
		"--bin-dir="+o.BinDir,
		"--network-check-period=10s",
	)
	_, err := proc.Start(lab.PIDDir(), proc.Spec{
		Name:    node + "-kubelet",
		Netns:   lab.NodeNetns(node),
		Args:    args,
		LogFile: filepath.Join(lab.LogDir(), node+"-kubelet.log"),
	})
	return err
}

func waitNodesReady(ctx context.Context, client kubernetes.Interface, nodes []string, timeout time.Duration) error {
	var notReady []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		notReady = notReady[:0]
		for _, n := range nodes {
			node, err := client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !nodeReady(node) {
				notReady = append(notReady, n)
			}
		}
		return len(notReady) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not Ready after %s: %s (see the kubelet logs)", timeout, strings.Join(notReady, ", "))
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitDefaultServiceAccount waits for the ServiceAccount controller: until
// it has made "default" in the default namespace, pods cannot be created.
func waitDefaultServiceAccount(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("default ServiceAccount not created after %s (see kube-controller-manager.log)", timeout)
	}
	return nil
}
