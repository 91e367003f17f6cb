// Package cniservertest provides a fake cniserver.PodConfigurator and a
// helper that serves it on a real unix socket, for tests of the CNI server,
// the plugin and their users.
package cniservertest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
)

// Fake is an in-memory PodConfigurator. It remembers attachments, answers
// repeated ADDs from state, and records calls and their concurrency. Set
// the exported fields before use; they are read under its lock.
type Fake struct {
	// Delay is added to every ADD, CHECK and DEL.
	Delay time.Duration
	// Err, if it has an entry for a command, is returned by that command.
	Err map[string]error
	// UnknownOnDel makes DEL of a container that was never added return
	// cniserver.UnknownContainerError instead of success.
	UnknownOnDel bool
	// StatusErr is returned by Status.
	StatusErr error

	mu          sync.Mutex
	attachments map[cniserver.Attachment]*current.Result
	requests    []cniserver.PodRequest
	gcValid     [][]cniserver.Attachment
	inFlight    map[string]int
	inFlightAll int
	maxPerID    int
	maxAll      int
	nextIP      int
}

var _ cniserver.PodConfigurator = (*Fake)(nil)

// Add implements cniserver.PodConfigurator.
func (f *Fake) Add(ctx context.Context, req cniserver.PodRequest) (*current.Result, error) {
	done, err := f.begin(ctx, req)
	defer done()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := cniserver.Attachment{ContainerID: req.ContainerID, IfName: req.IfName}
	if res, ok := f.attachments[key]; ok {
		return res, nil
	}
	f.nextIP++
	res := Result(req, f.nextIP)
	if f.attachments == nil {
		f.attachments = map[cniserver.Attachment]*current.Result{}
	}
	f.attachments[key] = res
	return res, nil
}

// Check implements cniserver.PodConfigurator.
func (f *Fake) Check(ctx context.Context, req cniserver.PodRequest) error {
	done, err := f.begin(ctx, req)
	defer done()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.attachments[cniserver.Attachment{ContainerID: req.ContainerID, IfName: req.IfName}]; !ok {
		return cniserver.UnknownContainerError(req.ContainerID)
	}
	return nil
}

// Del implements cniserver.PodConfigurator.
func (f *Fake) Del(ctx context.Context, req cniserver.PodRequest) error {
	done, err := f.begin(ctx, req)
	defer done()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := cniserver.Attachment{ContainerID: req.ContainerID, IfName: req.IfName}
	if _, ok := f.attachments[key]; !ok && f.UnknownOnDel {
		return cniserver.UnknownContainerError(req.ContainerID)
	}
	delete(f.attachments, key)
	return nil
}

// GC implements cniserver.PodConfigurator.
func (f *Fake) GC(_ context.Context, valid []cniserver.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gcValid = append(f.gcValid, valid)
	if err := f.Err[cniserver.CmdGC]; err != nil {
		return err
	}
	keep := map[cniserver.Attachment]bool{}
	for _, a := range valid {
		keep[a] = true
	}
	for a := range f.attachments {
		if !keep[a] {
			delete(f.attachments, a)
		}
	}
	return nil
}

// Status implements cniserver.PodConfigurator.
func (f *Fake) Status(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.StatusErr
}

// begin records req, tracks concurrency, sleeps Delay and returns the
// configured error; done must be called when the operation ends.
func (f *Fake) begin(ctx context.Context, req cniserver.PodRequest) (done func(), err error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	if f.inFlight == nil {
		f.inFlight = map[string]int{}
	}
	f.inFlight[req.ContainerID]++
	f.inFlightAll++
	f.maxPerID = max(f.maxPerID, f.inFlight[req.ContainerID])
	f.maxAll = max(f.maxAll, f.inFlightAll)
	delay, err := f.Delay, f.Err[req.Command]
	f.mu.Unlock()
	done = func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.inFlight[req.ContainerID]--
		f.inFlightAll--
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return done, fmt.Errorf("fake %s: %w", req.Command, ctx.Err())
		}
	}
	return done, err
}

// Requests returns the requests ADD, CHECK and DEL received, in order.
func (f *Fake) Requests() []cniserver.PodRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cniserver.PodRequest(nil), f.requests...)
}

// GCCalls returns the valid attachments of every GC call.
func (f *Fake) GCCalls() [][]cniserver.Attachment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]cniserver.Attachment(nil), f.gcValid...)
}

// MaxConcurrency returns the highest number of operations seen in flight
// at once on one container and overall.
func (f *Fake) MaxConcurrency() (perContainer, overall int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxPerID, f.maxAll
}

// Attached reports whether the fake holds an attachment.
func (f *Fake) Attached(a cniserver.Attachment) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.attachments[a]
	return ok
}

// Result builds the result the fake returns for req: one interface in the
// sandbox with the n-th address of 10.10.0.0/16, and a default route.
func Result(req cniserver.PodRequest, n int) *current.Result {
	idx := 0
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{
			Name:    req.IfName,
			Mac:     fmt.Sprintf("0a:58:0a:0a:%02x:%02x", (n>>8)&0xff, n&0xff),
			Sandbox: req.Netns,
		}},
		IPs: []*current.IPConfig{{
			Interface: &idx,
			Address:   net.IPNet{IP: net.IPv4(10, 10, byte(n>>8), byte(n)), Mask: net.CIDRMask(16, 32)},
			Gateway:   net.IPv4(10, 10, 0, 1),
		}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, GW: net.IPv4(10, 10, 0, 1)}},
		DNS:    types.DNS{Nameservers: []string{"10.96.0.10"}},
	}
}
