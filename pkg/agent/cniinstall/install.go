// Package cniinstall puts the CNI plugin on the node: the antrea-cni binary
// (installed as "antrea"), the host-local IPAM plugin it delegates to, and
// the network config list naming the agent's socket. It is what the
// manifest's install-cni init container runs (antrea-agent install-cni),
// and what the agent removes when Antrea is uninstalled.
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

// ValidateConfList checks a conflist meant for the node: JSON with a name,
// a cniVersion, and the antrea plugin first with a cniSocket. what names the
// source in errors.
func ValidateConfList(what string, data []byte) error {
	var c struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("CNI conflist %s: %w", what, err)
	}
	switch {
	case c.CNIVersion == "":
		return fmt.Errorf("CNI conflist %s: field cniVersion is empty", what)
	case c.Name == "":
		return fmt.Errorf("CNI conflist %s: field name is empty", what)
	case len(c.Plugins) == 0:
		return fmt.Errorf("CNI conflist %s: field plugins is empty", what)
	case c.Plugins[0]["type"] != PluginName:
		return fmt.Errorf("CNI conflist %s: plugins[0].type is %v, want %q", what, c.Plugins[0]["type"], PluginName)
	}
	if sock, _ := c.Plugins[0]["cniSocket"].(string); sock == "" {
		return fmt.Errorf("CNI conflist %s: plugins[0].cniSocket is empty", what)
	}
	return nil
}

// InstallConfList validates data and writes it as confDir/ConfName.
func InstallConfList(confDir, what string, data []byte) error {
	if err := ValidateConfList(what, data); err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", confDir, err)
	}
	return writeAtomic(filepath.Join(confDir, ConfName), data, 0o644)
}

// CheckInstalled reports a missing host-local IPAM plugin in binDir, with
// what puts it there.
func CheckInstalled(binDir string) error {
	p := filepath.Join(binDir, "host-local")
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("cniBinDir %s has no host-local IPAM plugin (the install-cni init container installs it; run 'antrea-agent install-cni'): %w", binDir, err)
	}
	return nil
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
