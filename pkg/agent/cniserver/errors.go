package cniserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// Error is an error with a CNI code, returned by a PodConfigurator to
// choose the code the plugin prints. Codes are in pkg/apis/cni/v1/codes.go.
type Error struct {
	// Code is a CNI spec code (< 100) or an antrea code (>= 100).
	Code uint
	// Msg is a short description.
	Msg string
	// Details is optional extra information.
	Details string
	// Err is the cause, if any; it is reachable with errors.Is/As.
	Err error
}

// NewError returns an Error with the given code, message and details.
func NewError(code uint, msg, details string) *Error {
	return &Error{Code: code, Msg: msg, Details: details}
}

// Errorf returns an Error whose message is formatted as with fmt.Errorf;
// an error wrapped with %w becomes its cause.
func Errorf(code uint, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// UnknownContainerError reports that the container is not known to the
// agent. The plugin turns it into success for DEL.
func UnknownContainerError(containerID string) *Error {
	return NewError(cniv1.CodeUnknownContainer, fmt.Sprintf("unknown container %q", containerID), "")
}

// TryAgainLaterError reports a transient condition; the runtime retries.
func TryAgainLaterError(msg string) *Error {
	return NewError(cniv1.CodeTryAgainLater, msg, "")
}

// Error implements error.
func (e *Error) Error() string {
	if e.Details == "" {
		return e.Msg
	}
	return e.Msg + "; " + e.Details
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// toProto converts err, returned by the configurator for command, to the
// wire error: an *Error or *types.Error keeps its code; a deadline becomes
// CodeOperationTimeout; anything else (or a code of 0) the generic failure
// code of command.
func toProto(command string, err error) *cniv1.Error {
	code := cniv1.CodeAgentInternal
	if command == CmdStatus {
		code = cniv1.CodePluginNotAvailable
	}
	var own *Error
	var spec *types.Error
	switch {
	case errors.As(err, &own) && own.Code != 0:
		return &cniv1.Error{Code: uint32(own.Code), Msg: own.Msg, Details: own.Details}
	case errors.As(err, &spec) && spec.Code != 0:
		return &cniv1.Error{Code: uint32(spec.Code), Msg: spec.Msg, Details: spec.Details}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &cniv1.Error{Code: uint32(cniv1.CodeOperationTimeout), Msg: fmt.Sprintf("%s timed out in the agent", command), Details: err.Error()}
	}
	return &cniv1.Error{Code: uint32(code), Msg: fmt.Sprintf("%s failed in the agent", command), Details: err.Error()}
}
