package cniserver_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver/cniservertest"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// TestBadRequests checks the CNI code and message of invalid requests; none
// reaches the configurator.
func TestBadRequests(t *testing.T) {
	fake := &cniservertest.Fake{}
	c := startServer(t, fake, cniserver.Config{})
	good := netConf(t, "1.0.0", nil)
	tests := []struct {
		name     string
		args     *cniv1.CmdArgs
		edit     func(*cniv1.CmdArgs)
		wantCode uint
		wantMsg  string
	}{
		{"missing netns on ADD", podCmdArgs(cniserver.CmdAdd, "c1", good), func(a *cniv1.CmdArgs) { a.Netns = "" },
			cniv1.CodeInvalidEnvironmentVariables, "CNI_NETNS is required for ADD"},
		{"missing netns on CHECK", podCmdArgs(cniserver.CmdCheck, "c1", good), func(a *cniv1.CmdArgs) { a.Netns = "" },
			cniv1.CodeInvalidEnvironmentVariables, "CNI_NETNS is required for CHECK"},
		{"unknown cniVersion", podCmdArgs(cniserver.CmdAdd, "c1", netConf(t, "9.9.9", nil)), nil,
			cniv1.CodeIncompatibleCNIVersion, `unsupported cniVersion "9.9.9"`},
		{"missing cniVersion", podCmdArgs(cniserver.CmdAdd, "c1", []byte(`{"name":"n"}`)), nil,
			cniv1.CodeIncompatibleCNIVersion, "cniVersion is required"},
		{"malformed JSON", podCmdArgs(cniserver.CmdAdd, "c1", []byte(`{"cniVersion":"1.0.0",`)), nil,
			cniv1.CodeDecodingFailure, "network config is not valid JSON"},
		{"missing name", podCmdArgs(cniserver.CmdAdd, "c1", []byte(`{"cniVersion":"1.0.0"}`)), nil,
			cniv1.CodeInvalidNetworkConfig, "name is required"},
		{"missing K8S_POD_NAME", podCmdArgs(cniserver.CmdAdd, "c1", good),
			func(a *cniv1.CmdArgs) { a.Args = "K8S_POD_NAMESPACE=default" },
			cniv1.CodeInvalidEnvironmentVariables, "CNI_ARGS: K8S_POD_NAME is required for ADD"},
		{"missing K8S_POD_NAMESPACE", podCmdArgs(cniserver.CmdAdd, "c1", good),
			func(a *cniv1.CmdArgs) { a.Args = "K8S_POD_NAME=web" },
			cniv1.CodeInvalidEnvironmentVariables, "CNI_ARGS: K8S_POD_NAMESPACE is required for ADD"},
		{"malformed CNI_ARGS", podCmdArgs(cniserver.CmdAdd, "c1", good),
			func(a *cniv1.CmdArgs) { a.Args = "K8S_POD_NAME=web;garbage" },
			cniv1.CodeInvalidEnvironmentVariables, `CNI_ARGS: invalid pair "garbage"`},
		{"missing container ID", podCmdArgs(cniserver.CmdDel, "", good), nil,
			cniv1.CodeInvalidEnvironmentVariables, "CNI_CONTAINERID is required"},
		{"invalid container ID", podCmdArgs(cniserver.CmdAdd, "bad id", good), nil,
			cniv1.CodeInvalidEnvironmentVariables, "CNI_CONTAINERID: invalid characters"},
		{"missing ifname", podCmdArgs(cniserver.CmdAdd, "c1", good), func(a *cniv1.CmdArgs) { a.Ifname = "" },
			cniv1.CodeInvalidEnvironmentVariables, "CNI_IFNAME: interface name is empty"},
		{"ifname too long", podCmdArgs(cniserver.CmdAdd, "c1", good), func(a *cniv1.CmdArgs) { a.Ifname = "eth0123456789abcdef" },
			cniv1.CodeInvalidEnvironmentVariables, "CNI_IFNAME: interface name is too long"},
		{"CHECK without prevResult", podCmdArgs(cniserver.CmdCheck, "c1", good), nil,
			cniv1.CodeInvalidNetworkConfig, "prevResult is required for CHECK"},
		{"CHECK with bad prevResult", podCmdArgs(cniserver.CmdCheck, "c1",
			netConf(t, "1.0.0", map[string]any{"prevResult": map[string]any{"ips": "nope"}})), nil,
			cniv1.CodeDecodingFailure, "prevResult is not a valid result"},
		{"GC attachment without ifname", &cniv1.CmdArgs{Command: cniserver.CmdGC, NetworkConfig: netConf(t, "1.1.0",
			map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": "c1"}}})}, nil,
			cniv1.CodeInvalidNetworkConfig, "cni.dev/valid-attachments[0]: containerID and ifname are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				tt.edit(tt.args)
			}
			resp := call(t, c, tt.args)
			require.NotNil(t, resp.Error)
			assert.Equal(t, tt.wantCode, code(resp), "msg %q", resp.Error.Msg)
			assert.Contains(t, resp.Error.Msg, tt.wantMsg)
			assert.Empty(t, resp.CniResult)
		})
	}
	assert.Empty(t, fake.Requests(), "no invalid request reaches the configurator")
}

// TestConfiguratorErrors checks how the configurator's errors become codes.
func TestConfiguratorErrors(t *testing.T) {
	tests := []struct {
		name       string
		command    string
		err        error
		statusErr  error
		wantCode   uint
		wantMsg    string
		wantDetail string
	}{
		{"own error passes through", cniserver.CmdAdd, cniserver.NewError(cniv1.CodeIPAMFailure, "no address left", "pool 10.10.0.0/16"),
			nil, cniv1.CodeIPAMFailure, "no address left", "pool 10.10.0.0/16"},
		{"wrapped own error", cniserver.CmdDel, fmt.Errorf("deleting: %w", cniserver.Errorf(cniv1.CodeOVSFailure, "port: %w", errors.New("ovsdb down"))),
			nil, cniv1.CodeOVSFailure, "port: ovsdb down", ""},
		{"spec error passes through", cniserver.CmdCheck, types.NewError(types.ErrInvalidNetNS, "netns gone", ""),
			nil, cniv1.CodeInvalidNetNS, "netns gone", ""},
		{"plain error is agent internal", cniserver.CmdAdd, errors.New("boom"),
			nil, cniv1.CodeAgentInternal, "ADD failed in the agent", "boom"},
		{"zero code is agent internal", cniserver.CmdAdd, cniserver.NewError(0, "zero", ""),
			nil, cniv1.CodeAgentInternal, "ADD failed in the agent", "zero"},
		{"deadline is operation timeout", cniserver.CmdDel, fmt.Errorf("ovs: %w", context.DeadlineExceeded),
			nil, cniv1.CodeOperationTimeout, "DEL timed out in the agent", "deadline exceeded"},
		{"plain status error is plugin not available", cniserver.CmdStatus, nil, errors.New("ovs not ready"),
			cniv1.CodePluginNotAvailable, "STATUS failed in the agent", "ovs not ready"},
		{"status code passes through", cniserver.CmdStatus, nil, cniserver.NewError(cniv1.CodeLimitedConnectivity, "no tunnel", ""),
			cniv1.CodeLimitedConnectivity, "no tunnel", ""},
		{"GC error", cniserver.CmdGC, errors.New("list ports"),
			nil, cniv1.CodeAgentInternal, "GC failed in the agent", "list ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &cniservertest.Fake{Err: map[string]error{tt.command: tt.err}, StatusErr: tt.statusErr}
			c := startServer(t, fake, cniserver.Config{})
			conf := netConf(t, "1.1.0", map[string]any{"prevResult": map[string]any{"cniVersion": "1.1.0"}})
			args := podCmdArgs(tt.command, "c1", conf)
			if tt.command == cniserver.CmdGC || tt.command == cniserver.CmdStatus {
				args = &cniv1.CmdArgs{Command: tt.command, NetworkConfig: conf}
			}
			resp := call(t, c, args)
			require.NotNil(t, resp.Error)
			assert.Equal(t, tt.wantCode, code(resp))
			assert.Equal(t, tt.wantMsg, resp.Error.Msg)
			assert.Contains(t, resp.Error.Details, tt.wantDetail)
		})
	}
}

// misbehaving is a configurator with broken ADDs.
type misbehaving struct {
	cniservertest.Fake
	panics bool
}

func (m *misbehaving) Add(context.Context, cniserver.PodRequest) (*current.Result, error) {
	if m.panics {
		panic("nil map")
	}
	return nil, nil
}

func TestMisbehavingConfigurator(t *testing.T) {
	tests := []struct {
		name    string
		panics  bool
		wantMsg string
	}{
		{"nil result", false, "ADD failed in the agent: the configurator returned no result"},
		{"panic", true, "ADD failed in the agent: panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startServer(t, &misbehaving{panics: tt.panics}, cniserver.Config{})
			resp := call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", netConf(t, "1.0.0", nil)))
			assert.Equal(t, cniv1.CodeAgentInternal, code(resp))
			assert.Equal(t, tt.wantMsg, resp.Error.GetMsg())
			// The server still serves.
			resp = call(t, c, podCmdArgs(cniserver.CmdDel, "c1", netConf(t, "1.0.0", nil)))
			assert.Nil(t, resp.Error)
		})
	}
}
