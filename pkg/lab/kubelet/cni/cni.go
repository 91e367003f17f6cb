// Package cni drives the node's CNI plugins through libcni the way a
// container runtime does: it picks the network configuration from the conf
// dir, asks the plugins for their STATUS, and runs ADD, CHECK, DEL and GC.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// IfName is the interface name every pod sandbox gets.
const IfName = "eth0"

// ErrNotInitialized says that the conf dir holds no network configuration.
var ErrNotInitialized = errors.New("cni plugin not initialized")

// Attachment identifies one pod sandbox attached to the network.
type Attachment struct {
	ContainerID  string
	NetNS        string // path of the sandbox network namespace
	PodNamespace string
	PodName      string
	PodUID       string
}

// Network is what the kubelet needs from CNI. It is an interface so that the
// pod logic can be tested without plugins.
type Network interface {
	// Status returns nil when a network configuration exists and, for
	// cniVersion >= 1.1.0, the plugins report ready.
	Status(ctx context.Context) error
	// Add attaches the sandbox and returns its IPs.
	Add(ctx context.Context, a Attachment) ([]netip.Addr, error)
	// Check asks the plugins whether the sandbox's network is still as ADD
	// left it (cniVersion >= 0.4.0; older configs always pass).
	Check(ctx context.Context, a Attachment) error
	// Del detaches the sandbox; a missing namespace is not an error.
	Del(ctx context.Context, a Attachment) error
	// GC tells the plugins which attachments are still valid (cniVersion >= 1.1.0).
	GC(ctx context.Context, valid []Attachment) error
}

// LibCNI implements Network with libcni.
type LibCNI struct {
	ConfDir string
	cni     libcni.CNI
}

// New returns a Network that runs plugins from binDir with configuration
// from confDir and keeps libcni's result cache in cacheDir.
func New(confDir, binDir, cacheDir string) *LibCNI {
	return &LibCNI{
		ConfDir: confDir,
		cni:     libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nil),
	}
}

// LoadConfig returns the network configuration list of the first file of
// confDir, in lexical order, with a .conf, .conflist or .json extension.
func LoadConfig(confDir string) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(confDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("read CNI conf dir %s: %w", confDir, err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no network config found in %s", ErrNotInitialized, confDir)
	}
	return loadFile(files[0])
}

func loadFile(path string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CNI config %s: %w", path, err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("parse CNI config %s: %w", path, err)
	}
	if _, ok := probe["plugins"]; ok {
		list, err := libcni.NetworkConfFromBytes(data)
		if err != nil {
			return nil, fmt.Errorf("parse CNI config list %s: %w", path, err)
		}
		if len(list.Plugins) == 0 {
			return nil, fmt.Errorf("CNI config list %s: field plugins is empty", path)
		}
		return list, nil
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parse CNI config %s: %w", path, err)
	}
	// Single-plugin .conf files are still found in the wild; containerd
	// loads them too.
	//lint:ignore SA1019 no replacement converts a single-plugin config.
	list, err := libcni.ConfListFromConf(conf)
	if err != nil {
		return nil, fmt.Errorf("convert CNI config %s to a list: %w", filepath.Base(path), err)
	}
	return list, nil
}

// SupportsStatusAndGC reports whether cniVersion is >= 1.1.0.
func SupportsStatusAndGC(list *libcni.NetworkConfigList) bool {
	ok, err := version.GreaterThanOrEqualTo(list.CNIVersion, "1.1.0")
	return err == nil && ok
}

// Status implements Network.
func (l *LibCNI) Status(ctx context.Context) error {
	list, err := LoadConfig(l.ConfDir)
	if err != nil {
		return err
	}
	if !SupportsStatusAndGC(list) {
		return nil
	}
	if err := l.cni.GetStatusNetworkList(ctx, list); err != nil {
		return fmt.Errorf("cni plugin not ready: CNI STATUS of network %q: %w", list.Name, err)
	}
	return nil
}

func runtimeConf(a Attachment) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: a.ContainerID,
		NetNS:       a.NetNS,
		IfName:      IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", a.PodNamespace},
			{"K8S_POD_NAME", a.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", a.ContainerID},
			{"K8S_POD_UID", a.PodUID},
		},
	}
}

// Add implements Network.
func (l *LibCNI) Add(ctx context.Context, a Attachment) ([]netip.Addr, error) {
	list, err := LoadConfig(l.ConfDir)
	if err != nil {
		return nil, err
	}
	res, err := l.cni.AddNetworkList(ctx, list, runtimeConf(a))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD of network %q: %w", list.Name, err)
	}
	return ResultIPs(res)
}

// Check implements Network.
func (l *LibCNI) Check(ctx context.Context, a Attachment) error {
	list, err := LoadConfig(l.ConfDir)
	if err != nil {
		return err
	}
	if ok, err := version.GreaterThanOrEqualTo(list.CNIVersion, "0.4.0"); err != nil || !ok {
		return nil
	}
	if err := l.cni.CheckNetworkList(ctx, list, runtimeConf(a)); err != nil {
		return fmt.Errorf("CNI CHECK of network %q: %w", list.Name, err)
	}
	return nil
}

// ResultIPs converts a CNI result of any version to types/100 and returns
// its addresses.
func ResultIPs(res types.Result) ([]netip.Addr, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert CNI result to version 1.0.0: %w", err)
	}
	var ips []netip.Addr
	for _, ipc := range r.IPs {
		addr, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			return nil, fmt.Errorf("CNI result: invalid IP %v", ipc.Address.IP)
		}
		ips = append(ips, addr.Unmap())
	}
	if len(ips) == 0 {
		return nil, errors.New("CNI result has no IP address")
	}
	return ips, nil
}

// Del implements Network. The namespace path is dropped when it no longer
// exists, as the CNI spec asks runtimes to do.
func (l *LibCNI) Del(ctx context.Context, a Attachment) error {
	list, err := LoadConfig(l.ConfDir)
	if err != nil {
		return err
	}
	if a.NetNS != "" {
		if _, err := os.Stat(a.NetNS); err != nil {
			a.NetNS = ""
		}
	}
	if err := l.cni.DelNetworkList(ctx, list, runtimeConf(a)); err != nil {
		return fmt.Errorf("CNI DEL of network %q: %w", list.Name, err)
	}
	return nil
}

// GC implements Network.
func (l *LibCNI) GC(ctx context.Context, valid []Attachment) error {
	list, err := LoadConfig(l.ConfDir)
	if err != nil {
		return err
	}
	if !SupportsStatusAndGC(list) {
		return nil
	}
	args := &libcni.GCArgs{}
	for _, a := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: a.ContainerID, IfName: IfName})
	}
	if err := l.cni.GCNetworkList(ctx, list, args); err != nil {
		return fmt.Errorf("CNI GC of network %q: %w", list.Name, err)
	}
	return nil
}
