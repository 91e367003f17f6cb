package cniinstall

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallAndUninstall(t *testing.T) {
	src, bin, conf := t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "antrea-cni"), []byte("plugin"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "cni"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "cni", "host-local"), []byte("ipam"), 0o755))

	require.NoError(t, Install(src, bin, conf, "/run/antrea/cni.sock"))
	data, err := os.ReadFile(filepath.Join(bin, "antrea"))
	require.NoError(t, err)
	assert.Equal(t, "plugin", string(data))
	info, err := os.Stat(filepath.Join(bin, "host-local"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())

	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	raw, err := os.ReadFile(filepath.Join(conf, ConfName))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &list))
	assert.Equal(t, "1.1.0", list.CNIVersion)
	assert.Equal(t, "antrea", list.Plugins[0]["type"])
	assert.Equal(t, "/run/antrea/cni.sock", list.Plugins[0]["cniSocket"])

	require.NoError(t, Uninstall(bin, conf))
	assert.NoFileExists(t, filepath.Join(conf, ConfName))
	require.NoError(t, Uninstall(bin, conf), "twice is fine")
}

func TestInstallMissingPlugin(t *testing.T) {
	err := Install(t.TempDir(), t.TempDir(), t.TempDir(), "/s")
	assert.ErrorContains(t, err, "install antrea: none of")
}
