// Command antrea-lab runs a Kubernetes lab on one machine: a real control
// plane and simulated nodes with Open vSwitch, for trying, testing and
// benchmarking the CNI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ovs-cni/antrea/pkg/lab/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx)
	stop()
	os.Exit(code)
}
