// Command antrea-cni is the CNI plugin the container runtime executes; it
// forwards every command to the antrea agent (see pkg/cni/client).
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/ovs-cni/antrea/pkg/cni/client"
)

func main() {
	skel.PluginMainFuncs(client.New(os.Stdout).Funcs(), client.VersionInfo(), client.About)
}
