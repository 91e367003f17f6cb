package pods

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
)

// worker reconciles one pod. Only its own goroutine calls sync; probe
// goroutines share the probe results through mu.
type worker struct {
	m        *Manager
	uid      types.UID
	ns, name string
	st       *podstate.Pod
	kickCh   chan struct{}

	sandboxBackoff time.Duration
	nextSandbox    time.Time
	nextCheck      time.Time
	warned         map[string]bool
	vols           *volumes.Set
	lastSent       *corev1.PodStatus
	lastSentRV     string

	mu     sync.Mutex
	probes map[string]*probeState
}

func newWorker(m *Manager, uid types.UID, ns, name string, st *podstate.Pod) *worker {
	return &worker{
		m: m, uid: uid, ns: ns, name: name, st: st,
		kickCh: make(chan struct{}, 1),
		warned: map[string]bool{},
		probes: map[string]*probeState{},
	}
}

func (w *worker) kick() {
	select {
	case w.kickCh <- struct{}{}:
	default:
	}
}

func (w *worker) log() klog.Logger {
	return klog.Background().WithValues("pod", klog.KRef(w.ns, w.name), "podUID", w.uid)
}

func (w *worker) run(ctx context.Context) {
	t := time.NewTicker(w.m.cfg.SyncPeriod)
	defer t.Stop()
	defer w.stopAllProbes()
	for {
		done, err := w.sync(ctx)
		if err != nil && ctx.Err() == nil {
			w.log().Error(err, "Pod sync failed")
		}
		if done || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kickCh:
		case <-t.C:
		}
	}
}

// sync reconciles once and reports whether the worker is finished.
func (w *worker) sync(ctx context.Context) (bool, error) {
	pod := w.m.pod(w.uid, w.ns, w.name)
	if pod == nil || pod.DeletionTimestamp != nil {
		return w.terminate(ctx, pod)
	}
	if w.st == nil {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return true, nil // finished in an earlier life, nothing to run
		}
		w.st = &podstate.Pod{
			UID: string(w.uid), Namespace: w.ns, Name: w.name,
			HostNetwork: pod.Spec.HostNetwork, CreatedAt: w.m.cfg.Now(),
		}
		if err := w.save(); err != nil {
			return false, err
		}
		w.warnUnsupported(pod)
	}
	w.adoptProbes(pod)
	var errs []error
	if !w.st.Finished && w.ensureSandbox(ctx, pod) {
		if err := w.syncContainers(ctx, pod); err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.updateStatus(ctx, pod); err != nil {
		errs = append(errs, err)
	}
	return false, errors.Join(errs...)
}

func (w *worker) save() error { return w.m.cfg.Store.Save(w.st) }

func (w *worker) event(pod *corev1.Pod, typ, reason, format string, args ...any) {
	if pod == nil {
		return
	}
	w.m.cfg.Recorder.Eventf(pod, typ, reason, format, args...)
}

// warnOnce records a warning event once per worker and key.
func (w *worker) warnOnce(pod *corev1.Pod, key, reason, msg string) {
	if w.warned[key] {
		return
	}
	w.warned[key] = true
	w.event(pod, corev1.EventTypeWarning, reason, "%s", msg)
}

// NewID returns a random 64-hex identifier, as container runtimes use.
func NewID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // cannot happen on Linux
	}
	return hex.EncodeToString(b)
}

// terminate stops and removes everything of the pod, then deletes the API
// object when it still exists.
func (w *worker) terminate(ctx context.Context, pod *corev1.Pod) (bool, error) {
	if w.st == nil {
		st, err := w.m.cfg.Store.Load(string(w.uid))
		if err == nil {
			w.st = st
		} else if !errors.Is(err, os.ErrNotExist) {
			w.log().Error(err, "Ignoring unreadable pod state")
		}
	}
	if w.st != nil {
		if err := w.teardown(ctx, pod); err != nil {
			return false, err
		}
		w.st = nil
	}
	if pod == nil {
		return true, nil
	}
	zero := int64(0)
	err := w.m.cfg.Client.CoreV1().Pods(w.ns).Delete(ctx, w.name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return false, fmt.Errorf("delete pod %s/%s: %w", w.ns, w.name, err)
	}
	w.log().Info("Pod deleted")
	return true, nil
}

func (w *worker) gracePeriod(pod *corev1.Pod) time.Duration {
	g := w.m.cfg.MaxGracePeriod
	if pod == nil {
		return g
	}
	var secs *int64
	if pod.DeletionGracePeriodSeconds != nil {
		secs = pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		secs = pod.Spec.TerminationGracePeriodSeconds
	}
	if secs != nil && time.Duration(*secs)*time.Second < g {
		g = time.Duration(*secs) * time.Second
	}
	return g
}

// teardown stops processes, detaches the network, deletes the namespace,
// removes created mount points and the state folder.
func (w *worker) teardown(ctx context.Context, pod *corev1.Pod) error {
	w.stopAllProbes()
	w.stopContainers(pod, w.st.Containers, w.gracePeriod(pod))
	if err := w.releaseSandbox(ctx); err != nil {
		return err
	}
	if err := w.m.cfg.Store.Remove(w.st.UID); err != nil {
		return err
	}
	w.log().Info("Pod torn down")
	return nil
}

// preStopSleep is the longest preStop sleep hook of the running
// containers (the hooks run in parallel), none for a pod already gone
// from the API. Other hook kinds are not supported by the lab.
func preStopSleep(pod *corev1.Pod, cs []*podstate.Container) time.Duration {
	var longest time.Duration
	if pod == nil {
		return 0
	}
	for _, c := range cs {
		if !c.Running {
			continue
		}
		for _, spec := range pod.Spec.Containers {
			if spec.Name != c.Name || spec.Lifecycle == nil || spec.Lifecycle.PreStop == nil || spec.Lifecycle.PreStop.Sleep == nil {
				continue
			}
			longest = max(longest, time.Duration(spec.Lifecycle.PreStop.Sleep.Seconds)*time.Second)
		}
	}
	return longest
}

// stopContainers runs the containers' preStop sleep hooks, sends SIGTERM
// to running processes, waits up to grace (counted from the start, hooks
// included, as the kubelet does) for them to exit, then sends SIGKILL.
func (w *worker) stopContainers(pod *corev1.Pod, cs []*podstate.Container, grace time.Duration) {
	rt := w.m.cfg.Runtime
	deadline := time.Now().Add(grace)
	if d := preStopSleep(pod, cs); d > 0 {
		w.event(pod, corev1.EventTypeNormal, "PreStopHook", "Sleeping %s before stopping the containers", d)
		time.Sleep(min(d, grace))
	}
	var running []*podstate.Container
	for _, c := range cs {
		if c.Running && c.PID > 0 && rt.Status(c.PID, w.st.UID).Running {
			running = append(running, c)
			w.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
			if err := rt.Signal(c.PID, syscall.SIGTERM); err != nil {
				w.log().Error(err, "SIGTERM failed", "container", c.Name, "pid", c.PID)
			}
		}
	}
	for len(running) > 0 && time.Now().Before(deadline) {
		alive := running[:0]
		for _, c := range running {
			if rt.Status(c.PID, w.st.UID).Running {
				alive = append(alive, c)
			}
		}
		running = alive
		if len(running) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, c := range running {
		if err := rt.Signal(c.PID, syscall.SIGKILL); err != nil {
			w.log().Error(err, "SIGKILL failed", "container", c.Name, "pid", c.PID)
		}
	}
	now := w.m.cfg.Now()
	for _, c := range cs {
		if c.Running {
			st := rt.Status(c.PID, w.st.UID)
			c.Running = false
			c.FinishedAt = now
			c.ExitCode, c.Reason = 137, "Error"
			if st.ExitKnown {
				c.ExitCode = st.ExitCode
			}
		}
	}
}
