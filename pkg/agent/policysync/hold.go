package policysync

import (
	"context"
	"fmt"
	"slices"
	"sync"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// HoldOwnerPrefix prefixes the FlowSyncer owners of hold flows.
const HoldOwnerPrefix = "hold/"

// Flows installs flows by owner.
type Flows interface {
	Sync(ctx context.Context, owner string, category int, flows []of.Flow) error
}

// PodLabels returns the current labels of a pod.
type PodLabels func(ctx context.Context, namespace, name string) (map[string]string, error)

// PoliciesIn returns the Kubernetes NetworkPolicies of a namespace.
type PoliciesIn func(namespace string) ([]*networkingv1.NetworkPolicy, error)

// Holds keeps the port of a new pod that NetworkPolicies select from
// forwarding until this node has realized those policies for it: the
// pod's IP is in an applied-to group of every one of them and the flows of
// that state are installed. It implements podconfig.Admission.
//
// Which policies select the pod is read from the Kubernetes
// NetworkPolicies (a pod selector only selects pods of the policy's own
// namespace) and the pod's labels, so it is known at CNI ADD, before the
// controller has even seen the pod's IP. Until the controller sends the
// policies, the pod stays held: fail closed.
type Holds struct {
	flows    Flows
	labels   PodLabels
	policies PoliciesIn

	mu   sync.Mutex
	held map[string]podconfig.Pod // by container ID
}

var _ podconfig.Admission = (*Holds)(nil)

// NewHolds returns an empty Holds.
func NewHolds(flows Flows, labels PodLabels, policies PoliciesIn) *Holds {
	return &Holds{flows: flows, labels: labels, policies: policies, held: map[string]podconfig.Pod{}}
}

func holdOwner(containerID string) string { return HoldOwnerPrefix + containerID }

// selecting returns the UIDs of the NetworkPolicies that select the pod.
func (h *Holds) selecting(ctx context.Context, p podconfig.Pod) ([]types.UID, error) {
	policies, err := h.policies(p.PodNamespace)
	if err != nil {
		return nil, fmt.Errorf("list NetworkPolicies of %s: %w", p.PodNamespace, err)
	}
	if len(policies) == 0 {
		return nil, nil
	}
	podLabels, err := h.labels(ctx, p.PodNamespace, p.PodName)
	if err != nil {
		return nil, fmt.Errorf("labels of pod %s/%s: %w", p.PodNamespace, p.PodName, err)
	}
	var uids []types.UID
	for _, np := range policies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			continue // the apiserver validates selectors; skip what it let through
		}
		if sel.Matches(labels.Set(podLabels)) {
			uids = append(uids, np.UID)
		}
	}
	return uids, nil
}

// Admit holds the pod's port when NetworkPolicies select it; it runs
// before the pod's forwarding flows are installed.
func (h *Holds) Admit(ctx context.Context, p podconfig.Pod) error {
	uids, err := h.selecting(ctx, p)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	if err := h.flows.Sync(ctx, holdOwner(p.ContainerID), agentof.CategoryPolicy,
		agentof.PodHoldFlows(agentof.PodPort{OFPort: p.OFPort, MAC: p.MAC, IP: p.IP})); err != nil {
		return fmt.Errorf("hold the port of %s/%s: %w", p.PodNamespace, p.PodName, err)
	}
	h.mu.Lock()
	h.held[p.ContainerID] = p
	h.mu.Unlock()
	klog.InfoS("Holding the pod's port until its NetworkPolicies are realized", "pod", klog.KRef(p.PodNamespace, p.PodName), "policies", len(uids))
	return nil
}

// Forget drops the hold of a pod that is going away.
func (h *Holds) Forget(ctx context.Context, p podconfig.Pod) error {
	h.mu.Lock()
	_, ok := h.held[p.ContainerID]
	delete(h.held, p.ContainerID)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	return h.flows.Sync(ctx, holdOwner(p.ContainerID), agentof.CategoryPolicy, nil)
}

// Pending reports how many pods are held.
func (h *Holds) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// Release releases the held pods for which s, a state whose flows are
// installed, realizes every selecting policy.
func (h *Holds) Release(ctx context.Context, s *networkpolicy.State) {
	h.mu.Lock()
	pods := make([]podconfig.Pod, 0, len(h.held))
	for _, p := range h.held {
		pods = append(pods, p)
	}
	h.mu.Unlock()
	if len(pods) == 0 {
		return
	}
	byUID := make(map[types.UID]int, len(s.Policies))
	for i, p := range s.Policies {
		byUID[p.UID] = i
	}
	for _, p := range pods {
		uids, err := h.selecting(ctx, p)
		if err != nil {
			klog.ErrorS(err, "Cannot tell which NetworkPolicies select a held pod; keeping it held", "pod", klog.KRef(p.PodNamespace, p.PodName))
			continue
		}
		if !realizedFor(s, byUID, uids, p) {
			continue
		}
		if err := h.flows.Sync(ctx, holdOwner(p.ContainerID), agentof.CategoryPolicy, nil); err != nil {
			klog.ErrorS(err, "Releasing a held pod failed; retrying later", "pod", klog.KRef(p.PodNamespace, p.PodName))
			continue
		}
		h.mu.Lock()
		delete(h.held, p.ContainerID)
		h.mu.Unlock()
		klog.InfoS("Released the pod's port: its NetworkPolicies are realized", "pod", klog.KRef(p.PodNamespace, p.PodName))
	}
}

// realizedFor reports whether s applies each policy of uids to pod p.
func realizedFor(s *networkpolicy.State, byUID map[types.UID]int, uids []types.UID, p podconfig.Pod) bool {
	if len(uids) == 0 {
		return true
	}
	if port, ok := s.LocalPods[p.IP]; !ok || port != p.OFPort {
		return false
	}
	ip := p.IP.String()
	for _, uid := range uids {
		i, ok := byUID[uid]
		if !ok {
			return false
		}
		found := false
		for _, name := range s.Policies[i].AppliedToGroups {
			g := s.AppliedToGroups[name]
			if g == nil {
				continue
			}
			for _, m := range g.Members {
				if m.Pod.Namespace == p.PodNamespace && m.Pod.Name == p.PodName && slices.Contains(m.IPs, ip) {
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found || !peersKnown(s, s.Policies[i]) {
			return false
		}
	}
	return true
}

// peersKnown reports whether s has every address group the rules of p
// name: without one, the rule allows nobody yet, and releasing the pod
// would deny what the policy allows.
func peersKnown(s *networkpolicy.State, p *controlplane.NetworkPolicy) bool {
	for _, r := range p.Rules {
		for _, name := range slices.Concat(r.From.AddressGroups, r.To.AddressGroups) {
			if s.AddressGroups[name] == nil {
				return false
			}
		}
	}
	return true
}
