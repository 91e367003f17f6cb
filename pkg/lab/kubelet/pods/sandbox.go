package pods

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/cni"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

func (w *worker) attachment() cni.Attachment {
	return cni.Attachment{
		ContainerID:  w.st.SandboxID,
		NetNS:        w.m.cfg.Netns.Path(w.st.Netns),
		PodNamespace: w.st.Namespace,
		PodName:      w.st.Name,
		PodUID:       w.st.UID,
	}
}

// netnsPath is the sandbox namespace path, "" for host-network pods.
func (w *worker) netnsPath() string {
	if w.st.HostNetwork || w.st.Netns == "" {
		return ""
	}
	return w.m.cfg.Netns.Path(w.st.Netns)
}

// ensureSandbox makes sure the pod has a network; it reports whether the
// sandbox is ready.
func (w *worker) ensureSandbox(ctx context.Context, pod *corev1.Pod) bool {
	st := w.st
	if st.NetworkReady {
		w.checkSandbox(ctx, pod)
	}
	if st.NetworkReady {
		return true
	}
	if st.HostNetwork {
		st.IPs = []string{w.m.cfg.NodeIP}
		st.NetworkReady = true
		if err := w.save(); err != nil {
			w.log().Error(err, "Save pod state failed")
		}
		return true
	}
	now := w.m.cfg.Now()
	if now.Before(w.nextSandbox) {
		return false
	}
	// A sandbox from an attempt that did not finish (crash, failure).
	if st.SandboxID != "" {
		if err := w.releaseSandbox(ctx); err != nil {
			w.log().Error(err, "Cleaning up unfinished sandbox failed")
			w.backoffSandbox()
			return false
		}
	}
	if err := w.m.cfg.Network.Status(ctx); err != nil {
		w.warnOnce(pod, "network-not-ready", "NetworkNotReady", "network is not ready: "+err.Error())
		w.backoffSandbox()
		return false
	}
	st.SandboxID = NewID()
	st.Netns = layout.PodNetns(w.m.cfg.LabName, w.uid)
	if err := w.save(); err != nil {
		w.log().Error(err, "Save pod state before CNI ADD failed")
		st.SandboxID, st.Netns = "", ""
		w.backoffSandbox()
		return false
	}
	err := w.createSandbox(ctx)
	if err != nil {
		w.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		if rerr := w.releaseSandbox(ctx); rerr != nil {
			w.log().Error(rerr, "Cleanup after failed sandbox creation failed")
		}
		w.backoffSandbox()
		w.log().Error(err, "Create pod sandbox failed", "retryIn", w.sandboxBackoff)
		return false
	}
	w.sandboxBackoff = 0
	w.nextSandbox = now
	w.nextCheck = now.Add(w.m.cfg.CheckPeriod)
	w.log().Info("Pod sandbox ready", "sandboxID", st.SandboxID, "ips", st.IPs)
	return true
}

// checkSandbox runs CNI CHECK on a ready sandbox when it is due. A sandbox
// whose network is broken is killed, with its containers, so that the next
// sync re-creates it, as kubelet does when a sandbox changes.
func (w *worker) checkSandbox(ctx context.Context, pod *corev1.Pod) {
	now := w.m.cfg.Now()
	if w.st.HostNetwork || now.Before(w.nextCheck) {
		return
	}
	w.nextCheck = now.Add(w.m.cfg.CheckPeriod)
	err := w.m.cfg.Network.Check(ctx, w.attachment())
	if err == nil || errors.Is(err, cni.ErrNotInitialized) {
		return
	}
	var cniErr *types.Error
	if errors.As(err, &cniErr) && cniErr.Code == types.ErrTryAgainLater {
		// The plugin cannot tell now (e.g. its agent restarts): ask again
		// at the next check rather than kill a working pod.
		w.log().Info("Pod sandbox network check deferred", "reason", err.Error())
		return
	}
	w.log().Error(err, "Pod sandbox network check failed; re-creating the sandbox")
	w.event(pod, corev1.EventTypeWarning, "SandboxChanged", "Pod sandbox network check failed, it will be killed and re-created: %v", err)
	var running []*podstate.Container
	for _, c := range w.st.Containers {
		if c.Running {
			running = append(running, c)
		}
	}
	w.stopContainers(pod, running, w.gracePeriod(pod))
	for _, c := range running {
		w.afterExit(pod, c) // restart policy decides, as for any exit
	}
	if err := w.releaseSandbox(ctx); err != nil {
		w.log().Error(err, "Release broken sandbox failed")
	}
}

func (w *worker) createSandbox(ctx context.Context) error {
	st := w.st
	if err := w.m.cfg.Netns.Create(st.Netns); err != nil {
		return fmt.Errorf("create network namespace %s: %w", st.Netns, err)
	}
	ips, err := w.m.cfg.Network.Add(ctx, w.attachment())
	if err != nil {
		return err
	}
	st.IPs = st.IPs[:0]
	for _, ip := range ips {
		st.IPs = append(st.IPs, ip.String())
	}
	st.NetworkReady = true
	if err := w.save(); err != nil {
		return fmt.Errorf("save sandbox state: %w", err)
	}
	return nil
}

func (w *worker) backoffSandbox() {
	cfg := &w.m.cfg
	if w.sandboxBackoff == 0 {
		w.sandboxBackoff = cfg.SandboxBackoffMin
	} else {
		w.sandboxBackoff *= 2
		if w.sandboxBackoff > cfg.SandboxBackoffMax {
			w.sandboxBackoff = cfg.SandboxBackoffMax
		}
	}
	w.nextSandbox = cfg.Now().Add(w.sandboxBackoff)
}

// releaseSandbox runs CNI DEL and deletes the namespace. A node without
// CNI configuration has nothing to detach from.
func (w *worker) releaseSandbox(ctx context.Context) error {
	st := w.st
	if st.HostNetwork || st.SandboxID == "" {
		return nil
	}
	if err := w.m.cfg.Network.Del(ctx, w.attachment()); err != nil && !errors.Is(err, cni.ErrNotInitialized) {
		if st.NetworkReady {
			return fmt.Errorf("detach sandbox %s: %w", st.SandboxID, err)
		}
		// ADD never completed for this sandbox: like containerd, do not let
		// a failing DEL block the next attempt. Whatever the plugin may
		// still hold for it is released by CNI GC, which no longer lists it.
		w.log().Error(err, "CNI DEL of a sandbox that never became ready failed; dropping it", "sandboxID", st.SandboxID)
	}
	if st.Netns != "" {
		if err := w.m.cfg.Netns.Delete(st.Netns); err != nil {
			return fmt.Errorf("delete sandbox namespace: %w", err)
		}
	}
	st.SandboxID, st.Netns, st.NetworkReady = "", "", false
	if err := w.save(); err != nil {
		return fmt.Errorf("save state after sandbox release: %w", err)
	}
	return nil
}
