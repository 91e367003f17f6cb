// Package kubeclient builds the API client configuration of the agent and
// the controller: from a kubeconfig, or in-cluster from the pod's
// ServiceAccount, optionally with the API server's address given directly.
package kubeclient

import (
	"fmt"
	"net"
	"net/url"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ValidateOverride checks an API server override ("https://HOST[:PORT]")
// and that it is used with the in-cluster configuration; field names the
// configuration key in errors.
func ValidateOverride(field, override, kubeconfig string) error {
	if override == "" {
		return nil
	}
	u, err := url.Parse(override)
	switch {
	case err != nil:
		return fmt.Errorf("%s %q: %w", field, override, err)
	case u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return fmt.Errorf("%s %q: must be https://HOST[:PORT]", field, override)
	case kubeconfig != "":
		return fmt.Errorf("%s %q: only for the in-cluster configuration, not with kubeconfig", field, override)
	}
	return nil
}

// Config returns the client configuration: from kubeconfig when set, else
// in-cluster (the ServiceAccount's token and CA). With override, the API
// server is reached at that address rather than through the kubernetes
// Service's ClusterIP, which the agent itself serves and so cannot use
// before it runs.
//
// The override is also written to KUBERNETES_SERVICE_HOST and _PORT of this
// process, so that every in-cluster client it builds (e.g. the delegated
// authentication of the controller's API) reaches the same address.
func Config(kubeconfig, override string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if override != "" {
		u, err := url.Parse(override)
		if err != nil {
			return nil, fmt.Errorf("API server override %q: %w", override, err)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "443"
		}
		if err := os.Setenv("KUBERNETES_SERVICE_HOST", host); err != nil {
			return nil, fmt.Errorf("set KUBERNETES_SERVICE_HOST: %w", err)
		}
		if err := os.Setenv("KUBERNETES_SERVICE_PORT", port); err != nil {
			return nil, fmt.Errorf("set KUBERNETES_SERVICE_PORT: %w", err)
		}
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		cfg.Host = "https://" + net.JoinHostPort(host, port)
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config (outside a cluster, give a kubeconfig): %w", err)
	}
	return cfg, nil
}
