package cniserver_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver/cniservertest"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1;K8S_POD_INFRA_CONTAINER_ID=ctr1"

// startServer serves fake on a real socket and returns a client for it.
func startServer(t *testing.T, fake cniserver.PodConfigurator, cfg cniserver.Config) cniv1.CniClient {
	t.Helper()
	return startClient(t, cniservertest.Serve(t, fake, cfg))
}

// netConf returns a network config of version with extra fields merged in.
func netConf(t testing.TB, version string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": version, "name": "antrea", "type": "antrea-cni",
		"ipam": map[string]any{"type": "host-local", "subnet": "10.10.0.0/16"}}
	for k, v := range extra {
		m[k] = v
	}
	data, err := json.Marshal(m)
	require.NoError(t, err)
	return data
}

// podCmdArgs returns the CmdArgs of a pod command on containerID.
func podCmdArgs(command, containerID string, conf []byte) *cniv1.CmdArgs {
	return &cniv1.CmdArgs{Command: command, ContainerId: containerID, Netns: "/var/run/netns/" + containerID,
		Ifname: "eth0", Args: podArgs, Path: "/opt/cni/bin", NetworkConfig: conf}
}

// call sends args to the server method of its command.
func call(t testing.TB, c cniv1.CniClient, args *cniv1.CmdArgs) *cniv1.CmdResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rpc := map[string]func(context.Context, *cniv1.CmdRequest, ...grpc.CallOption) (*cniv1.CmdResponse, error){
		cniserver.CmdAdd: c.CmdAdd, cniserver.CmdCheck: c.CmdCheck, cniserver.CmdDel: c.CmdDel,
		cniserver.CmdGC: c.CmdGC, cniserver.CmdStatus: c.CmdStatus,
	}[args.Command]
	resp, err := rpc(ctx, &cniv1.CmdRequest{CmdArgs: args})
	require.NoError(t, err)
	return resp
}

// code returns the error code of resp, 0 for success.
func code(resp *cniv1.CmdResponse) uint {
	return uint(resp.GetError().GetCode())
}

// startClient dials a socket served elsewhere in the test.
func startClient(t *testing.T, path string) cniv1.CniClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return cniv1.NewCniClient(conn)
}

// makeDeadSocket leaves a socket file at path that nobody listens on.
func makeDeadSocket(t *testing.T, path string) {
	t.Helper()
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	lis.SetUnlinkOnClose(false)
	require.NoError(t, lis.Close())
	_, err = os.Stat(path)
	require.NoError(t, err)
}
