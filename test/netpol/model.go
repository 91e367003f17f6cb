package netpol

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// LabelPod is the pod label holding the model name of a pod (a, b, c).
	LabelPod = "pod"
	// LabelNamespace is the namespace label holding the model name of a
	// namespace (x, y, z), whatever its prefix.
	LabelNamespace = "ns"
)

// baseNamespaces, podNames, servedPorts and servedProtocols define the fixed
// topology: every namespace runs every pod, every pod serves every port on
// every protocol.
var (
	baseNamespaces  = []string{"x", "y", "z"}
	podNames        = []string{"a", "b", "c"}
	servedPorts     = []int32{80, 81}
	servedProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
)

// Env says how the model is named in a real cluster.
type Env struct {
	// Prefix is prepended to the base namespace names x, y and z, for
	// instance "np-" gives np-x, np-y and np-z. It may be empty.
	Prefix string
}

// Namespace returns the real name of the base namespace x, y or z.
func (e Env) Namespace(base string) string { return e.Prefix + base }

// PodID names a pod by its real namespace and its name.
type PodID struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (p PodID) String() string { return p.Namespace + "/" + p.Name }

// PodIPs maps the model's pods to their IP address.
type PodIPs map[PodID]string

// Server is one of the servers every pod runs: a port on a protocol.
type Server struct {
	Port     int32
	Protocol corev1.Protocol
}

// PortName is the name of the server's container port, as upstream names it
// (serve-80-tcp, serve-81-udp, serve-80-sctp...).
func (s Server) PortName() string { return PortName(s.Port, s.Protocol) }

// ContainerName is the name of the container running the server.
func (s Server) ContainerName() string {
	return fmt.Sprintf("cont-%d-%s", s.Port, strings.ToLower(string(s.Protocol)))
}

// PortName returns the container port name of a model server.
func PortName(port int32, proto corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
}

// Pod is what the evaluator needs to know about a pod: its identity,
// labels, IP and named container ports.
type Pod struct {
	ID     PodID
	Labels map[string]string
	// IP is only known once the pod runs; the model leaves it empty.
	IP    string
	Ports []corev1.ContainerPort
}

// Model is the fixed topology of the suite: namespaces x, y and z, each with
// pods a, b and c serving ports 80 and 81 on TCP, UDP and SCTP.
type Model struct {
	env  Env
	pods []PodID
}

// NewModel returns the model named according to env.
func NewModel(env Env) *Model {
	m := &Model{env: env}
	for _, ns := range baseNamespaces {
		for _, name := range podNames {
			m.pods = append(m.pods, PodID{Namespace: env.Namespace(ns), Name: name})
		}
	}
	return m
}

// Env returns the naming environment of the model.
func (m *Model) Env() Env { return m.env }

// NS returns the real name of the base namespace x, y or z.
func (m *Model) NS(base string) string { return m.env.Namespace(base) }

// Pod returns the identity of pod name in base namespace x, y or z.
func (m *Model) Pod(base, name string) PodID {
	return PodID{Namespace: m.NS(base), Name: name}
}

// Namespaces returns the real namespace names, in the order x, y, z.
func (m *Model) Namespaces() []string {
	out := make([]string, 0, len(baseNamespaces))
	for _, ns := range baseNamespaces {
		out = append(out, m.NS(ns))
	}
	return out
}

// PodIDs returns the nine pods, in the order x/a, x/b, ..., z/c.
func (m *Model) PodIDs() []PodID { return append([]PodID(nil), m.pods...) }

// Servers returns the servers every pod runs.
func (m *Model) Servers() []Server {
	var out []Server
	for _, port := range servedPorts {
		for _, proto := range servedProtocols {
			out = append(out, Server{Port: port, Protocol: proto})
		}
	}
	return out
}

// ContainerPorts returns the named container ports of every model pod.
func (m *Model) ContainerPorts() []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, s := range m.Servers() {
		out = append(out, corev1.ContainerPort{Name: s.PortName(), ContainerPort: s.Port, Protocol: s.Protocol})
	}
	return out
}

// baseOf returns the base name of a real namespace name, or "" when the
// namespace is not part of the model.
func (m *Model) baseOf(ns string) string {
	for _, base := range baseNamespaces {
		if m.NS(base) == ns {
			return base
		}
	}
	return ""
}

// NamespaceLabels returns the labels a model namespace starts with: ns=x|y|z
// and the apiserver-managed kubernetes.io/metadata.name.
func (m *Model) NamespaceLabels(ns string) map[string]string {
	out := map[string]string{corev1.LabelMetadataName: ns}
	if base := m.baseOf(ns); base != "" {
		out[LabelNamespace] = base
	}
	return out
}

// NamespaceLabelsWith returns the initial labels of ns plus extra.
func (m *Model) NamespaceLabelsWith(ns string, extra map[string]string) map[string]string {
	out := m.NamespaceLabels(ns)
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// PodLabels returns the labels a model pod starts with: pod=a|b|c.
func (m *Model) PodLabels(id PodID) map[string]string {
	return map[string]string{LabelPod: id.Name}
}

// PodLabelsWith returns the initial labels of pod id plus extra.
func (m *Model) PodLabelsWith(id PodID, extra map[string]string) map[string]string {
	out := m.PodLabels(id)
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// Pods returns the evaluator's view of the model pods with their initial
// labels and the given IPs (which may be nil).
func (m *Model) Pods(ips PodIPs) []Pod {
	out := make([]Pod, 0, len(m.pods))
	for _, id := range m.pods {
		out = append(out, Pod{ID: id, Labels: m.PodLabels(id), IP: ips[id], Ports: m.ContainerPorts()})
	}
	return out
}

// World returns the evaluator's view of the model in its initial state
// (initial labels) with the given pod IPs and policies.
func (m *Model) World(ips PodIPs, policies []*networkingv1.NetworkPolicy) *World {
	w := &World{Namespaces: map[string]map[string]string{}, Pods: map[PodID]Pod{}, Policies: policies}
	for _, ns := range m.Namespaces() {
		w.Namespaces[ns] = m.NamespaceLabels(ns)
	}
	for _, p := range m.Pods(ips) {
		w.Pods[p.ID] = p
	}
	return w
}

// NamespaceObject returns the corev1 object of model namespace ns.
func (m *Model) NamespaceObject(ns string) *corev1.Namespace {
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: m.NamespaceLabels(ns)},
	}
}

// ContainerFunc completes the container running server s (image, command,
// environment, probes...). The pod builder has already set its name and its
// single named port.
type ContainerFunc func(s Server, c *corev1.Container)

// PodObject returns the corev1 object of model pod id: one container per
// server, named cont-<port>-<proto>, exposing the port serve-<port>-<proto>.
// fill, which may be nil, completes each container.
func (m *Model) PodObject(id PodID, fill ContainerFunc) *corev1.Pod {
	var grace int64
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name, Labels: m.PodLabels(id)},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: &grace},
	}
	for _, s := range m.Servers() {
		c := corev1.Container{
			Name: s.ContainerName(),
			Ports: []corev1.ContainerPort{{
				Name:          s.PortName(),
				ContainerPort: s.Port,
				Protocol:      s.Protocol,
			}},
		}
		if fill != nil {
			fill(s, &c)
		}
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	return pod
}
