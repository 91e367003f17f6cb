// Package cniinstall puts the CNI plugin on the node: the antrea-cni binary
// (installed as "antrea"), the host-local IPAM plugin it delegates to, and
// the network config list naming the agent's socket. It is what the
// manifest's install-cni init container runs, and what the agent does
// itself when it runs outside a container.
package cniinstall

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ConfName is the conflist file name; "10-" sorts it before most others.
const ConfName = "10-antrea.conflist"

// PluginName is the plugin's type in the conflist and its file name.
const PluginName = "antrea"

// ConfList is the network configuration the runtime reads.
func ConfList(socket string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "antrea",
		"plugins": []any{
			map[string]any{"type": PluginName, "cniSocket": socket},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode CNI conflist: %w", err)
	}
	return data, nil
}

// InstallBinaries copies the plugins found in srcDir (antrea-cni, and
// host-local from srcDir or srcDir/cni) into binDir. Files are replaced
// atomically, so a runtime never runs half a binary.
func InstallBinaries(srcDir, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", binDir, err)
	}
	if err := copyFirst(filepath.Join(binDir, PluginName), filepath.Join(srcDir, "antrea-cni")); err != nil {
		return err
	}
	return copyFirst(filepath.Join(binDir, "host-local"), filepath.Join(srcDir, "host-local"), filepath.Join(srcDir, "cni", "host-local"))
}

// WriteConfig writes the conflist into confDir: from then on the runtime
// sends pods to the agent, so it comes last.
func WriteConfig(confDir, socket string) error {
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", confDir, err)
	}
	conf, err := ConfList(socket)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(confDir, ConfName), conf, 0o644)
}

// Install is InstallBinaries then WriteConfig.
func Install(srcDir, binDir, confDir, socket string) error {
	if err := InstallBinaries(srcDir, binDir); err != nil {
		return err
	}
	return WriteConfig(confDir, socket)
}

// Uninstall removes the conflist and the antrea plugin binary.
func Uninstall(binDir, confDir string) error {
	for _, p := range []string{filepath.Join(confDir, ConfName), filepath.Join(binDir, PluginName)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func copyFirst(dst string, candidates ...string) error {
	for _, src := range candidates {
		in, err := os.Open(src)
		if err != nil {
			continue
		}
		data, err := io.ReadAll(in)
		in.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		return writeAtomic(dst, data, 0o755)
	}
	return fmt.Errorf("install %s: none of %v exists", filepath.Base(dst), candidates)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}
