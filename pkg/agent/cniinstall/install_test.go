package cniinstall

import (
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

	require.NoError(t, InstallBinaries(src, bin))
	require.NoError(t, InstallConfList(conf, "src", []byte(`{"cniVersion":"1.1.0","name":"antrea","plugins":[{"type":"antrea","cniSocket":"/run/antrea/cni.sock"}]}`)))
	data, err := os.ReadFile(filepath.Join(bin, "antrea"))
	require.NoError(t, err)
	assert.Equal(t, "plugin", string(data))
	info, err := os.Stat(filepath.Join(bin, "host-local"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
	assert.FileExists(t, filepath.Join(conf, ConfName))

	require.NoError(t, Uninstall(bin, conf))
	assert.NoFileExists(t, filepath.Join(conf, ConfName))
	assert.NoFileExists(t, filepath.Join(bin, PluginName))
	assert.FileExists(t, filepath.Join(bin, "host-local"), "host-local stays: other plugins use it")
	require.NoError(t, Uninstall(bin, conf), "twice is fine")
}

func TestInstallMissingPlugin(t *testing.T) {
	err := InstallBinaries(t.TempDir(), t.TempDir())
	assert.ErrorContains(t, err, "install antrea: none of")
}

func TestInstallConfList(t *testing.T) {
	good := `{"cniVersion":"1.1.0","name":"antrea","plugins":[{"type":"antrea","cniSocket":"/var/run/antrea/cni.sock"}]}`
	tests := []struct {
		name, data, wantErr string
	}{
		{"good", good, ""},
		{"not json", `{`, "CNI conflist src"},
		{"no version", `{"name":"antrea","plugins":[{"type":"antrea","cniSocket":"/s"}]}`, "field cniVersion is empty"},
		{"no name", `{"cniVersion":"1.1.0","plugins":[{"type":"antrea","cniSocket":"/s"}]}`, "field name is empty"},
		{"no plugins", `{"cniVersion":"1.1.0","name":"antrea","plugins":[]}`, "field plugins is empty"},
		{"other plugin first", `{"cniVersion":"1.1.0","name":"antrea","plugins":[{"type":"bridge"}]}`, `plugins[0].type is bridge, want "antrea"`},
		{"no socket", `{"cniVersion":"1.1.0","name":"antrea","plugins":[{"type":"antrea"}]}`, "plugins[0].cniSocket is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := InstallConfList(dir, "src", []byte(tc.data))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				_, statErr := os.Stat(filepath.Join(dir, ConfName))
				assert.True(t, os.IsNotExist(statErr), "a bad conflist is not installed")
				return
			}
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(dir, ConfName))
			require.NoError(t, err)
			assert.JSONEq(t, tc.data, string(got))
		})
	}
}

func TestCheckInstalled(t *testing.T) {
	dir := t.TempDir()
	assert.ErrorContains(t, CheckInstalled(dir), "has no host-local IPAM plugin")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "host-local"), []byte("x"), 0o755))
	assert.NoError(t, CheckInstalled(dir))
}
