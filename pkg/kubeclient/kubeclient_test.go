package kubeclient

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateOverride(t *testing.T) {
	tests := []struct {
		override, kubeconfig, wantErr string
	}{
		{"", "", ""},
		{"", "/k", ""},
		{"https://10.0.0.1:6443", "", ""},
		{"https://api.example.com", "", ""},
		{"10.0.0.1:6443", "", `kubeAPIServerOverride "10.0.0.1:6443"`},
		{"http://10.0.0.1:6443", "", "must be https://HOST[:PORT]"},
		{"https://a:6443/x", "", "must be https://HOST[:PORT]"},
		{"https://a:6443?x=1", "", "must be https://HOST[:PORT]"},
		{"https://u:p@a:6443", "", "must be https://HOST[:PORT]"},
		{"https://a:6443", "/k", "not with kubeconfig"},
	}
	for _, tt := range tests {
		err := ValidateOverride("kubeAPIServerOverride", tt.override, tt.kubeconfig)
		if tt.wantErr == "" {
			assert.NoError(t, err, tt.override)
		} else {
			assert.ErrorContains(t, err, tt.wantErr, tt.override)
		}
	}
}

func TestConfigFromKubeconfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.1.2.3:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	cfg, err := Config(p, "")
	require.NoError(t, err)
	assert.Equal(t, "https://10.1.2.3:6443", cfg.Host)
	assert.Equal(t, "t", cfg.BearerToken)

	_, err = Config(filepath.Join(t.TempDir(), "missing"), "")
	assert.ErrorContains(t, err, "load kubeconfig")
}

func TestConfigInClusterNeedsServiceAccount(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := Config("", "")
	assert.ErrorContains(t, err, "in-cluster config")
}
