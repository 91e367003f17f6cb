package pods

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/cni"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/probe"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/proc"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
)

type fakeRuntime struct {
	mu      sync.Mutex
	next    int
	running map[int]bool
	exit    map[int]int
	started []proc.Spec
	signals []syscall.Signal
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{next: 1000, running: map[int]bool{}, exit: map[int]int{}}
}

func (f *fakeRuntime) Start(s proc.Spec) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.running[f.next] = true
	f.started = append(f.started, s)
	return f.next, nil
}

func (f *fakeRuntime) Status(pid int, _ string) proc.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[pid] {
		return proc.Status{Running: true}
	}
	code, ok := f.exit[pid]
	return proc.Status{ExitCode: code, ExitKnown: ok}
}

func (f *fakeRuntime) Signal(pid int, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, sig)
	if f.running[pid] {
		delete(f.running, pid)
		f.exit[pid] = 128 + int(sig)
	}
	return nil
}

func (f *fakeRuntime) exitWith(pid, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, pid)
	f.exit[pid] = code
}

func (f *fakeRuntime) runningCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.running)
}

type fakeNetwork struct {
	mu        sync.Mutex
	failAdds  int
	failDels  int
	failCheck int
	checkErr  error // returned by every Check while set
	checks    int
	statusErr error
	adds      []cni.Attachment
	dels      []cni.Attachment
	gcValid   []cni.Attachment
	gcCalled  bool
	netnsSeen []bool // whether the netns existed at each ADD
	netns     *fakeNetns
}

func (f *fakeNetwork) Status(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusErr
}

func (f *fakeNetwork) Add(_ context.Context, a cni.Attachment) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, a)
	f.netnsSeen = append(f.netnsSeen, f.netns.hasPath(a.NetNS))
	if f.failAdds > 0 {
		f.failAdds--
		return nil, errors.New("plugin type=\"antrea\" failed (add): agent not reachable")
	}
	return []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.10.1.%d", len(f.adds)+1))}, nil
}

func (f *fakeNetwork) Check(_ context.Context, a cni.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if f.checkErr != nil {
		return f.checkErr
	}
	if f.failCheck > 0 {
		f.failCheck--
		return errors.New("plugin type=\"bridge\" failed (check): eth0 has no address")
	}
	return nil
}

func (f *fakeNetwork) Del(_ context.Context, a cni.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dels = append(f.dels, a)
	if f.failDels > 0 {
		f.failDels--
		return errors.New("plugin type=\"broken\" failed (delete): not found")
	}
	return nil
}

func (f *fakeNetwork) GC(_ context.Context, valid []cni.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gcCalled, f.gcValid = true, valid
	return nil
}

func (f *fakeNetwork) counts() (adds, dels int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.adds), len(f.dels)
}

type fakeNetns struct {
	mu    sync.Mutex
	names map[string]bool
}

func (f *fakeNetns) Create(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names[name] {
		return fmt.Errorf("network namespace %q already exists", name)
	}
	f.names[name] = true
	return nil
}

func (f *fakeNetns) Delete(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.names, name)
	return nil
}

func (f *fakeNetns) Path(name string) string { return "/fake/netns/" + name }

func (f *fakeNetns) hasPath(p string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range f.names {
		if f.Path(n) == p {
			return true
		}
	}
	return false
}

func (f *fakeNetns) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.names)
}

type fakeChecker struct {
	mu sync.Mutex
	ok bool
}

func (f *fakeChecker) Check(context.Context, *corev1.Probe, probe.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok {
		return nil
	}
	return errors.New("connection refused")
}

func (f *fakeChecker) set(ok bool) {
	f.mu.Lock()
	f.ok = ok
	f.mu.Unlock()
}

type fakeVolumes struct{}

func (fakeVolumes) Prepare(context.Context, *corev1.Pod, string) (volumes.Set, error) {
	return volumes.Set{Paths: map[string]string{}}, nil
}

// harness runs a Manager against a fake clientset.
type harness struct {
	t        *testing.T
	client   *fake.Clientset
	recorder *record.FakeRecorder
	rt       *fakeRuntime
	net      *fakeNetwork
	netns    *fakeNetns
	checker  *fakeChecker
	store    podstate.Store
	binDir   string
	cancel   context.CancelFunc
	done     chan error
}

func newHarness(t *testing.T) *harness {
	ns := &fakeNetns{names: map[string]bool{}}
	h := &harness{
		t:        t,
		recorder: record.NewFakeRecorder(1000),
		rt:       newFakeRuntime(),
		netns:    ns,
		net:      &fakeNetwork{netns: ns},
		checker:  &fakeChecker{ok: true},
		store:    podstate.Store{Dir: t.TempDir()},
		binDir:   t.TempDir(),
	}
	return h
}

func (h *harness) start(objs ...*corev1.Pod) {
	h.t.Helper()
	if h.client == nil {
		var ro []runtime.Object
		for _, p := range objs {
			ro = append(ro, p)
		}
		h.client = fake.NewClientset(ro...)
	}
	m, err := New(Config{
		Client: h.client, Recorder: h.recorder, NodeName: "node-1", NodeIP: "172.18.0.11", LabName: "lab",
		BinDir: h.binDir, SelfExe: "/bin/kubelet", Store: h.store, CreatedPathsFile: h.binDir + "/created-paths", Network: h.net, Runtime: h.rt,
		Netns: h.netns, Checker: h.checker, Volumes: fakeVolumes{},
		SyncPeriod: 20 * time.Millisecond, CheckPeriod: 50 * time.Millisecond, SandboxBackoffMin: 30 * time.Millisecond, SandboxBackoffMax: 100 * time.Millisecond,
		RestartBackoffMin: 30 * time.Millisecond, RestartBackoffMax: 100 * time.Millisecond, MaxGracePeriod: 200 * time.Millisecond,
	})
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- m.Run(ctx) }()
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		require.NoError(h.t, err)
	case <-time.After(5 * time.Second):
		h.t.Fatal("manager did not stop")
	}
}

func (h *harness) getPod(ns, name string) *corev1.Pod {
	p, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// events drains the recorded events.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func testPod(name string, uid types.UID) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid},
		Spec: corev1.PodSpec{
			NodeName:      "node-1",
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers: []corev1.Container{{
				Name: "web", Image: "registry.k8s.io/e2e-test-images/agnhost:2.45",
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 81, Protocol: corev1.ProtocolUDP}},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}
