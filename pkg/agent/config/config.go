// Package config is the agent's configuration file, antrea-agent.conf: its
// keys, their defaults, and validation that names the bad key.
package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ovs-cni/antrea/pkg/kubeclient"
)

// Datapath types of the OVS bridge.
const (
	DatapathSystem = "system"
	DatapathNetdev = "netdev"
)

// Tunnel types.
const (
	OVSManagedByContainer = "container"
	OVSManagedByHost      = "host"
)

const (
	TunnelVXLAN  = "vxlan"
	TunnelGeneve = "geneve"
)

// AgentConfig is antrea-agent.conf. Every key is documented in
// docs/configuration.md.
type AgentConfig struct {
	// OVSBridge is the integration bridge the agent owns.
	OVSBridge string `json:"ovsBridge"`
	// OVSDatapathType is "system" (kernel datapath, production) or
	// "netdev" (userspace datapath).
	OVSDatapathType string `json:"ovsDatapathType"`
	// OVSManagedBy says who runs ovsdb-server and ovs-vswitchd: the
	// antrea-ovs container ("container", the default) or the node itself
	// ("host", e.g. its init system), which the userspace datapath needs
	// when the node's uplink is a port of an OVS bridge: then antrea-ovs
	// only watches the daemons and reports their health.
	OVSManagedBy string `json:"ovsManagedBy"`
	// OVSRunDir holds the OVSDB socket (db.sock) and the bridges'
	// OpenFlow management sockets (<bridge>.mgmt).
	OVSRunDir string `json:"ovsRunDir"`
	// HostGateway is the name of the gateway port (internal) on the bridge.
	HostGateway string `json:"hostGateway"`
	// TunnelType is "vxlan" or "geneve".
	TunnelType string `json:"tunnelType"`
	// DefaultMTU of pod interfaces; 0 means the uplink's MTU minus the
	// tunnel overhead.
	DefaultMTU int `json:"defaultMTU"`
	// ServiceCIDR is the cluster's Service range.
	ServiceCIDR string `json:"serviceCIDR"`
	// CNISocket is where the agent serves the CNI plugin.
	CNISocket string `json:"cniSocket"`
	// APISocket is where the agent serves its local API (antctl on the
	// node): a unix socket only root can open.
	APISocket string `json:"apiSocket"`
	// APIPort is the TCP port on every address of the node where the
	// agent serves the same API over HTTPS to authenticated and
	// authorized clients (antctl from outside the node), with
	// authentication and authorization delegated to the kube-apiserver.
	// 0 turns it off.
	APIPort int `json:"apiPort"`
	// CNIConfDir and CNIBinDir are where the agent installs its CNI
	// config and the antrea-cni binary (what the install-cni init
	// container does in the manifest).
	CNIConfDir string `json:"cniConfDir"`
	CNIBinDir  string `json:"cniBinDir"`
	// StateDir keeps the agent's state on the node, e.g. the IPAM store.
	StateDir string `json:"stateDir"`
	// NodeName of this node; the NODE_NAME environment variable overrides
	// it, as the manifest sets it from the downward API.
	NodeName string `json:"nodeName"`
	// Kubeconfig to reach the API; empty means in-cluster.
	Kubeconfig string `json:"kubeconfig"`
	// KubeAPIServerOverride is the API server's address
	// ("https://host:port") for the in-cluster configuration, in place of
	// the kubernetes Service's ClusterIP: the agent serves ClusterIPs
	// itself, so it cannot reach one before it runs.
	KubeAPIServerOverride string `json:"kubeAPIServerOverride,omitempty"`
	// AntreaProxy configures the agent's service proxy.
	AntreaProxy AntreaProxyConfig `json:"antreaProxy"`
	// NetworkPolicyStatsInterval is how often the agent reports the
	// traffic its NetworkPolicy flows counted to the controller (a Go
	// duration, at least 1s); "0" turns the statistics off.
	NetworkPolicyStatsInterval string `json:"networkPolicyStatsInterval"`
	// FlowExporter configures the export of connection records (IPFIX).
	FlowExporter FlowExporterConfig `json:"flowExporter"`
}

// StatsInterval is NetworkPolicyStatsInterval parsed (Validate checked
// it); 0 means off.
func (c AgentConfig) StatsInterval() time.Duration {
	d, _ := time.ParseDuration(c.NetworkPolicyStatsInterval)
	return d
}

// AntreaProxyConfig is the antreaProxy section.
type AntreaProxyConfig struct {
	// Enable the service proxy in OVS (ClusterIP); default true. Turn it
	// off when kube-proxy serves Services.
	Enable *bool `json:"enable,omitempty"`
}

// ProxyEnabled reports whether the service proxy runs.
func (c AgentConfig) ProxyEnabled() bool {
	return c.AntreaProxy.Enable == nil || *c.AntreaProxy.Enable
}

// DefaultAPIPort is the agent's HTTPS API port (apiPort).
const DefaultAPIPort = 10350

// Default returns the configuration with every default filled in.
func Default() AgentConfig {
	return AgentConfig{
		OVSBridge:       "br-int",
		OVSDatapathType: DatapathSystem,
		OVSManagedBy:    OVSManagedByContainer,
		OVSRunDir:       "/var/run/openvswitch",
		HostGateway:     "gw0",
		TunnelType:      TunnelVXLAN,
		ServiceCIDR:     "10.96.0.0/12",
		CNISocket:       "/var/run/antrea/cni.sock",
		APISocket:       "/var/run/antrea/agent.sock",
		APIPort:         DefaultAPIPort,
		CNIConfDir:      "/etc/cni/net.d",
		CNIBinDir:       "/opt/cni/bin",
		StateDir:        "/var/lib/antrea",

		NetworkPolicyStatsInterval: "10s",
	}
}

// Load reads the file at path over the defaults and validates it. Unknown
// keys are errors, so that a typo never silently falls back to a default.
func Load(path string) (AgentConfig, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read agent config: %w", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("agent config %s: %w", path, err)
		}
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		cfg.NodeName = n
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("agent config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate names the first key with a bad value.
func (c AgentConfig) Validate() error {
	switch {
	case c.OVSBridge == "" || len(c.OVSBridge) > 15:
		return fmt.Errorf("ovsBridge %q: must be 1-15 characters", c.OVSBridge)
	case c.OVSDatapathType != DatapathSystem && c.OVSDatapathType != DatapathNetdev:
		return fmt.Errorf("ovsDatapathType %q: must be %q or %q", c.OVSDatapathType, DatapathSystem, DatapathNetdev)
	case c.OVSManagedBy != OVSManagedByContainer && c.OVSManagedBy != OVSManagedByHost:
		return fmt.Errorf("ovsManagedBy %q: must be %q or %q", c.OVSManagedBy, OVSManagedByContainer, OVSManagedByHost)
	case c.HostGateway == "" || len(c.HostGateway) > 15:
		return fmt.Errorf("hostGateway %q: must be 1-15 characters", c.HostGateway)
	case c.TunnelType != TunnelVXLAN && c.TunnelType != TunnelGeneve:
		return fmt.Errorf("tunnelType %q: must be %q or %q", c.TunnelType, TunnelVXLAN, TunnelGeneve)
	case c.DefaultMTU != 0 && (c.DefaultMTU < 576 || c.DefaultMTU > 9216):
		return fmt.Errorf("defaultMTU %d: must be 0 (auto) or between 576 and 9216", c.DefaultMTU)
	case c.CNISocket == "":
		return fmt.Errorf("cniSocket: must not be empty")
	case c.APISocket == "":
		return fmt.Errorf("apiSocket: must not be empty")
	case c.APISocket == c.CNISocket:
		return fmt.Errorf("apiSocket %q: must differ from cniSocket", c.APISocket)
	case c.APIPort < 0 || c.APIPort > 65535:
		return fmt.Errorf("apiPort %d: must be 0 (off) or a TCP port", c.APIPort)
	case c.OVSRunDir == "":
		return fmt.Errorf("ovsRunDir: must not be empty")
	case c.StateDir == "":
		return fmt.Errorf("stateDir: must not be empty")
	case c.CNIConfDir == "":
		return fmt.Errorf("cniConfDir: must not be empty")
	case c.CNIBinDir == "":
		return fmt.Errorf("cniBinDir: must not be empty")
	case c.NodeName == "":
		return fmt.Errorf("nodeName: must be set (or the NODE_NAME environment variable)")
	}
	if err := kubeclient.ValidateOverride("kubeAPIServerOverride", c.KubeAPIServerOverride, c.Kubeconfig); err != nil {
		return err
	}
	if d, err := time.ParseDuration(c.NetworkPolicyStatsInterval); err != nil {
		return fmt.Errorf("networkPolicyStatsInterval %q: must be a duration such as 10s, or 0 to turn the statistics off", c.NetworkPolicyStatsInterval)
	} else if d != 0 && d < time.Second {
		return fmt.Errorf("networkPolicyStatsInterval %q: must be at least 1s, or 0 to turn the statistics off", c.NetworkPolicyStatsInterval)
	}
	if p, err := netip.ParsePrefix(c.ServiceCIDR); err != nil {
		return fmt.Errorf("serviceCIDR %q: %w", c.ServiceCIDR, err)
	} else if !p.Addr().Is4() {
		return fmt.Errorf("serviceCIDR %q: only IPv4 is supported", c.ServiceCIDR)
	}
	if c.FlowExporter.Enable {
		if _, err := c.FlowExporter.Settings(); err != nil {
			return err
		}
	}
	return nil
}

// TunnelOverhead is the bytes the tunnel adds to each packet.
func (c AgentConfig) TunnelOverhead() int {
	// Outer IPv4 (20) + UDP (8) + VXLAN (8) or Geneve (8, no options) +
	// inner Ethernet (14) = 50.
	return 50
}
