package client_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver/cniservertest"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// BenchmarkCNIAddRoundTrip measures what the plugin and gRPC add on top of
// the configurator's work (zero here): "exec" is the whole path a runtime
// pays (fork/exec of antrea-cni, config parsing, dial, ADD on the server,
// fake configurator, result conversion and printing); "grpc" is the same ADD
// from an in-process client on a kept connection; "exec-version" is the bare
// cost of starting the binary (CNI_COMMAND=VERSION, no agent).
func BenchmarkCNIAddRoundTrip(b *testing.B) {
	sock := cniservertest.Serve(b, &cniservertest.Fake{}, cniserver.Config{})
	conf := config(b, "1.0.0", sock, nil)

	b.Run("exec", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			out := execPlugin(b, podInvocation("ADD", fmt.Sprintf("exec-%d", i), conf))
			if out.exitCode != 0 {
				b.Fatalf("ADD failed: %+v", out.cniErr)
			}
		}
	})

	b.Run("grpc", func(b *testing.B) {
		conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(b, err)
		defer func() { _ = conn.Close() }()
		c := cniv1.NewCniClient(conn)
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("grpc-%d", i)
			resp, err := c.CmdAdd(context.Background(), &cniv1.CmdRequest{CmdArgs: &cniv1.CmdArgs{
				Command: "ADD", ContainerId: id, Netns: "/var/run/netns/" + id, Ifname: "eth0",
				Args: podArgs, NetworkConfig: conf}})
			if err != nil || resp.Error != nil {
				b.Fatalf("ADD failed: %v %v", err, resp.GetError())
			}
		}
	})

	b.Run("exec-version", func(b *testing.B) {
		for b.Loop() {
			if out := execPlugin(b, invocation{command: "VERSION"}); out.exitCode != 0 {
				b.Fatalf("VERSION failed: %s", out.stdout)
			}
		}
	})
}
