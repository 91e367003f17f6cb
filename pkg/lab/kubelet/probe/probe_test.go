package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestTrackerThresholds(t *testing.T) {
	tests := []struct {
		name     string
		success  int
		failure  int
		initial  bool
		attempts []bool
		want     []bool // result after each attempt
		changes  int
	}{
		{"readiness needs 2 successes", 2, 3, false, []bool{true, false, true, true}, []bool{false, false, false, true}, 1},
		{"liveness fails after 3", 1, 3, true, []bool{false, false, true, false, false, false}, []bool{true, true, true, true, true, false}, 1},
		{"flaps with threshold 1", 1, 1, false, []bool{true, false, true}, []bool{true, false, true}, 3},
		{"defaults", 0, 0, true, []bool{false, false, false}, []bool{true, true, false}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SettingsOf(&corev1.Probe{SuccessThreshold: int32(tt.success), FailureThreshold: int32(tt.failure)})
			tr := NewTracker(s, tt.initial)
			changes := 0
			for i, ok := range tt.attempts {
				r, changed := tr.Observe(ok)
				if changed {
					changes++
				}
				assert.Equal(t, tt.want[i], r, "attempt %d", i)
			}
			assert.Equal(t, tt.changes, changes)
		})
	}
}

func TestFailureStreak(t *testing.T) {
	tr := NewTracker(SettingsOf(&corev1.Probe{FailureThreshold: 2}), false)
	tr.Observe(false)
	assert.False(t, tr.FailureStreakReached())
	tr.Observe(false)
	assert.True(t, tr.FailureStreakReached())
	tr.Observe(false)
	assert.False(t, tr.FailureStreakReached(), "reported once per streak")
}

func TestSettingsDefaults(t *testing.T) {
	s := SettingsOf(&corev1.Probe{InitialDelaySeconds: 5})
	assert.Equal(t, Settings{InitialDelay: 5 * time.Second, Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}, s)
}

func TestResolvePort(t *testing.T) {
	ports := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	tests := []struct {
		in      intstr.IntOrString
		want    int
		wantErr string
	}{
		{intstr.FromInt32(80), 80, ""},
		{intstr.FromString("http"), 8080, ""},
		{intstr.FromString("8081"), 8081, ""},
		{intstr.FromString("metrics"), 0, `probe port "metrics": no container port of that name`},
		{intstr.FromInt32(70000), 0, "out of range"},
	}
	for _, tt := range tests {
		got, err := ResolvePort(tt.in, ports)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
}

func hostPort(t *testing.T, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return h, n
}

func TestNetChecker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.Header.Get("X-Probe") != "" {
			w.Header().Set("X-Seen", "1")
		}
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.Listener.Addr().String())
	// A self-signed certificate, as antrea-controller's: not verified.
	tlsSrv := httptest.NewTLSServer(srv.Config.Handler)
	defer tlsSrv.Close()
	_, tlsPort := hostPort(t, tlsSrv.Listener.Addr().String())
	target := Target{PodIP: host, Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	var execNetns string
	c := NetChecker{Exec: func(_ context.Context, netns string, cmd []string) error {
		execNetns = netns
		if cmd[0] == "false" {
			return errors.New("exit status 1")
		}
		return nil
	}}
	tests := []struct {
		name    string
		handler corev1.ProbeHandler
		wantErr bool
	}{
		{"tcp ok", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("web")}}, false},
		{"tcp closed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(1)}}, true},
		{"http ok", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}}, false},
		{"http 500", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/bad", Port: intstr.FromInt32(int32(port))}}, true},
		{"https to a plain http server", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Port: intstr.FromInt32(int32(port))}}, true},
		{"https ok", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/healthz", Port: intstr.FromInt32(int32(tlsPort))}}, false},
		{"https 500", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/bad", Port: intstr.FromInt32(int32(tlsPort))}}, true},
		{"unknown scheme", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: "FTP", Port: intstr.FromInt32(int32(port))}}, true},
		{"exec ok", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, false},
		{"exec fails", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}, true},
		{"no handler", corev1.ProbeHandler{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Check(context.Background(), &corev1.Probe{ProbeHandler: tt.handler}, target)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
	assert.Equal(t, "", execNetns)

	// In a container: the command line comes from InContainer, and the
	// namespace is its business.
	var ran []string
	c = NetChecker{Exec: func(_ context.Context, netns string, cmd []string) error {
		execNetns, ran = netns, cmd
		return nil
	}}
	target.Netns = "/var/run/netns/pod"
	target.InContainer = func(cmd []string) []string { return append([]string{"run-container", "--"}, cmd...) }
	require.NoError(t, c.Check(context.Background(), &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"health"}}}}, target))
	assert.Equal(t, []string{"run-container", "--", "health"}, ran)
	assert.Equal(t, "", execNetns)
}

type countingChecker struct {
	ok    atomic.Bool
	calls atomic.Int32
}

func (c *countingChecker) Check(context.Context, *corev1.Probe, Target) error {
	c.calls.Add(1)
	if c.ok.Load() {
		return nil
	}
	return errors.New("refused")
}

func TestWorkerLivenessThreshold(t *testing.T) {
	ch := &countingChecker{}
	fired := make(chan int32, 1)
	w := &Worker{Name: "liveness", Probe: &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 3}, Checker: ch, Initial: true,
		OnFailureThreshold: func() { fired <- ch.calls.Load() }, tick: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	select {
	case n := <-fired:
		assert.Equal(t, int32(3), n, "fires on the third consecutive failure")
	case <-time.After(5 * time.Second):
		t.Fatal("liveness threshold never reached")
	}
}

func TestWorkerStartupStopsOnSuccess(t *testing.T) {
	ch := &countingChecker{}
	ch.ok.Store(true)
	var changes atomic.Int32
	w := &Worker{Name: "startup", Probe: &corev1.Probe{PeriodSeconds: 1, InitialDelaySeconds: 1}, Checker: ch, StopOnSuccess: true,
		OnChange: func(bool) { changes.Add(1) }, tick: 5 * time.Millisecond}
	done := make(chan struct{})
	go func() { w.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("startup worker did not stop after success")
	}
	assert.Equal(t, int32(1), ch.calls.Load())
	assert.Equal(t, int32(1), changes.Load())
}
