package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// About is printed by skel when the binary runs without CNI_COMMAND.
const About = "antrea-cni: forwards CNI requests to the antrea agent"

// VersionInfo returns the CNI spec versions the plugin supports.
func VersionInfo() version.PluginInfo {
	return version.PluginSupports(cniv1.SupportedVersions...)
}

// Plugin implements the CNI commands by forwarding them to the agent.
type Plugin struct {
	stdout io.Writer
}

// New returns a Plugin that prints results to stdout.
func New(stdout io.Writer) *Plugin {
	return &Plugin{stdout: stdout}
}

// Funcs returns the command functions for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Check: p.Check, Del: p.Del, GC: p.GC, Status: p.Status}
}

// Add forwards ADD and prints the agent's result.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, resp, err := p.call("ADD", args)
	if err != nil {
		return err
	}
	if _, err := version.NewResult(conf.CNIVersion, resp.CniResult); err != nil {
		return types.NewError(cniv1.CodeAgentProtocol,
			fmt.Sprintf("the agent's ADD result is not a valid %s result", conf.CNIVersion), err.Error())
	}
	if _, err := p.stdout.Write(resp.CniResult); err != nil {
		return types.NewError(cniv1.CodeIOFailure, "writing the result to stdout", err.Error())
	}
	return nil
}

// Check forwards CHECK.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	_, _, err := p.call("CHECK", args)
	return err
}

// Del forwards DEL. A container the agent does not know is success: there
// is nothing to delete.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	_, _, err := p.call("DEL", args)
	var e *types.Error
	if errors.As(err, &e) && e.Code == cniv1.CodeUnknownContainer {
		return nil
	}
	return err
}

// GC forwards GC.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	_, _, err := p.call("GC", args)
	return err
}

// Status forwards STATUS.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	_, _, err := p.call("STATUS", args)
	return err
}

// call sends command to the agent. Every error it returns is a
// *types.Error.
func (p *Plugin) call(command string, args *skel.CmdArgs) (*NetConf, *cniv1.CmdResponse, error) {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), conf.Timeout())
	defer cancel()
	conn, err := grpc.NewClient("unix://"+conf.CNISocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, types.NewError(cniv1.CodeInvalidNetworkConfig,
			fmt.Sprintf("network config: cniSocket %q is not usable", conf.CNISocket), err.Error())
	}
	defer func() { _ = conn.Close() }()
	client := cniv1.NewCniClient(conn)
	rpc := map[string]func(context.Context, *cniv1.CmdRequest, ...grpc.CallOption) (*cniv1.CmdResponse, error){
		"ADD": client.CmdAdd, "CHECK": client.CmdCheck, "DEL": client.CmdDel,
		"GC": client.CmdGC, "STATUS": client.CmdStatus,
	}[command]
	req := &cniv1.CmdRequest{CmdArgs: &cniv1.CmdArgs{
		Command:       command,
		ContainerId:   args.ContainerID,
		Netns:         args.Netns,
		Ifname:        args.IfName,
		Args:          args.Args,
		Path:          args.Path,
		NetworkConfig: args.StdinData,
	}}
	resp, err := rpc(ctx, req)
	if err != nil {
		return nil, nil, transportError(command, conf, err)
	}
	if e := resp.GetError(); e != nil {
		return nil, nil, types.NewError(uint(e.Code), e.Msg, e.Details)
	}
	if command == "ADD" && len(resp.CniResult) == 0 {
		return nil, nil, types.NewError(cniv1.CodeAgentProtocol, "the agent answered ADD without a result", "")
	}
	return conf, resp, nil
}

// transportError maps a gRPC failure to a CNI error: an agent that cannot
// be reached or does not answer in time is "try again later" (for STATUS,
// "plugin not available"); anything else is a protocol error.
func transportError(command string, conf *NetConf, err error) error {
	st := status.Convert(err)
	var msg string
	switch st.Code() {
	case codes.Unavailable:
		msg = fmt.Sprintf("antrea agent is not reachable on %s", conf.CNISocket)
	case codes.DeadlineExceeded:
		msg = fmt.Sprintf("antrea agent did not answer %s within %s", command, conf.Timeout())
	case codes.Canceled, codes.ResourceExhausted, codes.Aborted:
		msg = fmt.Sprintf("antrea agent did not complete %s", command)
	default:
		return types.NewError(cniv1.CodeAgentProtocol,
			fmt.Sprintf("unexpected answer from the antrea agent on %s", conf.CNISocket), err.Error())
	}
	code := cniv1.CodeTryAgainLater
	if command == "STATUS" {
		code = cniv1.CodePluginNotAvailable
	}
	return types.NewError(code, msg, strings.TrimSpace(st.Message()))
}
