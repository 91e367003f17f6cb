package pods

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/probe"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
)

// probeState holds the probe results of one running app container.
type probeState struct {
	cancel  context.CancelFunc
	ready   bool
	started bool
	kill    bool
	killWhy string
}

func probeKey(name string, init bool) string {
	if init {
		return "init/" + name
	}
	return name
}

// startProbes starts the probe workers of a freshly started (prev == nil)
// or adopted container; prev carries the adopted container's last known
// readiness so adoption does not disturb it.
func (w *worker) startProbes(pod *corev1.Pod, spec *corev1.Container, prev *corev1.ContainerStatus) {
	w.stopProbes(spec.Name, false)
	ctx, cancel := context.WithCancel(w.m.ctx)
	ps := &probeState{cancel: cancel, started: spec.StartupProbe == nil, ready: spec.ReadinessProbe == nil}
	if prev != nil {
		ps.started = ps.started || (prev.Started != nil && *prev.Started)
		ps.ready = ps.ready || prev.Ready
	}
	w.mu.Lock()
	w.probes[spec.Name] = ps
	w.mu.Unlock()
	target := probe.Target{PodIP: w.podIP(), Netns: w.netnsPath(), Ports: spec.Ports, InContainer: w.inContainer(spec)}
	name := pod.Namespace + "/" + pod.Name + "/" + spec.Name
	setReady := func(r bool) {
		w.mu.Lock()
		ps.ready = r
		w.mu.Unlock()
		w.kick()
	}
	requestKill := func(why string) func() {
		return func() {
			w.mu.Lock()
			ps.kill, ps.killWhy = true, why
			w.mu.Unlock()
			w.kick()
		}
	}
	runRest := func() {
		if p := spec.ReadinessProbe; p != nil {
			rw := &probe.Worker{Name: "readiness " + name, Probe: p, Checker: w.m.cfg.Checker, Target: target,
				Initial: ps.ready, OnChange: setReady}
			go rw.Run(ctx)
		}
		if p := spec.LivenessProbe; p != nil {
			lw := &probe.Worker{Name: "liveness " + name, Probe: p, Checker: w.m.cfg.Checker, Target: target,
				Initial: true, OnFailureThreshold: requestKill("failed liveness probe")}
			go lw.Run(ctx)
		}
	}
	if spec.StartupProbe == nil || ps.started {
		runRest()
		return
	}
	sw := &probe.Worker{Name: "startup " + name, Probe: spec.StartupProbe, Checker: w.m.cfg.Checker, Target: target,
		StopOnSuccess: true, OnFailureThreshold: requestKill("failed startup probe"),
		OnChange: func(ok bool) {
			if !ok {
				return
			}
			w.mu.Lock()
			ps.started = true
			w.mu.Unlock()
			w.kick()
			runRest()
		}}
	go sw.Run(ctx)
}

func (w *worker) stopProbes(name string, init bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ps, ok := w.probes[probeKey(name, init)]; ok {
		ps.cancel()
		delete(w.probes, probeKey(name, init))
	}
}

func (w *worker) stopAllProbes() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, ps := range w.probes {
		ps.cancel()
		delete(w.probes, k)
	}
}

// probeResult returns whether the container counts as ready and started.
func (w *worker) probeResult(name string) (ready, started bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ps, ok := w.probes[name]
	if !ok {
		return false, false
	}
	return ps.ready && ps.started, ps.started
}

func (w *worker) takeKill(name string, init bool) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ps, ok := w.probes[probeKey(name, init)]
	if !ok || !ps.kill {
		return false, ""
	}
	ps.kill = false
	return true, ps.killWhy
}

// adoptProbes starts probes for running app containers that have none, as
// after a kubelet restart.
func (w *worker) adoptProbes(pod *corev1.Pod) {
	if w.st.Finished {
		return
	}
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := w.st.Container(spec.Name, false)
		if c == nil || !c.Running {
			continue
		}
		w.mu.Lock()
		_, ok := w.probes[spec.Name]
		w.mu.Unlock()
		if ok {
			continue
		}
		if w.vols == nil {
			// After a kubelet restart: the volumes again, for exec
			// probes that run inside the container.
			if set, err := w.m.cfg.Volumes.Prepare(w.m.ctx, pod, w.m.cfg.Store.PodDir(w.st.UID)); err == nil {
				w.vols = &set
			} else {
				w.log().Error(err, "Preparing volumes of an adopted pod failed")
			}
		}
		var prev *corev1.ContainerStatus
		for j := range pod.Status.ContainerStatuses {
			if cs := &pod.Status.ContainerStatuses[j]; cs.Name == spec.Name && cs.ContainerID == "antrea-lab://"+c.ID {
				prev = cs
			}
		}
		w.startProbes(pod, spec, prev)
	}
}

// inContainer returns how exec probes of a container of our binaries run:
// through run-container with the container's network namespace and
// mounts, the command resolved like the container's own. Nil for other
// containers (lab-agnhost stands in for them): their probes run in the
// pod's network namespace.
func (w *worker) inContainer(spec *corev1.Container) func([]string) []string {
	if _, _, ours := w.ourBinary(spec); !ours || w.vols == nil {
		return nil
	}
	mounts, _, err := volumes.Mounts(spec, *w.vols)
	if err != nil {
		return nil
	}
	prefix := append([]string{w.m.cfg.SelfExe, "run-container", "--netns", w.netnsPath()}, mountArgs(mounts)...)
	prefix = append(prefix, "--")
	return func(cmd []string) []string {
		argv := append([]string(nil), cmd...)
		if len(argv) > 0 {
			if path, ok := w.binaryPath(argv[0]); ok {
				argv[0] = path
			}
		}
		return append(append([]string(nil), prefix...), argv...)
	}
}
