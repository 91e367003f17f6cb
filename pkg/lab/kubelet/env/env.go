// Package env computes a container's environment the way the kubelet does:
// literal values, downward-API field references, ConfigMap and Secret keys,
// envFrom sources, $(VAR) expansion and the in-cluster API variables.
package env

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Cluster values every container sees.
const (
	ServiceHost = "10.96.0.1"
	ServicePort = "443"
)

// Resolver resolves environments against the API.
type Resolver struct {
	Client kubernetes.Interface
	// HostIP and PodIP fill status.hostIP and status.podIP references.
	HostIP string
}

// Resolve returns the container's environment as KEY=VALUE in a stable order.
func (r *Resolver) Resolve(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIP string) ([]string, error) {
	vars := map[string]string{
		"KUBERNETES_SERVICE_HOST": ServiceHost,
		"KUBERNETES_SERVICE_PORT": ServicePort,
		"KUBERNETES_PORT":         "tcp://" + ServiceHost + ":" + ServicePort,
	}
	order := []string{"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_PORT"}
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for i, src := range c.EnvFrom {
		kv, err := r.envFrom(ctx, pod.Namespace, src)
		if err != nil {
			return nil, fmt.Errorf("container %s envFrom[%d]: %w", c.Name, i, err)
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(src.Prefix+k, kv[k])
		}
	}
	for i, e := range c.Env {
		if e.Name == "" {
			return nil, fmt.Errorf("container %s env[%d]: field name is empty", c.Name, i)
		}
		if e.ValueFrom == nil {
			set(e.Name, Expand(e.Value, vars))
			continue
		}
		v, ok, err := r.valueFrom(ctx, pod, e.ValueFrom, podIP)
		if err != nil {
			return nil, fmt.Errorf("container %s env %s: %w", c.Name, e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

// Map turns KEY=VALUE pairs into a map.
func Map(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

func (r *Resolver) envFrom(ctx context.Context, ns string, src corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case src.ConfigMapRef != nil:
		cm, err := r.Client.CoreV1().ConfigMaps(ns).Get(ctx, src.ConfigMapRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && optional(src.ConfigMapRef.Optional) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get configMap %s: %w", src.ConfigMapRef.Name, err)
		}
		return cm.Data, nil
	case src.SecretRef != nil:
		s, err := r.Client.CoreV1().Secrets(ns).Get(ctx, src.SecretRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && optional(src.SecretRef.Optional) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get secret %s: %w", src.SecretRef.Name, err)
		}
		m := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			m[k] = string(v)
		}
		return m, nil
	}
	return nil, fmt.Errorf("needs configMapRef or secretRef")
}

func optional(b *bool) bool { return b != nil && *b }

// valueFrom returns the value, whether to set it, and an error.
func (r *Resolver) valueFrom(ctx context.Context, pod *corev1.Pod, vf *corev1.EnvVarSource, podIP string) (string, bool, error) {
	switch {
	case vf.FieldRef != nil:
		v, err := FieldValue(pod, vf.FieldRef.FieldPath, podIP, r.HostIP)
		return v, err == nil, err
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		cm, err := r.Client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("valueFrom.configMapKeyRef: get configMap %s: %w", ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("valueFrom.configMapKeyRef: configMap %s has no key %q", ref.Name, ref.Key)
		}
		return v, true, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		s, err := r.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("valueFrom.secretKeyRef: get secret %s: %w", ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("valueFrom.secretKeyRef: secret %s has no key %q", ref.Name, ref.Key)
		}
		return string(v), true, nil
	case vf.ResourceFieldRef != nil:
		return "", false, fmt.Errorf("valueFrom.resourceFieldRef is not supported by the lab kubelet")
	}
	return "", false, fmt.Errorf("valueFrom names no source")
}

// FieldValue resolves a downward-API field path.
func FieldValue(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return podIP, nil
	case "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for _, prefix := range []string{"metadata.labels", "metadata.annotations"} {
		if !strings.HasPrefix(path, prefix) {
			continue
		}
		m := pod.Labels
		if prefix == "metadata.annotations" {
			m = pod.Annotations
		}
		rest := strings.TrimPrefix(path, prefix)
		if rest == "" {
			return formatMap(m), nil
		}
		if strings.HasPrefix(rest, "['") && strings.HasSuffix(rest, "']") {
			return m[rest[2:len(rest)-2]], nil
		}
	}
	return "", fmt.Errorf("fieldRef.fieldPath %q is not supported", path)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return strings.Join(lines, "\n")
}

// Expand replaces $(VAR) references with values from vars; $$ escapes a
// dollar and unknown references are kept as they are, as Kubernetes does.
func Expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
