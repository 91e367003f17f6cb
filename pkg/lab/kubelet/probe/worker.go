package probe

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Worker runs one probe of one container periodically until its context
// ends (or, with StopOnSuccess, until the result becomes success).
type Worker struct {
	Name    string // for logs, e.g. "readiness ns/pod/container"
	Probe   *corev1.Probe
	Checker Checker
	Target  Target
	// Initial is the result before the first attempt.
	Initial       bool
	StopOnSuccess bool
	// OnChange is called when the result changes.
	OnChange func(result bool)
	// OnFailureThreshold is called when consecutive failures reach the
	// failure threshold.
	OnFailureThreshold func()
	// tick overrides the period's unit in tests.
	tick time.Duration
}

// Run blocks until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	s := SettingsOf(w.Probe)
	if w.tick > 0 {
		s.InitialDelay = s.InitialDelay / time.Second * w.tick
		s.Period = s.Period / time.Second * w.tick
	}
	tr := NewTracker(s, w.Initial)
	if s.InitialDelay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.InitialDelay):
		}
	}
	ticker := time.NewTicker(s.Period)
	defer ticker.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, s.Timeout)
		err := w.Checker.Check(actx, w.Probe, w.Target)
		cancel()
		if ctx.Err() != nil {
			return
		}
		result, changed := tr.Observe(err == nil)
		if err != nil {
			klog.V(4).InfoS("Probe failed", "probe", w.Name, "err", err)
		}
		if changed && w.OnChange != nil {
			klog.V(2).InfoS("Probe result changed", "probe", w.Name, "result", result, "lastError", err)
			w.OnChange(result)
		}
		if err != nil && tr.FailureStreakReached() && w.OnFailureThreshold != nil {
			klog.InfoS("Probe reached its failure threshold", "probe", w.Name, "err", err)
			w.OnFailureThreshold()
		}
		if result && w.StopOnSuccess {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
