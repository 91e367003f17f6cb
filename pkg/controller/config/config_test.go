package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name, content, wantErr string
		check                  func(*testing.T, ControllerConfig)
	}{
		{"empty", "", "", func(t *testing.T, c ControllerConfig) {
			assert.Equal(t, DefaultAPIPort, c.APIPort)
			assert.True(t, c.SelfSigned())
		}},
		{"port and override", "apiPort: 10400\nkubeAPIServerOverride: https://10.0.0.1:6443\n", "", func(t *testing.T, c ControllerConfig) {
			assert.Equal(t, 10400, c.APIPort)
			assert.Equal(t, "https://10.0.0.1:6443", c.KubeAPIServerOverride)
		}},
		{"own certificate", "selfSignedCert: false\ntlsCertFile: /c\ntlsPrivateKeyFile: /k\n", "", func(t *testing.T, c ControllerConfig) {
			assert.False(t, c.SelfSigned())
		}},
		{"certificate without key", "selfSignedCert: false\ntlsCertFile: /c\n", "needs both tlsCertFile and tlsPrivateKeyFile", nil},
		{"certificate with self-signed", "tlsCertFile: /c\ntlsPrivateKeyFile: /k\n", "only with selfSignedCert: false", nil},
		{"bad port", "apiPort: 70000\n", "apiPort 70000", nil},
		{"unknown key", "apiPrt: 1\n", `unknown field "apiPrt"`, nil},
		{"bad override", "kubeAPIServerOverride: 10.0.0.1\n", `kubeAPIServerOverride "10.0.0.1"`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "antrea-controller.conf")
			require.NoError(t, os.WriteFile(p, []byte(tc.content), 0o644))
			c, err := Load(p)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "read controller config")
}
