package networkpolicy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// The informers' caches keep only what the computation reads. Their
// transforms replace each object as it arrives, before it is stored, so
// the cache holds a few hundred bytes per pod instead of the whole object
// (a real Pod, with its spec, status and managedFields, is tens of KiB),
// and the list the object came in can be freed.

// pod is what the controller keeps of a Pod.
type pod struct {
	// ObjectMeta holds only the name, namespace, UID, resourceVersion
	// and labels.
	metav1.ObjectMeta
	NodeName    string
	HostNetwork bool
	Phase       corev1.PodPhase
	// IPs are the pod's IPs, the primary one first; Ports its named
	// container ports.
	IPs   []string
	Ports []controlplane.NamedPort
}

var _ runtime.Object = &pod{}

// GetObjectKind implements runtime.Object: a pod carries no kind.
func (p *pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (p *pod) DeepCopyObject() runtime.Object {
	c := *p
	c.ObjectMeta = *p.ObjectMeta.DeepCopy()
	c.IPs = slices.Clone(p.IPs)
	c.Ports = slices.Clone(p.Ports)
	return &c
}

// slimMeta keeps the identity and the labels of an object's metadata. The
// labels map is shared, not copied: an informer owns the objects it
// transforms.
func slimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID,
		ResourceVersion: m.ResourceVersion, Generation: m.Generation,
		Labels: m.Labels,
	}
}

// podFromObject returns the pod of an informer object: a *pod as the
// transform made it, or a *corev1.Pod where no transform ran.
func podFromObject(obj any) (*pod, bool) {
	switch o := obj.(type) {
	case *pod:
		return o, true
	case *corev1.Pod:
		return slimPod(o), true
	}
	return nil, false
}

func slimPod(p *corev1.Pod) *pod {
	return &pod{
		ObjectMeta:  slimMeta(&p.ObjectMeta),
		NodeName:    p.Spec.NodeName,
		HostNetwork: p.Spec.HostNetwork,
		Phase:       p.Status.Phase,
		IPs:         podIPs(p),
		Ports:       namedPorts(p),
	}
}

// podIPs returns the IPs of a pod, none before it has one.
func podIPs(p *corev1.Pod) []string {
	if len(p.Status.PodIPs) == 0 {
		if p.Status.PodIP == "" {
			return nil
		}
		return []string{p.Status.PodIP}
	}
	ips := make([]string, 0, len(p.Status.PodIPs))
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	return ips
}

// namedPorts returns the named container ports of a pod.
func namedPorts(p *corev1.Pod) []controlplane.NamedPort {
	var ports []controlplane.NamedPort
	for i := range p.Spec.Containers {
		for _, cp := range p.Spec.Containers[i].Ports {
			if cp.Name == "" {
				continue
			}
			proto := controlplane.ProtocolTCP
			if cp.Protocol != "" {
				proto = controlplane.Protocol(cp.Protocol)
			}
			ports = append(ports, controlplane.NamedPort{Name: cp.Name, Port: cp.ContainerPort, Protocol: proto})
		}
	}
	return ports
}

// transformPod is the pod informer's transform.
func transformPod(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		return slimPod(p), nil
	}
	return obj, nil
}

// transformNamespace keeps a namespace's identity and labels.
func transformNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok || (ns.Annotations == nil && ns.ManagedFields == nil && ns.OwnerReferences == nil && len(ns.Spec.Finalizers) == 0 && ns.Status.Phase == "") {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: slimMeta(&ns.ObjectMeta)}, nil
}

// transformPolicy keeps a NetworkPolicy's identity and spec (no
// annotations, such as kubectl's last-applied-configuration, no
// managedFields).
func transformPolicy(obj any) (any, error) {
	np, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok || (np.Annotations == nil && np.ManagedFields == nil && np.OwnerReferences == nil && np.Finalizers == nil) {
		return obj, nil
	}
	return &networkingv1.NetworkPolicy{ObjectMeta: slimMeta(&np.ObjectMeta), Spec: np.Spec}, nil
}

// asPod renders a kept pod as a Pod with only what the controller keeps:
// identity, labels, node, host network, phase and IPs.
func (p *pod) asPod() *corev1.Pod {
	out := &corev1.Pod{ObjectMeta: *p.ObjectMeta.DeepCopy()}
	out.Spec.NodeName = p.NodeName
	out.Spec.HostNetwork = p.HostNetwork
	out.Status.Phase = p.Phase
	for i, ip := range p.IPs {
		if i == 0 {
			out.Status.PodIP = ip
		}
		out.Status.PodIPs = append(out.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return out
}
