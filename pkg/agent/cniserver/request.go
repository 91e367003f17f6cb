package cniserver

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// CNI_ARGS keys the server understands.
const (
	argPodNamespace     = "K8S_POD_NAMESPACE"
	argPodName          = "K8S_POD_NAME"
	argPodUID           = "K8S_POD_UID"
	argInfraContainerID = "K8S_POD_INFRA_CONTAINER_ID"
)

// minVersion is the lowest cniVersion that allows each command.
var minVersion = map[string]string{
	CmdAdd:    "0.3.1",
	CmdDel:    "0.3.1",
	CmdCheck:  "0.4.0",
	CmdGC:     "1.1.0",
	CmdStatus: "1.1.0",
}

// parsedRequest is a validated request: the PodRequest for ADD, CHECK and
// DEL (and for the common fields of GC and STATUS), the attachments for GC.
type parsedRequest struct {
	pod   PodRequest
	valid []Attachment
}

// parseRequest validates args for command and builds the request the
// configurator sees. Every failure is an *Error naming the offending field.
func parseRequest(command string, args *cniv1.CmdArgs) (*parsedRequest, *Error) {
	if args == nil {
		return nil, NewError(cniv1.CodeAgentProtocol, "request has no cmd_args", "")
	}
	if args.Command != "" && args.Command != command {
		return nil, NewError(cniv1.CodeInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_COMMAND %q does not match the called method %s", args.Command, command), "")
	}
	var conf types.PluginConf
	if err := json.Unmarshal(args.NetworkConfig, &conf); err != nil {
		return nil, NewError(cniv1.CodeDecodingFailure, "network config is not valid JSON", err.Error())
	}
	if err := checkVersion(command, conf.CNIVersion); err != nil {
		return nil, err
	}
	if conf.Name == "" {
		return nil, NewError(cniv1.CodeInvalidNetworkConfig, "network config: name is required", "")
	}
	if err := utils.ValidateNetworkName(conf.Name); err != nil {
		return nil, NewError(cniv1.CodeInvalidNetworkConfig, "network config: name: "+err.Msg, err.Details)
	}
	pr := &parsedRequest{pod: PodRequest{
		Command:     command,
		CNIVersion:  conf.CNIVersion,
		NetworkName: conf.Name,
		NetConf:     args.NetworkConfig,
		Path:        filepath.SplitList(args.Path),
	}}
	switch command {
	case CmdGC:
		valid, err := attachments(conf.ValidAttachments)
		if err != nil {
			return nil, err
		}
		pr.valid = valid
		return pr, nil
	case CmdStatus:
		return pr, nil
	}
	if err := fillPod(command, args, &pr.pod); err != nil {
		return nil, err
	}
	prev, err := prevResult(command, &conf)
	if err != nil {
		return nil, err
	}
	pr.pod.PrevResult = prev
	return pr, nil
}

// checkVersion accepts only cniv1.SupportedVersions, and only from the version
// that introduced command.
func checkVersion(command, v string) *Error {
	if v == "" {
		return NewError(cniv1.CodeIncompatibleCNIVersion, "network config: cniVersion is required",
			"supported: "+strings.Join(cniv1.SupportedVersions, ", "))
	}
	if !slices.Contains(cniv1.SupportedVersions, v) {
		return NewError(cniv1.CodeIncompatibleCNIVersion, fmt.Sprintf("network config: unsupported cniVersion %q", v),
			"supported: "+strings.Join(cniv1.SupportedVersions, ", "))
	}
	ok, err := version.GreaterThanOrEqualTo(v, minVersion[command])
	if err != nil {
		return NewError(cniv1.CodeIncompatibleCNIVersion, fmt.Sprintf("network config: cniVersion %q", v), err.Error())
	}
	if !ok {
		return NewError(cniv1.CodeIncompatibleCNIVersion,
			fmt.Sprintf("network config: cniVersion %q does not allow %s (needs %s or later)", v, command, minVersion[command]), "")
	}
	return nil
}

// fillPod validates the CNI_* variables of ADD, CHECK and DEL into pod.
func fillPod(command string, args *cniv1.CmdArgs, pod *PodRequest) *Error {
	if args.ContainerId == "" {
		return NewError(cniv1.CodeInvalidEnvironmentVariables, "CNI_CONTAINERID is required", "")
	}
	if err := utils.ValidateContainerID(args.ContainerId); err != nil {
		return NewError(cniv1.CodeInvalidEnvironmentVariables, "CNI_CONTAINERID: "+err.Msg, err.Details)
	}
	if err := utils.ValidateInterfaceName(args.Ifname); err != nil {
		return NewError(cniv1.CodeInvalidEnvironmentVariables, "CNI_IFNAME: "+err.Msg, err.Details)
	}
	if args.Netns == "" && command != CmdDel {
		return NewError(cniv1.CodeInvalidEnvironmentVariables, "CNI_NETNS is required for "+command, "")
	}
	kv, err := parseCNIArgs(args.Args)
	if err != nil {
		return err
	}
	pod.ContainerID = args.ContainerId
	pod.Netns = args.Netns
	pod.IfName = args.Ifname
	pod.Args = kv
	pod.PodNamespace = kv[argPodNamespace]
	pod.PodName = kv[argPodName]
	pod.PodUID = kv[argPodUID]
	pod.InfraContainerID = kv[argInfraContainerID]
	if command == CmdDel {
		return nil
	}
	for _, key := range []string{argPodNamespace, argPodName} {
		if kv[key] == "" {
			return NewError(cniv1.CodeInvalidEnvironmentVariables,
				fmt.Sprintf("CNI_ARGS: %s is required for %s", key, command), "")
		}
	}
	return nil
}

// parseCNIArgs splits CNI_ARGS ("K1=V1;K2=V2") into a map.
func parseCNIArgs(s string) (map[string]string, *Error) {
	kv := map[string]string{}
	if s == "" {
		return kv, nil
	}
	for _, pair := range strings.Split(s, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, NewError(cniv1.CodeInvalidEnvironmentVariables,
				fmt.Sprintf("CNI_ARGS: invalid pair %q, want KEY=VALUE", pair), "")
		}
		kv[k] = v
	}
	return kv, nil
}

// prevResult parses the config's prevResult into the current types. CHECK
// requires one.
func prevResult(command string, conf *types.PluginConf) (*current.Result, *Error) {
	if conf.RawPrevResult == nil {
		if command == CmdCheck {
			return nil, NewError(cniv1.CodeInvalidNetworkConfig, "network config: prevResult is required for CHECK", "")
		}
		return nil, nil
	}
	if err := version.ParsePrevResult(conf); err != nil {
		return nil, NewError(cniv1.CodeDecodingFailure, "network config: prevResult is not a valid result", err.Error())
	}
	res, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return nil, NewError(cniv1.CodeDecodingFailure, "network config: prevResult cannot be converted", err.Error())
	}
	return res, nil
}

// attachments validates GC's cni.dev/valid-attachments.
func attachments(in []types.GCAttachment) ([]Attachment, *Error) {
	out := make([]Attachment, 0, len(in))
	for i, a := range in {
		if a.ContainerID == "" || a.IfName == "" {
			return nil, NewError(cniv1.CodeInvalidNetworkConfig,
				fmt.Sprintf("network config: cni.dev/valid-attachments[%d]: containerID and ifname are required", i), "")
		}
		out = append(out, Attachment{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	return out, nil
}
