// Package layout names the things a lab owns: its network namespaces, the
// folders of its state directory, and its addresses. Every lab component
// derives names from here so that `antrea-lab down` can find them all.
package layout

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"

	"k8s.io/apimachinery/pkg/types"
)

// Addressing plan of a lab. The underlay lives in a namespace of the lab's
// own, so these ranges never touch the machine's root namespace.
var (
	UnderlayPrefix   = netip.MustParsePrefix("172.18.0.0/24")
	ControlPlaneIP   = netip.MustParseAddr("172.18.0.2")
	ExternalIP       = netip.MustParseAddr("172.18.0.200")
	ClusterCIDR      = netip.MustParsePrefix("10.10.0.0/16")
	ServiceCIDR      = netip.MustParsePrefix("10.96.0.0/16")
	KubernetesSvcIP  = netip.MustParseAddr("10.96.0.1")
	NodeCIDRMaskSize = 24
	APIServerPort    = 6443
)

// MaxNodes is the number of nodes the underlay plan has room for.
const MaxNodes = 100

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// Lab is one lab instance: its name prefixes every namespace it creates and
// StateDir holds every file it writes.
type Lab struct {
	Name     string
	StateDir string
}

// New validates the lab name and returns its layout.
func New(name, stateDir string) (Lab, error) {
	if !namePattern.MatchString(name) {
		return Lab{}, fmt.Errorf("lab name %q: must match %s", name, namePattern)
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return Lab{}, fmt.Errorf("state dir %q: %w", stateDir, err)
	}
	return Lab{Name: name, StateDir: abs}, nil
}

// NodeName is the Kubernetes name of node i (1-based).
func NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// NodeIP is the underlay address of node i (1-based).
func NodeIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 18, 0, byte(10 + i)})
}

// NetnsPrefix starts the name of every namespace of this lab. The dot
// cannot appear in lab names, so no lab's prefix is another lab's (a lab
// "e2e" must not own the namespaces of a lab "e2e-antrea").
func (l Lab) NetnsPrefix() string { return l.Name + "." }

// UnderlayNetns holds the underlay bridge every host is plugged into.
func (l Lab) UnderlayNetns() string { return l.NetnsPrefix() + "underlay" }

// ControlPlaneNetns runs etcd and the Kubernetes control plane.
func (l Lab) ControlPlaneNetns() string { return l.NetnsPrefix() + "control-plane" }

// ExternalNetns is a host on the underlay outside the cluster.
func (l Lab) ExternalNetns() string { return l.NetnsPrefix() + "external" }

// NodeNetns is the namespace of a simulated node.
func (l Lab) NodeNetns(node string) string { return l.NetnsPrefix() + node }

// PodNetns is the namespace of a pod sandbox, derived from the pod UID so
// that any tool can find it from the API object alone.
func PodNetns(labName string, uid types.UID) string {
	u := string(uid)
	if len(u) > 13 {
		u = u[:13]
	}
	return labName + ".pod-" + u
}

// PodNetns is PodNetns for this lab.
func (l Lab) PodNetns(uid types.UID) string { return PodNetns(l.Name, uid) }

// NodePrivatePaths are the machine paths each simulated node has a copy
// of: its kubelet, and so every container and CNI plugin it runs, sees the
// node's folder NodeRoot/<path> there (a bind mount in the kubelet's mount
// namespace), as processes on a real node see its own file system.
var NodePrivatePaths = []string{
	"/etc/cni/net.d",
	"/opt/cni/bin",
	"/var/run/antrea",
	"/var/lib/antrea",
	"/var/run/openvswitch",
	"/var/log/antrea",
}

// NodeRoot is the folder below which a node keeps its NodePrivatePaths.
func (l Lab) NodeRoot(node string) string { return filepath.Join(l.NodeDir(node), "root") }

// NodePath is where the machine keeps path of node: one of
// NodePrivatePaths (or below one).
func (l Lab) NodePath(node, path string) string { return filepath.Join(l.NodeRoot(node), path) }

// Folders of the state directory.
func (l Lab) PKIDir() string                { return filepath.Join(l.StateDir, "pki") }
func (l Lab) LogDir() string                { return filepath.Join(l.StateDir, "logs") }
func (l Lab) PIDDir() string                { return filepath.Join(l.StateDir, "pids") }
func (l Lab) EtcdDir() string               { return filepath.Join(l.StateDir, "etcd") }
func (l Lab) KubeconfigDir() string         { return filepath.Join(l.StateDir, "kubeconfig") }
func (l Lab) AdminKubeconfig() string       { return filepath.Join(l.KubeconfigDir(), "admin.conf") }
func (l Lab) StateFile() string             { return filepath.Join(l.StateDir, "lab.json") }
func (l Lab) CreatedPathsFile() string      { return filepath.Join(l.StateDir, "created-paths") }
func (l Lab) NodeDir(node string) string    { return filepath.Join(l.StateDir, "nodes", node) }
func (l Lab) OVSDir(node string) string     { return l.NodePath(node, "/var/run/openvswitch") }
func (l Lab) CNIConfDir(node string) string { return l.NodePath(node, "/etc/cni/net.d") }
func (l Lab) CNIBinDir(node string) string  { return l.NodePath(node, "/opt/cni/bin") }
func (l Lab) KubeletDir(node string) string { return filepath.Join(l.NodeDir(node), "kubelet") }
func (l Lab) NodeKubeconfig(node string) string {
	return filepath.Join(l.KubeconfigDir(), "kubelet-"+node+".conf")
}
