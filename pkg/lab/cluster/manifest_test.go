package cluster

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func readManifest(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "build", "yamls", "antrea.yml"))
	require.NoError(t, err)
	return src
}

func configMapName(t *testing.T, manifest []byte) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  name: (antrea-config-[a-z0-9]+)$`).FindSubmatch(manifest)
	require.NotNil(t, m, "a ConfigMap antrea-config-*")
	return string(m[1])
}

func TestRenderManifest(t *testing.T) {
	src := readManifest(t)
	out, err := RenderManifest(src, map[string]any{"ovsDatapathType": "netdev", "tunnelType": "geneve"},
		map[string]any{"kubeAPIServerOverride": "https://172.18.0.2:6443"})
	require.NoError(t, err)
	name := configMapName(t, out)
	assert.NotEqual(t, configMapName(t, src), name, "the ConfigMap is named after its new content")

	var cm struct {
		Data map[string]string `json:"data"`
	}
	for _, doc := range docSeparator.Split(string(out), -1) {
		if regexp.MustCompile(`(?m)^kind: ConfigMap$`).MatchString(doc) {
			require.NoError(t, yaml.Unmarshal([]byte(doc), &cm))
		}
	}
	var agent, controller map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["antrea-agent.conf"]), &agent))
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["antrea-controller.conf"]), &controller))
	assert.Equal(t, map[string]any{"ovsDatapathType": "netdev", "tunnelType": "geneve"}, agent,
		"commented defaults and empty sections are dropped, the lab's keys set")
	assert.Equal(t, map[string]any{"kubeAPIServerOverride": "https://172.18.0.2:6443"}, controller)
	assert.JSONEq(t, `{"cniVersion":"1.1.0","name":"antrea","plugins":[{"type":"antrea","cniSocket":"/var/run/antrea/cni.sock"}]}`,
		cm.Data["antrea-cni.conflist"], "the conflist is kept as is")

	refs := regexp.MustCompile(`name: `+name+`\n`).FindAll(out, -1)
	assert.Len(t, refs, 3, "the ConfigMap itself, the Deployment's and the DaemonSet's volume")
	assert.Contains(t, string(out), "key: "+AgentOffLabel)

	again, err := RenderManifest(src, map[string]any{"ovsDatapathType": "netdev", "tunnelType": "geneve"},
		map[string]any{"kubeAPIServerOverride": "https://172.18.0.2:6443"})
	require.NoError(t, err)
	assert.Equal(t, string(out), string(again), "rendering is deterministic")

	changed, err := RenderManifest(src, map[string]any{"ovsDatapathType": "netdev", "tunnelType": "vxlan"}, nil)
	require.NoError(t, err)
	assert.NotEqual(t, name, configMapName(t, changed), "a changed key is a new ConfigMap, hence a new pod template")
}

func TestRenderManifestErrors(t *testing.T) {
	_, err := RenderManifest([]byte("kind: Service\nmetadata: {name: x}\n"), nil, nil)
	assert.ErrorContains(t, err, "no ConfigMap antrea-config-*")
	_, err = RenderManifest([]byte("kind: [\n"), nil, nil)
	assert.ErrorContains(t, err, "manifest document 0")
	_, err = RenderManifest([]byte("kind: ConfigMap\nmetadata: {name: antrea-config-x}\ndata: {antrea-agent.conf: 'a: 1', antrea-controller.conf: ''}\n"), nil, nil)
	assert.ErrorContains(t, err, "no DaemonSet")
}
