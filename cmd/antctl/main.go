// Command antctl answers questions about antrea without flow dumps: against
// the cluster through a kubeconfig (the controller's view), and on a node
// against the local agent's API socket (the agent's view).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ovs-cni/antrea/pkg/antctl"
)

func main() {
	if err := antctl.NewCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antctl:", err)
		os.Exit(1)
	}
}
