// Package probe runs container probes (tcpSocket, httpGet, exec) from the
// node's network namespace against a pod and turns their raw results into
// probe outcomes with the Kubernetes success and failure thresholds.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Target is what a probe runs against.
type Target struct {
	PodIP string
	// Netns is the path of the pod's network namespace, "" for host network.
	Netns string
	Ports []corev1.ContainerPort
	// InContainer, when set, turns an exec probe's command into the
	// command line that runs it inside the container (its namespaces and
	// mounts), as a kubelet runs exec probes; the result runs as is.
	InContainer func(cmd []string) []string
}

// Execer runs a command inside a network namespace ("" means the caller's).
type Execer func(ctx context.Context, netns string, cmd []string) error

// Checker runs one probe attempt; nil means success.
type Checker interface {
	Check(ctx context.Context, p *corev1.Probe, t Target) error
}

// NetChecker is the Checker used by the kubelet.
type NetChecker struct {
	Exec Execer
}

// Check implements Checker.
func (c NetChecker) Check(ctx context.Context, p *corev1.Probe, t Target) error {
	switch {
	case p.TCPSocket != nil:
		port, err := ResolvePort(p.TCPSocket.Port, t.Ports)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = t.PodIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("tcp probe: %w", err)
		}
		return conn.Close()
	case p.HTTPGet != nil:
		return checkHTTP(ctx, p.HTTPGet, t)
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return errors.New("exec probe: field exec.command is empty")
		}
		if c.Exec == nil {
			return errors.New("exec probe: no executor configured")
		}
		if t.InContainer != nil {
			return c.Exec(ctx, "", t.InContainer(p.Exec.Command))
		}
		return c.Exec(ctx, t.Netns, p.Exec.Command)
	case p.GRPC != nil:
		return errors.New("grpc probes are not supported by the lab kubelet")
	}
	return errors.New("probe has no handler (tcpSocket, httpGet or exec)")
}

func checkHTTP(ctx context.Context, h *corev1.HTTPGetAction, t Target) error {
	scheme := "http"
	switch h.Scheme {
	case "", corev1.URISchemeHTTP:
	case corev1.URISchemeHTTPS:
		scheme = "https"
	default:
		return fmt.Errorf("http probe: scheme %s is not supported", h.Scheme)
	}
	port, err := ResolvePort(h.Port, t.Ports)
	if err != nil {
		return err
	}
	host := h.Host
	if host == "" {
		host = t.PodIP
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("http probe: build request for %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "kube-probe/lab")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := http.Client{
		// As the kubelet: HTTPS probes do not verify the certificate.
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // probes, as the kubelet's
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("http probe: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http probe: %s answered status %d", url, resp.StatusCode)
	}
	return nil
}

// ResolvePort turns a numeric or named port into a number; names resolve
// against the container's ports.
func ResolvePort(p intstr.IntOrString, ports []corev1.ContainerPort) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("probe port %d is out of range", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q: no container port of that name", p.StrVal)
}

// Settings are a probe's timing and thresholds with API defaults applied.
type Settings struct {
	InitialDelay     time.Duration
	Period           time.Duration
	Timeout          time.Duration
	SuccessThreshold int
	FailureThreshold int
}

// SettingsOf applies the API defaults to zero fields of p.
func SettingsOf(p *corev1.Probe) Settings {
	s := Settings{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           time.Duration(p.PeriodSeconds) * time.Second,
		Timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	if s.Period <= 0 {
		s.Period = 10 * time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	if s.SuccessThreshold <= 0 {
		s.SuccessThreshold = 1
	}
	if s.FailureThreshold <= 0 {
		s.FailureThreshold = 3
	}
	return s
}

// Tracker turns raw attempts into a probe result: the result flips to
// success after SuccessThreshold consecutive successes and to failure after
// FailureThreshold consecutive failures.
type Tracker struct {
	settings  Settings
	result    bool
	successes int
	failures  int
}

// NewTracker starts with the given result.
func NewTracker(s Settings, initial bool) *Tracker {
	return &Tracker{settings: s, result: initial}
}

// Result is the current outcome.
func (t *Tracker) Result() bool { return t.result }

// Observe records one attempt and reports the result and whether it changed.
func (t *Tracker) Observe(ok bool) (result, changed bool) {
	if ok {
		t.successes++
		t.failures = 0
		if !t.result && t.successes >= t.settings.SuccessThreshold {
			t.result = true
			return true, true
		}
		return t.result, false
	}
	t.failures++
	t.successes = 0
	if t.result && t.failures >= t.settings.FailureThreshold {
		t.result = false
		return false, true
	}
	return t.result, false
}

// FailureStreakReached reports whether the last attempt made the current
// run of failures reach FailureThreshold (true once per run).
func (t *Tracker) FailureStreakReached() bool {
	return t.failures == t.settings.FailureThreshold
}
