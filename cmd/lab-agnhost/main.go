// Command lab-agnhost is the server the lab kubelet runs for containers that
// are not lab binaries: it listens on the container's ports inside the pod's
// network namespace. It deliberately avoids client-go to start fast.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ovs-cni/antrea/pkg/lab/agnhost"
)

type ports []int

func (p *ports) String() string { return fmt.Sprint(*p) }
func (p *ports) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("port %q is not a number", s)
	}
	*p = append(*p, n)
	return nil
}

func main() {
	var cfg agnhost.Config
	var tcp, udp ports
	var podUID string
	flag.StringVar(&cfg.Netns, "netns", "", "network namespace path to listen in (empty: current)")
	flag.StringVar(&cfg.Name, "name", "", "pod name, answered by default")
	flag.StringVar(&podUID, "pod-uid", "", "pod UID (identifies the process)")
	flag.Var(&tcp, "tcp", "TCP port to serve HTTP on (repeatable)")
	flag.Var(&udp, "udp", "UDP port to serve on (repeatable)")
	flag.Parse()
	cfg.TCP, cfg.UDP = tcp, udp
	srv, err := agnhost.Listen(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab-agnhost: pod %s: %v\n", cfg.Name, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "lab-agnhost: %v\n", err)
		os.Exit(1)
	}
}
