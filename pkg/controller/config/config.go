// Package config is antrea-controller.conf: the controller's configuration
// file, as the manifest's ConfigMap holds it.
package config

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/ovs-cni/antrea/pkg/kubeclient"
)

// DefaultAPIPort is where the controller serves controlplane.antrea.io.
const DefaultAPIPort = 10349

// ControllerConfig holds the keys of antrea-controller.conf.
type ControllerConfig struct {
	// APIPort is the TCP port of the controller's API (HTTPS).
	APIPort int `json:"apiPort"`
	// SelfSignedCert makes the controller generate its serving
	// certificate at start and publish its CA in the APIService's
	// caBundle; false means the certificate comes from tlsCertFile and
	// tlsPrivateKeyFile and the APIService's caBundle is managed by
	// whoever issued it.
	SelfSignedCert *bool `json:"selfSignedCert,omitempty"`
	// TLSCertFile and TLSPrivateKeyFile: the serving certificate when
	// selfSignedCert is false.
	TLSCertFile       string `json:"tlsCertFile,omitempty"`
	TLSPrivateKeyFile string `json:"tlsPrivateKeyFile,omitempty"`
	// Kubeconfig to reach the API; empty means in-cluster.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// KubeAPIServerOverride is the API server's address
	// ("https://host:port") for the in-cluster configuration, in place of
	// the kubernetes Service's ClusterIP.
	KubeAPIServerOverride string `json:"kubeAPIServerOverride,omitempty"`
}

// SelfSigned reports whether the controller makes its own certificate.
func (c ControllerConfig) SelfSigned() bool {
	return c.SelfSignedCert == nil || *c.SelfSignedCert
}

// Default is the configuration of an empty file.
func Default() ControllerConfig {
	return ControllerConfig{APIPort: DefaultAPIPort}
}

// Load reads and validates path; keys not set keep their defaults.
func Load(path string) (ControllerConfig, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read controller config: %w", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("controller config %s: %w", path, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("controller config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate names the first key that is wrong.
func (c ControllerConfig) Validate() error {
	switch {
	case c.APIPort < 1 || c.APIPort > 65535:
		return fmt.Errorf("apiPort %d: must be between 1 and 65535", c.APIPort)
	case c.SelfSigned() && (c.TLSCertFile != "" || c.TLSPrivateKeyFile != ""):
		return fmt.Errorf("tlsCertFile/tlsPrivateKeyFile: only with selfSignedCert: false")
	case !c.SelfSigned() && (c.TLSCertFile == "" || c.TLSPrivateKeyFile == ""):
		return fmt.Errorf("selfSignedCert: false needs both tlsCertFile and tlsPrivateKeyFile")
	}
	return kubeclient.ValidateOverride("kubeAPIServerOverride", c.KubeAPIServerOverride, c.Kubeconfig)
}
