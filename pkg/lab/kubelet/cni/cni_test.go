package cni

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plugin is a CNI plugin in shell: STATUS fails while $dir/down exists,
// ADD returns a fixed address, DEL and GC succeed.
const plugin = `#!/bin/sh
dir=$(dirname "$0")
cat >/dev/null
echo "$CNI_COMMAND $CNI_CONTAINERID" >> "$dir/calls"
case "$CNI_COMMAND" in
STATUS) if [ -e "$dir/down" ]; then echo '{"cniVersion":"1.1.0","code":50,"msg":"antrea agent not running"}'; exit 1; fi ;;
ADD) echo '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"x"}],"ips":[{"address":"10.10.1.7/24","interface":0}]}' ;;
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}' ;;
esac
exit 0
`

func write(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(data), mode))
}

func TestLoadConfigOrder(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadConfig(dir)
	require.ErrorIs(t, err, ErrNotInitialized)
	write(t, filepath.Join(dir, "20-b.conflist"), `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"b"}]}`, 0o644)
	write(t, filepath.Join(dir, "10-a.conf"), `{"cniVersion":"0.4.0","name":"a","type":"a"}`, 0o644)
	write(t, filepath.Join(dir, "05-x.txt"), `junk`, 0o644)
	list, err := LoadConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, "a", list.Name)
	require.Len(t, list.Plugins, 1)
	assert.Equal(t, "a", list.Plugins[0].Network.Type)
	assert.False(t, SupportsStatusAndGC(list))

	write(t, filepath.Join(dir, "01-bad.conflist"), `{"cniVersion":"1.1.0","name":"bad","plugins":[]}`, 0o644)
	_, err = LoadConfig(dir)
	require.ErrorContains(t, err, "01-bad.conflist")
}

func TestStatusAddDelGC(t *testing.T) {
	conf, bin, cache := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, filepath.Join(bin, "fake"), plugin, 0o755)
	n := New(conf, bin, cache)
	ctx := context.Background()
	require.ErrorIs(t, n.Status(ctx), ErrNotInitialized)

	write(t, filepath.Join(conf, "10-fake.conflist"), `{"cniVersion":"1.1.0","name":"lab","plugins":[{"type":"fake"}]}`, 0o644)
	require.NoError(t, n.Status(ctx))
	write(t, filepath.Join(bin, "down"), "", 0o644)
	err := n.Status(ctx)
	require.ErrorContains(t, err, "antrea agent not running")
	require.NoError(t, os.Remove(filepath.Join(bin, "down")))

	nsPath := filepath.Join(t.TempDir(), "netns")
	write(t, nsPath, "", 0o644)
	a := Attachment{ContainerID: "abc", NetNS: nsPath, PodNamespace: "default", PodName: "p", PodUID: "u"}
	ips, err := n.Add(ctx, a)
	require.NoError(t, err)
	require.Len(t, ips, 1)
	assert.Equal(t, "10.10.1.7", ips[0].String())

	// DEL with a vanished namespace still succeeds.
	a.NetNS = filepath.Join(t.TempDir(), "gone")
	require.NoError(t, n.Del(ctx, a))
	require.NoError(t, n.GC(ctx, []Attachment{{ContainerID: "keep"}}))
	calls, err := os.ReadFile(filepath.Join(bin, "calls"))
	require.NoError(t, err)
	assert.Contains(t, string(calls), "ADD abc")
	assert.Contains(t, string(calls), "DEL abc")
	assert.Contains(t, string(calls), "GC")
}
