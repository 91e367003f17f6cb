package netpol

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// logRecorder is a Reporter keeping the logs.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// spyProber wraps a prober, counts probes and concurrency, and can turn the
// first results upside down or fail some protocols.
type spyProber struct {
	inner       Prober
	calls       atomic.Int64
	running     atomic.Int64
	maxRunning  atomic.Int64
	invertFirst int64           // number of first probes whose result is inverted
	failProto   corev1.Protocol // probes on this protocol return an error
	self        atomic.Bool     // a probe from a pod to itself was made
}

func (s *spyProber) Probe(ctx context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error) {
	n := s.calls.Add(1)
	cur := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		old := s.maxRunning.Load()
		if cur <= old || s.maxRunning.CompareAndSwap(old, cur) {
			break
		}
	}
	time.Sleep(100 * time.Microsecond) // let workers overlap
	if from == to {
		s.self.Store(true)
	}
	if proto == s.failProto {
		return false, errors.New("no socket for this protocol")
	}
	ok, err := s.inner.Probe(ctx, from, to, ip, proto, port)
	if n <= s.invertFirst {
		ok = !ok
	}
	return ok, err
}

// tracerFunc adapts a function to Tracer.
type tracerFunc func(ctx context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error)

func (f tracerFunc) Trace(ctx context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error) {
	return f(ctx, from, to, ip, proto, port)
}

func caseNamed(t *testing.T, m *Model, name string) Case {
	t.Helper()
	for _, c := range append(Cases(m), ExtraCases(m)...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %s", name)
	return Case{}
}

func TestRunCaseReportsWrongTable(t *testing.T) {
	m := NewModel(Env{})
	cl := NewMemCluster(m)
	c := caseNamed(t, m, "default-deny-ingress")
	c.Steps[0].Probes[0].Want = c.Steps[0].Probes[0].Want.Clone().Set(m.Pod("y", "a"), m.Pod("x", "b"), true)
	spy := &spyProber{inner: cl}
	logs := &logRecorder{}

	err := RunCase(t.Context(), logs, m, cl, spy, c, Options{Attempts: 2, RetryDelay: time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "y/a -> x/b: want allowed, got blocked")
	assert.Equal(t, int64(2*72), spy.calls.Load(), "two full matrices without self probes")
	assert.False(t, spy.self.Load())
	assert.Contains(t, logs.String(), "*X*")
	assert.Empty(t, cl.World().Policies, "cleanup runs after a failure too")
}

func TestRunCaseRetriesUntilConsistent(t *testing.T) {
	m := NewModel(Env{})
	cl := NewMemCluster(m)
	spy := &spyProber{inner: cl, invertFirst: 10}
	err := RunCase(t.Context(), &logRecorder{}, m, cl, spy, caseNamed(t, m, "default-deny-all"), Options{RetryDelay: time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, int64(2*72), spy.calls.Load())
}

func TestRunCaseProbeSelfAndWorkers(t *testing.T) {
	m := NewModel(Env{})
	cl := NewMemCluster(m)
	spy := &spyProber{inner: cl}
	err := RunCase(t.Context(), &logRecorder{}, m, cl, spy, caseNamed(t, m, "ingress-any-podselector"), Options{ProbeSelf: true, Workers: 5})
	require.NoError(t, err)
	assert.True(t, spy.self.Load())
	assert.Equal(t, int64(81), spy.calls.Load())
	assert.LessOrEqual(t, spy.maxRunning.Load(), int64(5))
	assert.Greater(t, spy.maxRunning.Load(), int64(1))
}

func TestRunCaseUsesTracerForSCTP(t *testing.T) {
	m := NewModel(Env{})
	cl := NewMemCluster(m)
	spy := &spyProber{inner: cl, failProto: corev1.ProtocolSCTP}
	var traced atomic.Int64
	tracer := tracerFunc(func(ctx context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error) {
		traced.Add(1)
		return cl.Probe(ctx, from, to, ip, proto, port)
	})
	c := caseNamed(t, m, "ingress-named-ports-udp-sctp")
	require.NoError(t, RunCase(t.Context(), &logRecorder{}, m, cl, spy, c, Options{Tracer: tracer}))
	assert.Equal(t, int64(2*72), traced.Load())
	assert.Equal(t, int64(3*72), spy.calls.Load())

	// Without a tracer, the failing SCTP probes leave unknown cells.
	logs := &logRecorder{}
	err := RunCase(t.Context(), logs, m, cl, spy, c, Options{Attempts: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "got unknown")
	assert.Contains(t, logs.String(), "no socket for this protocol")
}

// failingCluster fails ApplyPolicy.
type failingCluster struct{ *MemCluster }

func (failingCluster) ApplyPolicy(context.Context, *networkingv1.NetworkPolicy) error {
	return errors.New("apiserver unavailable")
}

func TestRunCaseStopsOnClusterError(t *testing.T) {
	m := NewModel(Env{})
	cl := failingCluster{NewMemCluster(m)}
	spy := &spyProber{inner: cl.MemCluster}
	err := RunCase(t.Context(), &logRecorder{}, m, cl, spy, caseNamed(t, m, "default-deny-ingress"), Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apply policy x/deny-ingress: apiserver unavailable")
	assert.Zero(t, spy.calls.Load())
}

func TestRunCaseKeepStateAndCleanup(t *testing.T) {
	m := NewModel(Env{Prefix: "np-"})
	cl := NewMemCluster(m)
	c := caseNamed(t, m, "ingress-from-updated-namespace")
	require.NoError(t, RunCase(t.Context(), &logRecorder{}, m, cl, cl, c, Options{KeepState: true}))
	w := cl.World()
	assert.Len(t, w.Policies, 1)
	assert.Equal(t, "updated", w.Namespaces[m.NS("y")]["ns2"])

	require.NoError(t, Cleanup(t.Context(), m, cl))
	w = cl.World()
	assert.Empty(t, w.Policies)
	assert.Equal(t, m.NamespaceLabels(m.NS("y")), w.Namespaces[m.NS("y")])
}

func TestRunCaseCancelled(t *testing.T) {
	m := NewModel(Env{})
	cl := NewMemCluster(m)
	c := caseNamed(t, m, "default-deny-ingress")
	c.Steps[0].Probes[0].Want = m.NewTable(true) // wrong, so the runner would retry
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	err := RunCase(ctx, &logRecorder{}, m, cl, cl, c, Options{Attempts: 5, RetryDelay: time.Minute})
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Empty(t, cl.World().Policies, "cleanup ignores the cancellation")
}

func TestRunScenarioReportsMismatch(t *testing.T) {
	m := NewModel(Env{})
	cl := NewMemCluster(m)
	s := Scenario{
		Name: "deny-x",
		Policies: func(PodIPs) []*networkingv1.NetworkPolicy {
			return list(ingressPolicy(m.NS("x"), "deny", anyPod()))
		},
		Samples: []Sample{{From: m.Pod("y", "a"), To: m.Pod("x", "a"), Protocol: corev1.ProtocolTCP, Port: 80}},
	}
	// The spy inverts every probe: the blocked sample looks allowed.
	logs := &logRecorder{}
	err := RunScenario(t.Context(), logs, m, cl, &spyProber{inner: cl, invertFirst: 1 << 30}, s, Options{Attempts: 2, RetryDelay: time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "observed allowed=true; evaluator: blocked")
	assert.Contains(t, logs.String(), "name: deny")
}
