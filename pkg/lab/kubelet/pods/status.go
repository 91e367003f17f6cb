package pods

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerIDPrefix is the runtime scheme of container IDs.
const ContainerIDPrefix = "antrea-lab://"

func mtime(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

// phase computes the pod phase from the runtime state.
func (w *worker) phase(pod *corev1.Pod) corev1.PodPhase {
	st := w.st
	if st.Finished {
		for _, c := range st.Containers {
			if !c.Unsupported && c.Exited() && c.ExitCode != 0 {
				return corev1.PodFailed
			}
		}
		return corev1.PodSucceeded
	}
	if !w.initialized(pod) {
		return corev1.PodPending
	}
	for _, spec := range pod.Spec.Containers {
		if c := st.Container(spec.Name, false); c != nil && c.ID != "" {
			return corev1.PodRunning
		}
	}
	return corev1.PodPending
}

// initialized reports whether every init container completed (or, for
// sidecars, started).
func (w *worker) initialized(pod *corev1.Pod) bool {
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := w.st.Container(spec.Name, true)
		switch {
		case c == nil:
			return false
		case c.Unsupported:
		case isSidecar(spec) && c.ID != "":
		case c.Exited() && c.ExitCode == 0:
		default:
			return false
		}
	}
	return true
}

func (w *worker) containerStatus(spec *corev1.Container, init bool, podInitialized bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: ""}
	f := false
	cs.Started = &f
	c := w.st.Container(spec.Name, init)
	waiting := func(reason, msg string) {
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	}
	if c == nil {
		reason := "ContainerCreating"
		if !init && !podInitialized {
			reason = "PodInitializing"
		}
		waiting(reason, "")
		return cs
	}
	cs.RestartCount = int32(c.RestartCount)
	if c.ID != "" {
		cs.ContainerID = ContainerIDPrefix + c.ID
	}
	if lt := c.LastTerminated; lt != nil {
		cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(lt.ID, lt.ExitCode, lt.Reason, lt.StartedAt, lt.FinishedAt)}
	}
	switch {
	case c.Unsupported:
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: "Completed", Message: "not run: the lab only runs its own binaries as init containers",
			StartedAt: mtime(c.StartedAt), FinishedAt: mtime(c.FinishedAt)}}
	case c.Running:
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: mtime(c.StartedAt)}}
		if init {
			t := true
			cs.Started = &t
			cs.Ready = true
			if !isSidecar(spec) {
				cs.Ready = false
			}
		} else {
			ready, started := w.probeResult(spec.Name)
			cs.Ready = ready
			cs.Started = &started
		}
	case c.Exited() && !c.NextStart.IsZero():
		waiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
			c.Backoff, spec.Name, w.st.Name, w.st.Namespace, w.st.UID))
		cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(c.ID, c.ExitCode, c.Reason, c.StartedAt, c.FinishedAt)}
	case c.Exited():
		cs.State = corev1.ContainerState{Terminated: terminated(c.ID, c.ExitCode, c.Reason, c.StartedAt, c.FinishedAt)}
	case c.Reason != "":
		waiting(c.Reason, "")
	default:
		reason := "ContainerCreating"
		if !init && !podInitialized {
			reason = "PodInitializing"
		}
		waiting(reason, "")
	}
	return cs
}

func terminated(id string, code int, reason string, start, end time.Time) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason,
		StartedAt: mtime(start), FinishedAt: mtime(end)}
	if id != "" {
		t.ContainerID = ContainerIDPrefix + id
	}
	return t
}

// buildStatus computes the pod status from the runtime state; fields the
// kubelet does not own are kept from old.
func (w *worker) buildStatus(pod *corev1.Pod) corev1.PodStatus {
	now := w.m.cfg.Now()
	old := pod.Status
	s := *old.DeepCopy()
	s.Phase = w.phase(pod)
	s.Reason, s.Message = "", ""
	s.HostIP = w.m.cfg.NodeIP
	s.HostIPs = []corev1.HostIP{{IP: w.m.cfg.NodeIP}}
	s.PodIP, s.PodIPs = "", nil
	ips := append([]string(nil), w.st.IPs...)
	sort.SliceStable(ips, func(i, j int) bool { // IPv4 first, as the API expects a stable primary
		a, _ := netip.ParseAddr(ips[i])
		b, _ := netip.ParseAddr(ips[j])
		return a.Is4() && !b.Is4()
	})
	for _, ip := range ips {
		s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		s.PodIP = ips[0]
	}
	if s.StartTime == nil {
		t := mtime(w.st.CreatedAt)
		s.StartTime = &t
	}
	initialized := w.initialized(pod)
	s.InitContainerStatuses = nil
	for i := range pod.Spec.InitContainers {
		s.InitContainerStatuses = append(s.InitContainerStatuses, w.containerStatus(&pod.Spec.InitContainers[i], true, initialized))
	}
	s.ContainerStatuses = nil
	var unready []string
	for i := range pod.Spec.Containers {
		cs := w.containerStatus(&pod.Spec.Containers[i], false, initialized)
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	terminal := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		st := corev1.ConditionFalse
		if ok {
			st, reason, msg = corev1.ConditionTrue, "", ""
		}
		setCondition(&s, old.Conditions, corev1.PodCondition{Type: t, Status: st, Reason: reason, Message: msg}, now)
	}
	cond(corev1.PodReadyToStartContainers, w.st.NetworkReady && !w.st.Finished, "", "")
	initMsg := ""
	if !initialized {
		initMsg = "containers with incomplete status: [" + strings.Join(w.pendingInit(pod), " ") + "]"
	}
	cond(corev1.PodInitialized, initialized, "ContainersNotInitialized", initMsg)
	notReadyReason, notReadyMsg := "ContainersNotReady", "containers with unready status: ["+strings.Join(unready, " ")+"]"
	if terminal {
		notReadyReason, notReadyMsg = "PodCompleted", ""
	}
	containersReady := len(unready) == 0 && !terminal
	cond(corev1.ContainersReady, containersReady, notReadyReason, notReadyMsg)
	ready, gateMsg := containersReady, ""
	if containersReady {
		if missing := unmetGates(pod, s.Conditions); len(missing) > 0 {
			ready = false
			notReadyReason, gateMsg = "ReadinessGatesNotReady", "corresponding condition of pod readiness gate "+strings.Join(missing, ", ")+" does not exist or is not True"
		}
	}
	if gateMsg != "" {
		notReadyMsg = gateMsg
	}
	cond(corev1.PodReady, ready, notReadyReason, notReadyMsg)
	return s
}

func (w *worker) pendingInit(pod *corev1.Pod) []string {
	var names []string
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := w.st.Container(spec.Name, true)
		if c == nil || !(c.Unsupported || (c.Exited() && c.ExitCode == 0) || (isSidecar(spec) && c.ID != "")) {
			names = append(names, spec.Name)
		}
	}
	return names
}

func unmetGates(pod *corev1.Pod, conds []corev1.PodCondition) []string {
	var missing []string
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range conds {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			missing = append(missing, fmt.Sprintf("%q", g.ConditionType))
		}
	}
	return missing
}

// setCondition puts c in s.Conditions, keeping the transition time of an
// unchanged condition of old.
func setCondition(s *corev1.PodStatus, old []corev1.PodCondition, c corev1.PodCondition, now time.Time) {
	c.LastTransitionTime = mtime(now)
	for _, o := range old {
		if o.Type == c.Type && o.Status == c.Status {
			c.LastTransitionTime = o.LastTransitionTime
			c.LastProbeTime = o.LastProbeTime
		}
	}
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

// updateStatus sends the computed status when it differs from the API's.
func (w *worker) updateStatus(ctx context.Context, pod *corev1.Pod) error {
	if w.st == nil {
		return nil
	}
	s := w.buildStatus(pod)
	if apiequality.Semantic.DeepEqual(s, pod.Status) {
		return nil
	}
	// The informer has not seen our last update yet.
	if w.lastSent != nil && w.lastSentRV == pod.ResourceVersion && apiequality.Semantic.DeepEqual(s, *w.lastSent) {
		return nil
	}
	p := pod.DeepCopy()
	p.Status = s
	_, err := w.m.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // the watch brings the newer object and another sync
	}
	if err != nil {
		return fmt.Errorf("update status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	w.lastSent, w.lastSentRV = &s, pod.ResourceVersion
	return nil
}
