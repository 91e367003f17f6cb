// Package node registers the lab kubelet's Node, keeps its Ready condition
// in line with the CNI plugin status, and renews its heartbeat Lease.
package node

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// RuntimeVersion is reported as the node's container runtime.
const RuntimeVersion = "antrea-lab://0.1"

// LeaseNamespace holds node heartbeat leases.
const LeaseNamespace = "kube-node-lease"

// Config of the node agent.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	NodeIP   string
	// NetworkStatus returns nil when the CNI plugin is ready.
	NetworkStatus func(ctx context.Context) error
	// Periods; zero means the defaults 10 s, 10 s and 1 s.
	LeasePeriod     time.Duration
	HeartbeatPeriod time.Duration
	ReadinessPoll   time.Duration
	// Now is the clock, time.Now when nil.
	Now func() time.Time
}

// Agent keeps the Node and its Lease up to date.
type Agent struct {
	cfg            Config
	kubeletVersion string
	ready          error
	readyKnown     bool
	lastHeartbeat  time.Time
	nodeUID        string
}

// New checks cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("node agent: field client is nil")
	case cfg.NodeName == "":
		return nil, errors.New("node agent: field nodeName is empty")
	case cfg.NodeIP == "":
		return nil, errors.New("node agent: field nodeIP is empty")
	case cfg.NetworkStatus == nil:
		return nil, errors.New("node agent: field networkStatus is nil")
	}
	if cfg.LeasePeriod <= 0 {
		cfg.LeasePeriod = 10 * time.Second
	}
	if cfg.HeartbeatPeriod <= 0 {
		cfg.HeartbeatPeriod = 10 * time.Second
	}
	if cfg.ReadinessPoll <= 0 {
		cfg.ReadinessPoll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Agent{cfg: cfg}, nil
}

// Register creates the Node, or adopts an existing one, and writes its
// initial status.
func (a *Agent) Register(ctx context.Context) error {
	v, err := a.cfg.Client.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("get API server version: %w", err)
	}
	a.kubeletVersion = v.GitVersion
	nodes := a.cfg.Client.CoreV1().Nodes()
	n, err := nodes.Create(ctx, a.newNode(), metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		n, err = nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get existing node %s: %w", a.cfg.NodeName, err)
		}
		if a.mergeLabels(n) {
			if n, err = nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update labels of node %s: %w", a.cfg.NodeName, err)
			}
		}
		klog.InfoS("Adopted existing node", "node", a.cfg.NodeName)
	case err != nil:
		return fmt.Errorf("create node %s: %w", a.cfg.NodeName, err)
	default:
		klog.InfoS("Registered node", "node", a.cfg.NodeName)
	}
	a.nodeUID = string(n.UID)
	a.ready = a.cfg.NetworkStatus(ctx)
	a.readyKnown = true
	return a.updateStatus(ctx)
}

func (a *Agent) labels() map[string]string {
	return map[string]string{
		"kubernetes.io/hostname": a.cfg.NodeName,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     runtime.GOARCH,
	}
}

func (a *Agent) mergeLabels(n *corev1.Node) bool {
	changed := false
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	for k, v := range a.labels() {
		if n.Labels[k] != v {
			n.Labels[k] = v
			changed = true
		}
	}
	return changed
}

func (a *Agent) newNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: a.labels()},
	}
}

// Resources every lab node advertises.
func Resources() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("4"),
		corev1.ResourceMemory:           resource.MustParse("8Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}
}

// Conditions computes the node conditions for a network status; times are
// taken from old when a condition's status did not change.
func Conditions(old []corev1.NodeCondition, network error, now metav1.Time) []corev1.NodeCondition {
	readyStatus, reason, msg := corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
	if network != nil {
		readyStatus, reason = corev1.ConditionFalse, "KubeletNotReady"
		msg = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: " + network.Error()
	}
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: corev1.NodeReady, Status: readyStatus, Reason: reason, Message: msg},
	}
	for i := range want {
		want[i].LastHeartbeatTime = now
		want[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == want[i].Type && o.Status == want[i].Status && !o.LastTransitionTime.IsZero() {
				want[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	// Keep conditions other components own.
	for _, o := range old {
		switch o.Type {
		case corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeReady:
		default:
			want = append(want, o)
		}
	}
	return want
}

func (a *Agent) updateStatus(ctx context.Context) error {
	nodes := a.cfg.Client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", a.cfg.NodeName, err)
	}
	now := metav1.NewTime(a.cfg.Now().Truncate(time.Second))
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
		{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
	}
	n.Status.Capacity = Resources()
	n.Status.Allocatable = Resources()
	n.Status.NodeInfo.KubeletVersion = a.kubeletVersion
	n.Status.NodeInfo.ContainerRuntimeVersion = RuntimeVersion
	n.Status.NodeInfo.OperatingSystem = "linux"
	n.Status.NodeInfo.Architecture = runtime.GOARCH
	n.Status.Conditions = Conditions(n.Status.Conditions, a.ready, now)
	if _, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of node %s: %w", a.cfg.NodeName, err)
	}
	a.lastHeartbeat = a.cfg.Now()
	return nil
}

// RenewLease creates or renews the node's Lease.
func (a *Agent) RenewLease(ctx context.Context) error {
	leases := a.cfg.Client.CoordinationV1().Leases(LeaseNamespace)
	now := metav1.NewMicroTime(a.cfg.Now())
	holder := a.cfg.NodeName
	dur := int32(40)
	l, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: LeaseNamespace},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		if a.nodeUID != "" {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(a.nodeUID)}}
		}
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create lease %s/%s: %w", LeaseNamespace, a.cfg.NodeName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get lease %s/%s: %w", LeaseNamespace, a.cfg.NodeName, err)
	}
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &dur
	l.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew lease %s/%s: %w", LeaseNamespace, a.cfg.NodeName, err)
	}
	return nil
}

// Tick checks the network status and posts node status when readiness
// changed or the heartbeat period passed. It reports whether it posted.
func (a *Agent) Tick(ctx context.Context) (bool, error) {
	st := a.cfg.NetworkStatus(ctx)
	changed := !a.readyKnown || (st == nil) != (a.ready == nil) ||
		(st != nil && a.ready != nil && st.Error() != a.ready.Error())
	a.ready, a.readyKnown = st, true
	if !changed && a.cfg.Now().Sub(a.lastHeartbeat) < a.cfg.HeartbeatPeriod {
		return false, nil
	}
	if changed {
		klog.InfoS("Node network readiness changed", "node", a.cfg.NodeName, "ready", st == nil, "err", st)
	}
	return true, a.updateStatus(ctx)
}

// Run renews the lease and posts status until ctx ends.
func (a *Agent) Run(ctx context.Context) {
	if err := a.RenewLease(ctx); err != nil {
		klog.ErrorS(err, "Lease renewal failed")
	}
	lease := time.NewTicker(a.cfg.LeasePeriod)
	defer lease.Stop()
	poll := time.NewTicker(a.cfg.ReadinessPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := a.RenewLease(ctx); err != nil {
				klog.ErrorS(err, "Lease renewal failed")
			}
		case <-poll.C:
			if _, err := a.Tick(ctx); err != nil {
				klog.ErrorS(err, "Node status update failed")
			}
		}
	}
}
