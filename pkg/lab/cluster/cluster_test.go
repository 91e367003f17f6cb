package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"zero nodes", Options{Nodes: 0, CNI: CNIBridge, TunnelType: "vxlan"}, "--nodes 0"},
		{"too many nodes", Options{Nodes: 101, CNI: CNIBridge, TunnelType: "vxlan"}, "--nodes 101"},
		{"bad tunnel", Options{Nodes: 1, CNI: CNIAntrea, TunnelType: "gre"}, `--tunnel-type "gre"`},
		{"unknown cni", Options{Nodes: 1, CNI: "calico", TunnelType: "vxlan"}, `--cni "calico"`},
		{"antrea binaries missing", Options{Nodes: 1, CNI: CNIAntrea, TunnelType: "vxlan", BinDir: "/nonexistent", KubeBinDir: "/k", EtcdBin: "/e"}, "/nonexistent/antrea-agent"},
		{"missing binaries", Options{Nodes: 1, CNI: CNIBridge, TunnelType: "vxlan", BinDir: "/nonexistent", KubeBinDir: "/nonexistent", EtcdBin: "/nonexistent/etcd"}, "missing programs (run 'make build'): /nonexistent/antrea-lab-kubelet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, tc.o.Validate(), tc.want)
		})
	}
}

func TestBridgeConfList(t *testing.T) {
	data, err := BridgeConfList("10.10.1.0/24", "/state/nodes/node-1/cni/ipam")
	require.NoError(t, err)
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []struct {
			Type      string `json:"type"`
			IsGateway bool   `json:"isGateway"`
			IPAM      struct {
				Type    string                `json:"type"`
				Ranges  [][]map[string]string `json:"ranges"`
				DataDir string                `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	require.NoError(t, json.Unmarshal(data, &conf))
	assert.Equal(t, "1.1.0", conf.CNIVersion)
	require.Len(t, conf.Plugins, 1)
	p := conf.Plugins[0]
	assert.Equal(t, "bridge", p.Type)
	assert.True(t, p.IsGateway)
	assert.Equal(t, "host-local", p.IPAM.Type)
	assert.Equal(t, "10.10.1.0/24", p.IPAM.Ranges[0][0]["subnet"])
	assert.Equal(t, "/state/nodes/node-1/cni/ipam", p.IPAM.DataDir)
}

func TestStateRoundTripAndNotUp(t *testing.T) {
	lab, err := layout.New("unit", t.TempDir())
	require.NoError(t, err)
	_, err = LoadState(lab)
	assert.ErrorIs(t, err, ErrNotUp)

	st := State{Name: "unit", Nodes: []string{"node-1"}, CNI: CNIBridge}
	require.NoError(t, saveState(lab, st))
	got, err := LoadState(lab)
	require.NoError(t, err)
	assert.Equal(t, st.Nodes, got.Nodes)
	assert.ErrorContains(t, checkNotUp(lab), "is already up")

	require.NoError(t, os.WriteFile(lab.StateFile(), []byte("{"), 0o644))
	_, err = LoadState(lab)
	assert.ErrorContains(t, err, "decode lab state")
}

func TestRemoveStateKeepsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	lab, err := layout.New("unit", dir)
	require.NoError(t, err)
	for _, d := range []string{lab.PIDDir(), lab.LogDir(), lab.NodeDir("node-1")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, saveState(lab, State{Name: "unit"}))
	foreign := filepath.Join(dir, "mine.txt")
	require.NoError(t, os.WriteFile(foreign, []byte("keep"), 0o644))

	require.NoError(t, removeState(lab))
	assert.NoDirExists(t, lab.PIDDir())
	assert.NoDirExists(t, lab.NodeDir("node-1"))
	assert.NoFileExists(t, lab.StateFile())
	assert.FileExists(t, foreign)
}

func TestOptionsValidateManifest(t *testing.T) {
	bin, kube := t.TempDir(), t.TempDir()
	touch := func(p string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o755))
	}
	for _, p := range append([]string{"antrea-lab-kubelet", "lab-agnhost"}, antreaBinaries...) {
		touch(filepath.Join(bin, p))
	}
	for _, p := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd"} {
		touch(filepath.Join(kube, p))
	}
	o := Options{Nodes: 1, CNI: CNIAntrea, TunnelType: "vxlan", BinDir: bin, KubeBinDir: kube, EtcdBin: filepath.Join(kube, "etcd"),
		Manifest: filepath.Join(bin, "antrea.yml")}
	assert.ErrorContains(t, o.Validate(), "--manifest: stat "+o.Manifest)
}
