package cniv1

// DefaultSocketPath is where the agent serves the Cni service and where the
// plugin dials when the network config has no cniSocket.
const DefaultSocketPath = "/var/run/antrea/cni.sock"

// SupportedVersions are the CNI spec versions the plugin advertises and the
// agent accepts in a network config's cniVersion.
var SupportedVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}
