package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ovs-cni/antrea/pkg/lab/hostpaths"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/env"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/proc"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
)

// AgnhostBinary is the built-in server run for containers whose command is
// not one of our binaries.
const AgnhostBinary = "lab-agnhost"

// container returns the state of a container, creating it.
func (w *worker) container(name string, init bool) *podstate.Container {
	if c := w.st.Container(name, init); c != nil {
		return c
	}
	c := &podstate.Container{Name: name, Init: init}
	w.st.Containers = append(w.st.Containers, c)
	return c
}

// ourBinary returns the path of the lab binary the container names, if any.
func (w *worker) ourBinary(spec *corev1.Container) (string, []string, bool) {
	argv := append(append([]string(nil), spec.Command...), spec.Args...)
	if len(argv) == 0 {
		return "", nil, false
	}
	path, ok := w.binaryPath(argv[0])
	if !ok {
		return "", nil, false
	}
	return path, argv[1:], true
}

// binaryPath finds the lab binary a command names (by its base name, as an
// image would have it on its PATH).
func (w *worker) binaryPath(command string) (string, bool) {
	name := filepath.Base(command)
	if name == "" || name == "." || name == "/" {
		return "", false
	}
	path := filepath.Join(w.m.cfg.BinDir, name)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", false
	}
	return path, true
}

func isSidecar(spec *corev1.Container) bool {
	return spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// shouldRestart applies the restart policy to an exited container.
func shouldRestart(pod *corev1.Pod, c *podstate.Container, sidecar bool) bool {
	if sidecar {
		return true
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.ExitCode != 0
	}
	if c.Init {
		return c.ExitCode != 0
	}
	return true
}

func (w *worker) specOf(pod *corev1.Pod, c *podstate.Container) *corev1.Container {
	list := pod.Spec.Containers
	if c.Init {
		list = pod.Spec.InitContainers
	}
	for i := range list {
		if list[i].Name == c.Name {
			return &list[i]
		}
	}
	return nil
}

// afterExit records the exit of c and schedules its restart if due.
func (w *worker) afterExit(pod *corev1.Pod, c *podstate.Container) {
	cfg := &w.m.cfg
	if c.Reason == "" {
		c.Reason = "Completed"
		if c.ExitCode != 0 {
			c.Reason = "Error"
		}
	}
	w.stopProbes(c.Name, c.Init)
	spec := w.specOf(pod, c)
	if spec == nil || !shouldRestart(pod, c, spec != nil && isSidecar(spec)) {
		c.NextStart = time.Time{}
		return
	}
	if c.FinishedAt.Sub(c.StartedAt) > 2*cfg.RestartBackoffMax {
		c.Backoff = 0
	}
	if c.Backoff == 0 {
		c.Backoff = cfg.RestartBackoffMin
	} else if c.Backoff *= 2; c.Backoff > cfg.RestartBackoffMax {
		c.Backoff = cfg.RestartBackoffMax
	}
	c.NextStart = c.FinishedAt.Add(c.Backoff)
	w.log().Info("Container exited, restart scheduled", "container", c.Name, "exitCode", c.ExitCode, "restartIn", c.Backoff)
}

// observeExits notices processes that ended and applies kill requests of
// liveness and startup probes.
func (w *worker) observeExits(pod *corev1.Pod) {
	now := w.m.cfg.Now()
	changed := false
	for _, c := range w.st.Containers {
		if !c.Running {
			continue
		}
		if kill, why := w.takeKill(c.Name, c.Init); kill {
			w.event(pod, corev1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", c.Name, why)
			w.stopContainers(pod, []*podstate.Container{c}, w.gracePeriod(pod))
			w.afterExit(pod, c)
			changed = true
			continue
		}
		s := w.m.cfg.Runtime.Status(c.PID, w.st.UID)
		if s.Running {
			continue
		}
		c.Running = false
		c.FinishedAt = now
		c.ExitCode, c.Reason = 137, "ContainerStatusUnknown"
		if s.ExitKnown {
			c.ExitCode, c.Reason = s.ExitCode, ""
		}
		w.log().Info("Container exited", "container", c.Name, "exitCode", c.ExitCode)
		w.afterExit(pod, c)
		changed = true
	}
	if changed {
		if err := w.save(); err != nil {
			w.log().Error(err, "Save pod state failed")
		}
	}
}

// syncContainers runs init containers in order, then the app containers.
func (w *worker) syncContainers(ctx context.Context, pod *corev1.Pod) error {
	if w.st.Finished {
		return nil
	}
	w.refreshVolumes(ctx, pod)
	w.observeExits(pod)
	now := w.m.cfg.Now()
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := w.container(spec.Name, true)
		if c.Unsupported {
			continue
		}
		if _, _, ours := w.ourBinary(spec); !ours {
			c.Unsupported, c.Reason, c.FinishedAt, c.StartedAt = true, "Completed", now, now
			w.warnOnce(pod, "init/"+spec.Name, "UnsupportedPodFeature",
				fmt.Sprintf("init container %s does not run a lab binary; the lab skips it and counts it as completed", spec.Name))
			if err := w.save(); err != nil {
				return err
			}
			continue
		}
		sidecar := isSidecar(spec)
		if c.Running {
			if sidecar {
				continue
			}
			return nil
		}
		if c.Exited() && !sidecar && c.ExitCode == 0 {
			continue
		}
		if c.Exited() && c.NextStart.IsZero() {
			return w.finish(ctx, pod) // failed init container, restartPolicy Never
		}
		if err := w.startIfDue(ctx, pod, spec, c, now); err != nil {
			return err
		}
		if !(sidecar && c.Running) {
			return nil
		}
	}
	allDone := len(pod.Spec.Containers) > 0
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := w.container(spec.Name, false)
		if c.Running || (c.Exited() && c.NextStart.IsZero()) {
			allDone = allDone && !c.Running
			continue
		}
		allDone = false
		if err := w.startIfDue(ctx, pod, spec, c, now); err != nil {
			return err
		}
	}
	if allDone {
		return w.finish(ctx, pod)
	}
	return nil
}

// finish stops what still runs (sidecars) and releases the network of a
// pod that reached Succeeded or Failed.
func (w *worker) finish(ctx context.Context, pod *corev1.Pod) error {
	w.stopAllProbes()
	w.stopContainers(pod, w.st.Containers, w.gracePeriod(pod))
	if err := w.releaseSandbox(ctx); err != nil {
		return err
	}
	w.st.Finished = true
	w.log().Info("Pod finished")
	return w.save()
}

func (w *worker) startIfDue(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c *podstate.Container, now time.Time) error {
	if !c.NextStart.IsZero() && now.Before(c.NextStart) {
		return nil
	}
	err := w.start(ctx, pod, spec, c)
	if err != nil {
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		c.Reason = "CreateContainerError"
		c.Backoff = w.m.cfg.RestartBackoffMin
		c.NextStart = now.Add(c.Backoff)
		w.log().Error(err, "Start container failed", "container", spec.Name)
	}
	if serr := w.save(); serr != nil {
		return serr
	}
	return nil
}

func (w *worker) podIP() string {
	if len(w.st.IPs) > 0 {
		return w.st.IPs[0]
	}
	return ""
}

// start launches the container's process.
func (w *worker) start(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c *podstate.Container) error {
	cfg := &w.m.cfg
	podDir := cfg.Store.PodDir(w.st.UID)
	var ps proc.Spec
	if bin, args, ours := w.ourBinary(spec); ours {
		vars, err := w.m.env.Resolve(ctx, pod, spec, w.podIP())
		if err != nil {
			return fmt.Errorf("resolve environment: %w", err)
		}
		vars = append(vars, proc.MarkerEnv+"="+w.st.UID)
		if _, ok := env.Map(vars)["PATH"]; !ok {
			vars = append(vars, "PATH="+hostPath())
		}
		mounts, err := w.mounts(ctx, pod, spec)
		if err != nil {
			return err
		}
		m := env.Map(vars)
		rcArgs := []string{"run-container", "--pod-uid", w.st.UID, "--netns", w.netnsPath()}
		if spec.WorkingDir != "" {
			rcArgs = append(rcArgs, "--workdir", spec.WorkingDir)
		}
		rcArgs = append(append(rcArgs, mountArgs(mounts)...), "--", bin)
		for _, a := range args {
			rcArgs = append(rcArgs, env.Expand(a, m))
		}
		ps = proc.Spec{Path: cfg.SelfExe, Args: rcArgs, Env: vars}
	} else {
		args := []string{"--netns", w.netnsPath(), "--name", pod.Name, "--pod-uid", w.st.UID}
		for _, p := range spec.Ports {
			switch p.Protocol {
			case corev1.ProtocolUDP:
				args = append(args, "--udp", strconv.Itoa(int(p.ContainerPort)))
			case corev1.ProtocolSCTP:
				w.warnOnce(pod, fmt.Sprintf("sctp/%s/%d", spec.Name, p.ContainerPort), "UnsupportedPodFeature",
					fmt.Sprintf("container %s port %d/SCTP: this kernel has no SCTP sockets; the lab does not listen on it", spec.Name, p.ContainerPort))
			default:
				args = append(args, "--tcp", strconv.Itoa(int(p.ContainerPort)))
			}
		}
		ps = proc.Spec{Path: filepath.Join(cfg.BinDir, AgnhostBinary), Args: args,
			Env: []string{proc.MarkerEnv + "=" + w.st.UID, "PATH=" + hostPath()}}
	}
	ps.LogPath = filepath.Join(podDir, spec.Name+".log")
	if err := os.MkdirAll(podDir, 0o750); err != nil {
		return fmt.Errorf("create pod dir: %w", err)
	}
	w.event(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", spec.Image)
	pid, err := cfg.Runtime.Start(ps)
	if err != nil {
		return fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	if c.ID != "" && !c.FinishedAt.IsZero() {
		c.LastTerminated = &podstate.Terminated{ID: c.ID, ExitCode: c.ExitCode, Reason: c.Reason, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt}
		c.RestartCount++
	}
	c.ID, c.PID, c.Running = NewID(), pid, true
	c.StartedAt, c.FinishedAt, c.ExitCode, c.Reason, c.NextStart = cfg.Now(), time.Time{}, 0, "", time.Time{}
	w.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", spec.Name)
	w.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", spec.Name)
	w.log().Info("Container started", "container", spec.Name, "pid", pid)
	if !c.Init {
		w.startProbes(pod, spec, nil)
	}
	return nil
}

// mountArgs are run-container's --mount flags for mounts.
func mountArgs(mounts []volumes.Mount) []string {
	var args []string
	for _, mt := range mounts {
		m := mt.Source + ":" + mt.Target
		if mt.ReadOnly {
			m += ":ro"
		}
		args = append(args, "--mount", m)
	}
	return args
}

func hostPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// mounts materializes the volumes (once per worker) and returns the
// container's bind mounts, recording the mount points they will create.
func (w *worker) mounts(ctx context.Context, pod *corev1.Pod, spec *corev1.Container) ([]volumes.Mount, error) {
	if w.vols == nil {
		set, err := w.m.cfg.Volumes.Prepare(ctx, pod, w.m.cfg.Store.PodDir(w.st.UID))
		if err != nil {
			return nil, fmt.Errorf("prepare volumes: %w", err)
		}
		w.vols = &set
	}
	mounts, skipped, err := volumes.Mounts(spec, *w.vols)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		w.warnOnce(pod, "mount/"+spec.Name+"/"+s, "UnsupportedPodFeature",
			fmt.Sprintf("container %s: volume %s is not supported by the lab and is not mounted", spec.Name, s))
	}
	known := map[string]bool{}
	for _, p := range w.st.CreatedPaths {
		known[p] = true
	}
	var created []string
	for _, mt := range mounts {
		for _, p := range volumes.MissingPaths(mt.Target) {
			if !known[p] {
				known[p] = true
				created = append(created, p)
			}
		}
	}
	if err := hostpaths.Record(w.m.cfg.CreatedPathsFile, created); err != nil {
		return nil, err
	}
	w.st.CreatedPaths = append(w.st.CreatedPaths, created...)
	return mounts, w.save()
}

// refreshVolumes rewrites volumes whose service account tokens are due.
func (w *worker) refreshVolumes(ctx context.Context, pod *corev1.Pod) {
	if w.vols == nil || w.vols.RefreshAt.IsZero() || w.m.cfg.Now().Before(w.vols.RefreshAt) {
		return
	}
	set, err := w.m.cfg.Volumes.Prepare(ctx, pod, w.m.cfg.Store.PodDir(w.st.UID))
	if err != nil {
		w.log().Error(err, "Refreshing volumes failed")
		w.vols.RefreshAt = w.m.cfg.Now().Add(10 * time.Second)
		return
	}
	w.vols = &set
}

// warnUnsupported records events for pod features the lab ignores.
func (w *worker) warnUnsupported(pod *corev1.Pod) {
	if len(pod.Spec.EphemeralContainers) > 0 {
		w.warnOnce(pod, "ephemeral", "UnsupportedPodFeature", "ephemeral containers are not supported by the lab kubelet")
	}
	for _, c := range pod.Spec.Containers {
		if _, _, ours := w.ourBinary(&c); !ours && len(c.Command)+len(c.Args) > 0 {
			w.warnOnce(pod, "cmd/"+c.Name, "UnsupportedPodFeature",
				fmt.Sprintf("container %s: command %q is not a lab binary; the lab runs lab-agnhost serving its ports instead", c.Name, strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")))
		}
	}
	for _, v := range pod.Spec.Volumes {
		s := v.VolumeSource
		if s.HostPath == nil && s.EmptyDir == nil && s.ConfigMap == nil && s.Secret == nil && s.Projected == nil && s.DownwardAPI == nil {
			w.warnOnce(pod, "volume/"+v.Name, "UnsupportedPodFeature",
				fmt.Sprintf("volume %s: only configMap, secret, projected, downwardAPI, emptyDir and hostPath volumes are supported", v.Name))
		}
	}
}
