package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

// bridgePlugins are the reference plugins the bridge mode needs, built from
// github.com/containernetworking/plugins into bin/cni.
var bridgePlugins = []string{"bridge", "host-local", "loopback"}

// BridgeConfName is the conflist the lab writes in bridge mode.
const BridgeConfName = "10-lab-bridge.conflist"

var lookPath = exec.LookPath

// prepareCNI installs the plugins a node needs into its CNI bin dir.
func prepareCNI(lab layout.Lab, o Options, node string) error {
	if o.CNI != CNIBridge {
		return nil
	}
	dir := lab.CNIBinDir(node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create CNI bin dir: %w", err)
	}
	for _, p := range bridgePlugins {
		dst := filepath.Join(dir, p)
		_ = os.Remove(dst)
		if err := os.Symlink(filepath.Join(o.BinDir, "cni", p), dst); err != nil {
			return fmt.Errorf("install CNI plugin %s on %s: %w", p, node, err)
		}
	}
	return nil
}

// configureNodeNetworks waits for each node's podCIDR (allocated by
// kube-controller-manager) and writes the node's CNI config for it, the
// step that makes the kubelet report Ready.
func configureNodeNetworks(ctx context.Context, lab layout.Lab, o Options, client kubernetes.Interface, nodes []string) error {
	if o.CNI != CNIBridge {
		return nil
	}
	for _, n := range nodes {
		var cidr string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, o.Timeout, true, func(ctx context.Context) (bool, error) {
			node, err := client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			cidr = node.Spec.PodCIDR
			return cidr != "", nil
		})
		if err != nil {
			return fmt.Errorf("node %s has no podCIDR after %s (did its kubelet register? see %s)", n, o.Timeout, filepath.Join(lab.LogDir(), n+"-kubelet.log"))
		}
		conf, err := BridgeConfList(cidr, filepath.Join(lab.NodeDir(n), "cni", "ipam"))
		if err != nil {
			return err
		}
		if err := writeAtomic(filepath.Join(lab.CNIConfDir(n), BridgeConfName), conf); err != nil {
			return err
		}
	}
	return nil
}

// BridgeConfList is the reference bridge plugin's config for one node: a
// Linux bridge cni0 that is the pods' gateway, addresses from the node's
// podCIDR by host-local with its store under the node's folder.
func BridgeConfList(podCIDR, ipamDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "lab-bridge",
		"plugins": []any{
			map[string]any{
				"type":             "bridge",
				"bridge":           "cni0",
				"isGateway":        true,
				"isDefaultGateway": true,
				"hairpinMode":      true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": podCIDR}}},
					"dataDir": ipamDir,
				},
			},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode bridge conflist: %w", err)
	}
	return data, nil
}

// writeAtomic writes through a temporary file and a rename, so a watcher
// never reads half a file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
