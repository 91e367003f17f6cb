package netpol

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// MemCluster is an in-memory [Cluster] and [Prober] for unit tests and dry
// runs: it keeps labels and policies, validates policies like the
// apiserver would (as far as [ValidatePolicy] goes), and answers probes
// with the evaluator. A probe to a port the pod does not serve fails, as
// it would in a real cluster.
type MemCluster struct {
	mu       sync.RWMutex
	nsLabels map[string]map[string]string
	pods     map[PodID]Pod
	policies map[PolicyRef]*networkingv1.NetworkPolicy
}

var (
	_ Cluster = (*MemCluster)(nil)
	_ Prober  = (*MemCluster)(nil)
)

// NewMemCluster returns the model in its initial state; pod x/a gets IP
// 10.244.1.10, x/b 10.244.1.11, y/a 10.244.2.10 and so on.
func NewMemCluster(m *Model) *MemCluster {
	c := &MemCluster{
		nsLabels: map[string]map[string]string{},
		pods:     map[PodID]Pod{},
		policies: map[PolicyRef]*networkingv1.NetworkPolicy{},
	}
	for i, ns := range m.Namespaces() {
		c.nsLabels[ns] = m.NamespaceLabels(ns)
		for j, name := range podNames {
			id := PodID{Namespace: ns, Name: name}
			c.pods[id] = Pod{ID: id, Labels: m.PodLabels(id), IP: fmt.Sprintf("10.244.%d.%d", i+1, j+10), Ports: m.ContainerPorts()}
		}
	}
	return c
}

// SetPodIP changes the IP of a pod, for instance to test IPv6.
func (c *MemCluster) SetPodIP(pod PodID, ip string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[pod]
	if !ok {
		return fmt.Errorf("set IP: no pod %s", pod)
	}
	p.IP = ip
	c.pods[pod] = p
	return nil
}

// World returns a snapshot of the cluster for the evaluator.
func (c *MemCluster) World() *World {
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := &World{Namespaces: map[string]map[string]string{}, Pods: map[PodID]Pod{}}
	for ns, labels := range c.nsLabels {
		w.Namespaces[ns] = maps.Clone(labels)
	}
	for id, p := range c.pods {
		p.Labels = maps.Clone(p.Labels)
		w.Pods[id] = p
	}
	refs := slices.SortedFunc(maps.Keys(c.policies), func(a, b PolicyRef) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, ref := range refs {
		w.Policies = append(w.Policies, c.policies[ref].DeepCopy())
	}
	return w
}

// ApplyPolicy implements [Cluster].
func (c *MemCluster) ApplyPolicy(_ context.Context, policy *networkingv1.NetworkPolicy) error {
	if err := ValidatePolicy(policy); err != nil {
		return fmt.Errorf("apply policy: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.nsLabels[policy.Namespace]; !ok {
		return fmt.Errorf("apply policy %s/%s: no namespace %s", policy.Namespace, policy.Name, policy.Namespace)
	}
	c.policies[PolicyRef{Namespace: policy.Namespace, Name: policy.Name}] = policy.DeepCopy()
	return nil
}

// DeletePolicy implements [Cluster].
func (c *MemCluster) DeletePolicy(_ context.Context, namespace, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := PolicyRef{Namespace: namespace, Name: name}
	if _, ok := c.policies[ref]; !ok {
		return fmt.Errorf("delete policy %s/%s: not found", namespace, name)
	}
	delete(c.policies, ref)
	return nil
}

// DeleteAllPolicies implements [Cluster].
func (c *MemCluster) DeleteAllPolicies(_ context.Context, namespace string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ref := range c.policies {
		if ref.Namespace == namespace {
			delete(c.policies, ref)
		}
	}
	return nil
}

// SetNamespaceLabels implements [Cluster]; like the apiserver it keeps
// kubernetes.io/metadata.name.
func (c *MemCluster) SetNamespaceLabels(_ context.Context, namespace string, labels map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.nsLabels[namespace]; !ok {
		return fmt.Errorf("set labels: no namespace %s", namespace)
	}
	labels = maps.Clone(labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[corev1.LabelMetadataName] = namespace
	c.nsLabels[namespace] = labels
	return nil
}

// SetPodLabels implements [Cluster].
func (c *MemCluster) SetPodLabels(_ context.Context, pod PodID, labels map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[pod]
	if !ok {
		return fmt.Errorf("set labels: no pod %s", pod)
	}
	p.Labels = maps.Clone(labels)
	c.pods[pod] = p
	return nil
}

// PodIPs implements [Cluster].
func (c *MemCluster) PodIPs(_ context.Context, pods []PodID) (PodIPs, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := PodIPs{}
	for _, id := range pods {
		p, ok := c.pods[id]
		if !ok {
			return nil, fmt.Errorf("pod IPs: no pod %s", id)
		}
		out[id] = p.IP
	}
	return out, nil
}

// WaitRealized implements [Cluster]: changes apply at once.
func (c *MemCluster) WaitRealized(context.Context) error { return nil }

// Probe implements [Prober] with the evaluator.
func (c *MemCluster) Probe(_ context.Context, from, to PodID, ip string, proto corev1.Protocol, port int) (bool, error) {
	w := c.World()
	dst, ok := w.Pods[to]
	if _, ok2 := w.Pods[from]; !ok || !ok2 {
		return false, fmt.Errorf("probe %s -> %s: unknown pod", from, to)
	}
	if dst.IP != ip {
		return false, fmt.Errorf("probe %s -> %s: %s is not the pod's IP %s", from, to, ip, dst.IP)
	}
	served := slices.ContainsFunc(dst.Ports, func(cp corev1.ContainerPort) bool {
		return cp.Protocol == proto && int(cp.ContainerPort) == port
	})
	return served && w.Allowed(from, to, proto, port), nil
}
