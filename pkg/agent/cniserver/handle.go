package cniserver

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// handle serves one request, logs and observes it. Failures are in the
// response, never a gRPC error.
func (s *Server) handle(ctx context.Context, command string, req *cniv1.CmdRequest) *cniv1.CmdResponse {
	start := time.Now()
	containerID := req.GetCmdArgs().GetContainerId()
	resp := s.serve(ctx, command, req)
	elapsed := time.Since(start)
	var code uint
	if e := resp.GetError(); e != nil {
		code = uint(e.Code)
		klog.InfoS("CNI request failed", "command", command, "container", containerID,
			"code", code, "msg", e.Msg, "details", e.Details, "duration", elapsed)
	} else {
		klog.V(2).InfoS("CNI request served", "command", command, "container", containerID, "duration", elapsed)
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(Observation{Command: command, ContainerID: containerID, Duration: elapsed, Code: code})
	}
	return resp
}

func (s *Server) serve(ctx context.Context, command string, req *cniv1.CmdRequest) *cniv1.CmdResponse {
	pr, perr := parseRequest(command, req.GetCmdArgs())
	if perr != nil {
		return errorResponse(command, perr)
	}
	var unlock func()
	var err error
	switch command {
	case CmdStatus:
		unlock = func() {}
	case CmdGC:
		unlock, err = s.locks.lockAll(ctx)
	default:
		unlock, err = s.locks.lockContainer(ctx, pr.pod.ContainerID)
	}
	if err != nil {
		return errorResponse(command, Errorf(cniv1.CodeTryAgainLater,
			"gave up waiting for another operation on container %q: %w", pr.pod.ContainerID, err))
	}
	defer unlock()

	// The operation outlives a plugin that gave up, so the retry finds it
	// done; it is bounded by OperationTimeout instead.
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.OperationTimeout)
	defer cancel()
	res, err := s.call(opCtx, command, pr)
	if err != nil {
		return errorResponse(command, err)
	}
	if command != CmdAdd {
		return &cniv1.CmdResponse{}
	}
	data, err := encodeResult(res, pr.pod.CNIVersion)
	if err != nil {
		return errorResponse(command, err)
	}
	return &cniv1.CmdResponse{CniResult: data}
}

// call runs the configurator method of command, turning a panic into an
// error so that one bad request cannot take the agent down.
func (s *Server) call(ctx context.Context, command string, pr *parsedRequest) (res *current.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			klog.ErrorS(nil, "PodConfigurator panicked", "command", command, "panic", r, "stack", string(debug.Stack()))
			err = NewError(cniv1.CodeAgentInternal, fmt.Sprintf("%s failed in the agent: panic", command), fmt.Sprint(r))
		}
	}()
	c := s.cfg.Configurator
	switch command {
	case CmdAdd:
		res, err = c.Add(ctx, pr.pod)
		if err == nil && res == nil {
			err = NewError(cniv1.CodeAgentInternal, "ADD failed in the agent: the configurator returned no result", "")
		}
	case CmdCheck:
		err = c.Check(ctx, pr.pod)
	case CmdDel:
		err = c.Del(ctx, pr.pod)
	case CmdGC:
		err = c.GC(ctx, pr.valid)
	case CmdStatus:
		err = c.Status(ctx)
	default:
		err = NewError(cniv1.CodeAgentProtocol, fmt.Sprintf("unknown command %q", command), "")
	}
	return res, err
}

// encodeResult converts res to version and marshals it, without modifying
// res.
func encodeResult(res *current.Result, version string) ([]byte, error) {
	cp := *res
	if cp.CNIVersion == "" {
		cp.CNIVersion = current.ImplementedSpecVersion
	}
	converted, err := cp.GetAsVersion(version)
	if err != nil {
		return nil, Errorf(cniv1.CodeAgentInternal, "converting the ADD result to cniVersion %s: %w", version, err)
	}
	data, err := json.Marshal(converted)
	if err != nil {
		return nil, Errorf(cniv1.CodeAgentInternal, "encoding the ADD result: %w", err)
	}
	return data, nil
}

func errorResponse(command string, err error) *cniv1.CmdResponse {
	return &cniv1.CmdResponse{Error: toProto(command, err)}
}
