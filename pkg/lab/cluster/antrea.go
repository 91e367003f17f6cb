package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/ovsnode"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
	"github.com/ovs-cni/antrea/pkg/lab/underlay"
)

// AgentIdentity is the API identity of the agents the lab runs as
// processes: the ServiceAccount kube-system/antrea-agent, as on a real
// cluster, through a kubeconfig holding a token of it; its permissions are
// the agent's ClusterRole.
var AgentIdentity = controlplane.Identity{File: "antrea-agent.conf", CommonName: "antrea-agent"}

// agentServiceAccountNamespace is where the agents' ServiceAccount lives.
const agentServiceAccountNamespace = "kube-system"

// antreaBinaries are what --cni antrea needs in bin/.
var antreaBinaries = []string{"antrea-agent", "antrea-controller", "antrea-cni", "cni/host-local"}

// UplinkBridge is the OVS bridge that holds a node's underlay NIC when the
// datapath is userspace: OVS's userspace tunnels route through it.
const UplinkBridge = "br-phy"

// prepareUplink moves the node's underlay address from eth0 onto an OVS
// netdev bridge br-phy that has eth0 as a port, as OVS's userspace tunnels
// need (a plain kernel underlay fails with "native tunnel routing failed").
func prepareUplink(lab layout.Lab, node string, addr netip.Prefix) error {
	inst := ovsnode.Instance{Netns: lab.NodeNetns(node), Dir: lab.OVSDir(node)}
	steps := [][]string{
		{"ovs-vsctl", "--db=unix:" + inst.DBSocket(), "--may-exist", "add-br", UplinkBridge,
			"--", "set", "bridge", UplinkBridge, "datapath_type=netdev", "other_config:hwaddr=" + macOf(lab, node),
			"--", "--may-exist", "add-port", UplinkBridge, underlay.HostIfName},
		{"ip", "addr", "flush", "dev", underlay.HostIfName},
		{"ip", "addr", "add", addr.String(), "dev", UplinkBridge},
		{"ip", "link", "set", UplinkBridge, "up"},
		{"ethtool", "-K", underlay.HostIfName, "tx", "off"},
	}
	for _, s := range steps {
		cmd := exec.Command("ip", append([]string{"netns", "exec", lab.NodeNetns(node)}, s...)...)
		cmd.Env = append(os.Environ(), inst.Env()...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("node %s uplink: %s: %w: %s", node, strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	// The userspace datapath reads eth0 frame by frame and drops what is
	// larger than the MTU ("Dropped packet: Too big" in its log): the
	// underlay's port towards the node segments TCP itself (the API
	// server's answers, the external host's) rather than hand it
	// segmentation-offload frames.
	port := underlayPort(node)
	if out, err := exec.Command("ip", "netns", "exec", lab.UnderlayNetns(), "ethtool", "-K", port, "tso", "off", "gso", "off").CombinedOutput(); err != nil {
		return fmt.Errorf("node %s uplink: ethtool -K %s tso off gso off: %w: %s", node, port, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// macOf gives br-phy the MAC of eth0, so the node keeps its L2 identity.
func macOf(lab layout.Lab, node string) string {
	out, err := exec.Command("ip", "netns", "exec", lab.NodeNetns(node), "cat", "/sys/class/net/"+underlay.HostIfName+"/address").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// AgentAPISocket is where a node's agent serves its local API.
func AgentAPISocket(lab layout.Lab, node string) string {
	return filepath.Join(lab.NodeDir(node), "antrea", "agent.sock")
}

// AgentConfig is the antrea-agent.conf the lab gives a node's agent.
func AgentConfig(lab layout.Lab, node, tunnelType string) string {
	dir := filepath.Join(lab.NodeDir(node), "antrea")
	return strings.Join([]string{
		"ovsBridge: br-int",
		"ovsDatapathType: netdev",
		"ovsRunDir: " + lab.OVSDir(node),
		"hostGateway: gw0",
		"tunnelType: " + tunnelType,
		"serviceCIDR: " + layout.ServiceCIDR.String(),
		"cniSocket: " + filepath.Join(dir, "cni.sock"),
		"apiSocket: " + AgentAPISocket(lab, node),
		"cniConfDir: " + lab.CNIConfDir(node),
		"cniBinDir: " + lab.CNIBinDir(node),
		"stateDir: " + dir,
		"nodeName: " + node,
		"kubeconfig: " + filepath.Join(lab.KubeconfigDir(), AgentIdentity.File),
		"",
	}, "\n")
}

func startAgent(lab layout.Lab, o Options, node string) error {
	dir := filepath.Join(lab.NodeDir(node), "antrea")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	conf := filepath.Join(dir, "antrea-agent.conf")
	if err := os.WriteFile(conf, []byte(AgentConfig(lab, node, o.TunnelType)), 0o644); err != nil {
		return fmt.Errorf("write agent config of %s: %w", node, err)
	}
	_, err := proc.Start(lab.PIDDir(), proc.Spec{
		Name:    node + "-antrea-agent",
		Netns:   lab.NodeNetns(node),
		Args:    []string{filepath.Join(o.BinDir, "antrea-agent"), "--config=" + conf, "--v=2"},
		LogFile: filepath.Join(lab.LogDir(), node+"-antrea-agent.log"),
	})
	return err
}

// grantAgentRole creates the agents' ServiceAccount, gives it what the
// agent reads, and writes the agents' kubeconfig with a token of it.
func grantAgentRole(ctx context.Context, lab layout.Lab, client kubernetes.Interface) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: AgentIdentity.CommonName, Namespace: agentServiceAccountNamespace}}
	if _, err := client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	year := int64(365 * 24 * 3600)
	tr, err := client.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &year},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token of ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	caPEM, err := readCA(lab)
	if err != nil {
		return err
	}
	if err := controlplane.WriteTokenKubeconfig(filepath.Join(lab.KubeconfigDir(), AgentIdentity.File), "system:serviceaccount:"+sa.Namespace+":"+sa.Name, caPEM, tr.Status.Token); err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "antrea-lab-agent"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "services"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
			// Pod selectors of NetworkPolicies, to hold new pods' ports.
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"controlplane.antrea.io"}, Resources: []string{"appliedtogroups", "addressgroups", "networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "antrea-lab-agent"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: agentServiceAccountNamespace, Name: AgentIdentity.CommonName}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ClusterRoleBinding %s: %w", binding.Name, err)
	}
	return nil
}

// primeNeighbors makes every node resolve every other node's underlay MAC.
// OVS's userspace tunnels drop the first packet to a peer they have not
// resolved yet; resolving at start keeps that out of the first pod
// connections.
func primeNeighbors(lab layout.Lab, nodes []string) {
	var wg sync.WaitGroup
	for _, from := range nodes {
		for j := range nodes {
			if nodes[j] == from {
				continue
			}
			wg.Add(1)
			go func(from string, to netip.Addr) {
				defer wg.Done()
				_ = exec.Command("ip", "netns", "exec", lab.NodeNetns(from), "ping", "-c1", "-W1", to.String()).Run()
			}(from, layout.NodeIP(j+1))
		}
	}
	wg.Wait()
}

// RestartVswitchd kills a node's ovs-vswitchd and starts it again on the
// same database, as a crash and a restart by the init system would. With
// --cni antrea it then gives br-phy back the node's address (its tap device
// is re-created with the daemon), as the node's network configuration
// would; the agent restores its own gateway when it reconnects.
func RestartVswitchd(lab layout.Lab, node string) error {
	st, err := LoadState(lab)
	if err != nil {
		return err
	}
	idx := -1
	for i, n := range st.Nodes {
		if n == node {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("unknown node %q: the lab has %s", node, strings.Join(st.Nodes, ", "))
	}
	recs, err := proc.Load(lab.PIDDir())
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Name == node+"-ovs-vswitchd" {
			if err := proc.Kill(r.PID, 0); err != nil {
				return fmt.Errorf("kill ovs-vswitchd of %s: %w", node, err)
			}
		}
	}
	inst := ovsnode.Instance{Netns: lab.NodeNetns(node), Dir: lab.OVSDir(node)}
	if err := inst.StartVswitchd(lab.PIDDir(), node+"-"); err != nil {
		return err
	}
	if st.CNI != CNIAntrea {
		return nil
	}
	addr := netip.PrefixFrom(layout.NodeIP(idx+1), layout.UnderlayPrefix.Bits())
	for _, s := range [][]string{
		{"ip", "addr", "replace", addr.String(), "dev", UplinkBridge},
		{"ip", "link", "set", UplinkBridge, "up"},
	} {
		var out []byte
		// The tap device appears once ovs-vswitchd has read its database.
		for i := 0; i < 100; i++ {
			if out, err = exec.Command("ip", append([]string{"netns", "exec", lab.NodeNetns(node)}, s...)...).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("node %s: %s: %w: %s", node, strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
