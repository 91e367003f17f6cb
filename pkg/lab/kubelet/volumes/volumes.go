// Package volumes materializes pod volumes (configMap, secret, projected,
// downwardAPI, emptyDir, hostPath) as host folders below the pod's state
// directory and computes the bind mounts of each container.
package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/env"
)

// RootCAConfigMap is published in every namespace by kube-controller-manager.
const RootCAConfigMap = "kube-root-ca.crt"

// Set is the result of materializing a pod's volumes.
type Set struct {
	// Paths maps volume names to host paths.
	Paths map[string]string
	// Unsupported names volumes the lab cannot provide, with the reason.
	Unsupported []string
	// RefreshAt is when service account tokens need renewing (zero: never).
	RefreshAt time.Time
}

// Mount is one bind mount of a container.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// Materializer writes volumes using the API for their content.
type Materializer struct {
	Client kubernetes.Interface
	Now    func() time.Time
}

// Prepare materializes every volume of pod below podDir/volumes.
func (m *Materializer) Prepare(ctx context.Context, pod *corev1.Pod, podDir string) (Set, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	set := Set{Paths: map[string]string{}}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := filepath.Join(podDir, "volumes", v.Name)
		var err error
		switch {
		case v.HostPath != nil:
			err = prepareHostPath(v.HostPath)
			if err == nil {
				set.Paths[v.Name] = v.HostPath.Path
			}
			if err != nil {
				return set, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			continue
		case v.EmptyDir != nil:
			err = os.MkdirAll(dir, 0o777)
		case v.ConfigMap != nil:
			err = m.configMap(ctx, pod.Namespace, dir, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		case v.Secret != nil:
			err = m.secret(ctx, pod.Namespace, dir, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
		case v.DownwardAPI != nil:
			err = writeDownward(pod, dir, v.DownwardAPI.Items)
		case v.Projected != nil:
			var refresh time.Time
			refresh, err = m.projected(ctx, pod, dir, v.Projected, now())
			if !refresh.IsZero() && (set.RefreshAt.IsZero() || refresh.Before(set.RefreshAt)) {
				set.RefreshAt = refresh
			}
		default:
			set.Unsupported = append(set.Unsupported, fmt.Sprintf("volume %s: only configMap, secret, projected, downwardAPI, emptyDir and hostPath volumes are supported", v.Name))
			continue
		}
		if err != nil {
			return set, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		set.Paths[v.Name] = dir
	}
	return set, nil
}

func prepareHostPath(hp *corev1.HostPathVolumeSource) error {
	if !filepath.IsAbs(hp.Path) {
		return fmt.Errorf("hostPath.path %q is not absolute", hp.Path)
	}
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	fi, statErr := os.Stat(hp.Path)
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		if err := os.MkdirAll(hp.Path, 0o755); err != nil {
			return fmt.Errorf("create hostPath directory %s: %w", hp.Path, err)
		}
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
			return fmt.Errorf("create parent of hostPath file %s: %w", hp.Path, err)
		}
		f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create hostPath file %s: %w", hp.Path, err)
		}
		f.Close()
	case corev1.HostPathDirectory:
		if statErr != nil || !fi.IsDir() {
			return fmt.Errorf("hostPath.type Directory: %s is not a directory", hp.Path)
		}
	case corev1.HostPathFile:
		if statErr != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath.type File: %s is not a file", hp.Path)
		}
	case corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
		if statErr != nil {
			return fmt.Errorf("hostPath.type %s: %s does not exist", t, hp.Path)
		}
	case corev1.HostPathUnset:
		// Kubernetes mounts whatever is there; a missing path fails the mount.
		if statErr != nil {
			if err := os.MkdirAll(hp.Path, 0o755); err != nil {
				return fmt.Errorf("create hostPath %s: %w", hp.Path, err)
			}
		}
	default:
		return fmt.Errorf("hostPath.type %q is not supported", t)
	}
	return nil
}

func optional(b *bool) bool { return b != nil && *b }

func (m *Materializer) configMapData(ctx context.Context, ns, name string, opt *bool) (map[string][]byte, error) {
	cm, err := m.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional(opt) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get configMap %s/%s: %w", ns, name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data, nil
}

func (m *Materializer) secretData(ctx context.Context, ns, name string, opt *bool) (map[string][]byte, error) {
	s, err := m.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional(opt) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", ns, name, err)
	}
	return s.Data, nil
}

func (m *Materializer) configMap(ctx context.Context, ns, dir, name string, items []corev1.KeyToPath, opt *bool) error {
	data, err := m.configMapData(ctx, ns, name, opt)
	if err != nil {
		return err
	}
	return writeItems(dir, data, items, opt)
}

func (m *Materializer) secret(ctx context.Context, ns, dir, name string, items []corev1.KeyToPath, opt *bool) error {
	data, err := m.secretData(ctx, ns, name, opt)
	if err != nil {
		return err
	}
	return writeItems(dir, data, items, opt)
}

// writeItems writes every key, or only items when given.
func writeItems(dir string, data map[string][]byte, items []corev1.KeyToPath, opt *bool) error {
	if len(items) == 0 {
		for k, v := range data {
			if err := WriteFile(dir, k, v); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional(opt) {
				continue
			}
			return fmt.Errorf("items: key %q not found", it.Key)
		}
		if err := WriteFile(dir, it.Path, v); err != nil {
			return err
		}
	}
	return nil
}

func writeDownward(pod *corev1.Pod, dir string, items []corev1.DownwardAPIVolumeFile) error {
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI item %s: only fieldRef is supported", it.Path)
		}
		v, err := env.FieldValue(pod, it.FieldRef.FieldPath, pod.Status.PodIP, pod.Status.HostIP)
		if err != nil {
			return fmt.Errorf("downwardAPI item %s: %w", it.Path, err)
		}
		if err := WriteFile(dir, it.Path, []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

func (m *Materializer) projected(ctx context.Context, pod *corev1.Pod, dir string, p *corev1.ProjectedVolumeSource, now time.Time) (time.Time, error) {
	var refresh time.Time
	for i, src := range p.Sources {
		var err error
		switch {
		case src.ServiceAccountToken != nil:
			var r time.Time
			r, err = m.token(ctx, pod, dir, src.ServiceAccountToken, now)
			if refresh.IsZero() || r.Before(refresh) {
				refresh = r
			}
		case src.ConfigMap != nil:
			err = m.configMap(ctx, pod.Namespace, dir, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
		case src.Secret != nil:
			err = m.secret(ctx, pod.Namespace, dir, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
		case src.DownwardAPI != nil:
			err = writeDownward(pod, dir, src.DownwardAPI.Items)
		default:
			err = fmt.Errorf("projected source %d: only serviceAccountToken, configMap, secret and downwardAPI are supported", i)
		}
		if err != nil {
			return refresh, err
		}
	}
	return refresh, nil
}

func (m *Materializer) token(ctx context.Context, pod *corev1.Pod, dir string, t *corev1.ServiceAccountTokenProjection, now time.Time) (time.Time, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3607)
	if t.ExpirationSeconds != nil && *t.ExpirationSeconds > 0 {
		exp = *t.ExpirationSeconds
	}
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if t.Audience != "" {
		req.Spec.Audiences = []string{t.Audience}
	}
	tr, err := m.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("request token of service account %s/%s: %w", pod.Namespace, sa, err)
	}
	if err := WriteFile(dir, t.Path, []byte(tr.Status.Token)); err != nil {
		return time.Time{}, err
	}
	life := time.Duration(exp) * time.Second
	if !tr.Status.ExpirationTimestamp.IsZero() {
		life = tr.Status.ExpirationTimestamp.Sub(now)
	}
	return now.Add(life * 8 / 10), nil
}

// WriteFile writes rel below dir atomically, refusing paths that leave dir.
func WriteFile(dir, rel string, data []byte) error {
	clean := filepath.Clean(rel)
	if rel == "" || filepath.IsAbs(rel) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("file path %q must be relative and stay inside the volume", rel)
	}
	path := filepath.Join(dir, clean)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create folder of %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("commit %s: %w", path, err)
	}
	return nil
}

// Mounts returns the bind mounts of container c given the volumes in set.
// Mounts of unsupported volumes are returned in skipped.
func Mounts(c *corev1.Container, set Set) (mounts []Mount, skipped []string, err error) {
	for _, vm := range c.VolumeMounts {
		src, ok := set.Paths[vm.Name]
		if !ok {
			skipped = append(skipped, vm.Name)
			continue
		}
		if !filepath.IsAbs(vm.MountPath) {
			return nil, nil, fmt.Errorf("container %s volumeMount %s: field mountPath %q is not absolute", c.Name, vm.Name, vm.MountPath)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			return nil, nil, fmt.Errorf("container %s volumeMount %s: field subPathExpr is not supported", c.Name, vm.Name)
		}
		if sub != "" {
			clean := filepath.Clean(sub)
			if filepath.IsAbs(sub) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, nil, fmt.Errorf("container %s volumeMount %s: field subPath %q must stay inside the volume", c.Name, vm.Name, sub)
			}
			src = filepath.Join(src, clean)
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, nil, fmt.Errorf("container %s volumeMount %s: create subPath: %w", c.Name, vm.Name, err)
				}
			}
		}
		mounts = append(mounts, Mount{Source: src, Target: filepath.Clean(vm.MountPath), ReadOnly: vm.ReadOnly})
	}
	return mounts, skipped, nil
}

// MissingPaths returns the path components of target that do not exist,
// outermost first: the ones a bind mount onto target would create.
func MissingPaths(target string) []string {
	var missing []string
	for p := filepath.Clean(target); p != "/" && p != "."; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append([]string{p}, missing...)
	}
	return missing
}
