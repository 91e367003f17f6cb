// Package probe tests reachability from inside a network namespace: one
// connection attempt (Probe) or every ordered pair of pods (Matrix), printed
// as the truth table the Kubernetes NetworkPolicy e2e suite prints.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

// Protocols Probe understands.
const (
	TCP = "tcp"
	UDP = "udp"
)

// Result of one probe.
type Result struct {
	Connected bool
	Reply     string // what the server answered, when it did
	Detail    string // why not connected
}

// Requests a probe can make of the lab's servers.
const (
	// RequestHostname asks the server for its name (the pod's name).
	RequestHostname = "hostname"
	// RequestClientIP asks the server for the client address it saw.
	RequestClientIP = "clientip"
	// RequestServerIP asks a TCP server for the address the connection
	// reached (after any DNAT).
	RequestServerIP = "serverip"
)

// Probe connects from the named namespace to addr and asks for the
// server's name. A refused or timed-out connection is a Result with
// Connected false; an error means the probe itself could not run (bad
// address, missing namespace).
func Probe(ctx context.Context, netns, protocol, addr string, timeout time.Duration) (Result, error) {
	return ProbeRequest(ctx, netns, protocol, addr, timeout, RequestHostname)
}

// ProbeRequest is Probe with the request to make: RequestHostname,
// RequestClientIP or (TCP only) RequestServerIP.
func ProbeRequest(ctx context.Context, netns, protocol, addr string, timeout time.Duration, request string) (Result, error) {
	switch {
	case request == RequestServerIP && protocol != TCP:
		return Result{}, fmt.Errorf("--request %s: only over tcp", request)
	case request != RequestHostname && request != RequestClientIP && request != RequestServerIP:
		return Result{}, fmt.Errorf("--request %q: must be %s, %s or %s", request, RequestHostname, RequestClientIP, RequestServerIP)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Result{}, fmt.Errorf("--to %q: want HOST:PORT: %w", addr, err)
	}
	if !netnsutil.Exists(netns) {
		return Result{}, fmt.Errorf("network namespace %q does not exist", netns)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch protocol {
	case TCP:
		return probeTCP(ctx, netns, addr, request)
	case UDP:
		return probeUDP(ctx, netns, addr, request)
	default:
		return Result{}, fmt.Errorf("--protocol %q: must be tcp or udp (this kernel has no SCTP sockets)", protocol)
	}
}

func probeTCP(ctx context.Context, netns, addr, request string) (Result, error) {
	var conn net.Conn
	err := netnsutil.Do(netns, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		conn = c
		return err
	})
	if err != nil {
		return notConnected(err)
	}
	defer conn.Close()
	// Ask the lab's servers who they are; any server that accepted the
	// connection counts as connected even if it says nothing.
	_ = conn.SetDeadline(deadline(ctx))
	host, _, _ := net.SplitHostPort(addr)
	path := "/"
	if request != RequestHostname {
		path = "/" + request
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host)
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	return Result{Connected: true, Reply: httpBody(string(buf[:n]))}, nil
}

func probeUDP(ctx context.Context, netns, addr, request string) (Result, error) {
	var conn net.Conn
	err := netnsutil.Do(netns, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", addr)
		conn = c
		return err
	})
	if err != nil {
		return notConnected(err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	// UDP may lose the first datagram (e.g. while a neighbour resolves):
	// resend until the deadline.
	for {
		if ctx.Err() != nil {
			return Result{Detail: "no UDP reply before the timeout"}, nil
		}
		if _, err := conn.Write([]byte(request)); err != nil {
			return notConnected(err)
		}
		_ = conn.SetReadDeadline(minTime(deadline(ctx), time.Now().Add(300*time.Millisecond)))
		n, err := conn.Read(buf)
		if err == nil {
			return Result{Connected: true, Reply: strings.TrimSpace(string(buf[:n]))}, nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return Result{Detail: "ICMP port unreachable"}, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return notConnected(err)
		}
	}
}

// notConnected turns network failures into a negative result and keeps
// real errors as errors.
func notConnected(err error) (Result, error) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Result{Detail: err.Error()}, nil
	}
	return Result{}, err
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Second)
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func httpBody(resp string) string {
	if i := strings.Index(resp, "\r\n\r\n"); i >= 0 {
		return strings.TrimSpace(resp[i+4:])
	}
	return strings.TrimSpace(resp)
}
