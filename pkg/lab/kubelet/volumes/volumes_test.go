package volumes

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestPrepare(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "antrea-config", Namespace: "kube-system"}, Data: map[string]string{"antrea-agent.conf": "a: 1"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap, Namespace: "kube-system"}, Data: map[string]string{"ca.crt": "CA"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "kube-system"}, Data: map[string][]byte{"tls.crt": []byte("CRT")}},
	)
	var gotReq *authv1.TokenRequest
	client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		gotReq = ca.GetObject().(*authv1.TokenRequest)
		out := gotReq.DeepCopy()
		out.Status.Token = "jwt"
		return true, out, nil
	})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Materializer{Client: client, Now: func() time.Time { return now }}
	exp := int64(3607)
	host := filepath.Join(t.TempDir(), "host", "run")
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", UID: "u1"},
		Spec: corev1.PodSpec{ServiceAccountName: "antrea-agent", Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "antrea-config"}}}},
			{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls", Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "sub/cert.pem"}}}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "run", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: &dirOrCreate}}},
			{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
			{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}},
		}},
	}
	podDir := t.TempDir()
	set, err := m.Prepare(context.Background(), pod, podDir)
	require.NoError(t, err)
	vol := func(n string) string { return filepath.Join(podDir, "volumes", n) }
	assert.Equal(t, "a: 1", read(t, filepath.Join(vol("config"), "antrea-agent.conf")))
	assert.Equal(t, "CRT", read(t, filepath.Join(vol("certs"), "sub/cert.pem")))
	assert.DirExists(t, vol("scratch"))
	assert.DirExists(t, host)
	assert.Equal(t, host, set.Paths["run"])
	assert.Equal(t, "jwt", read(t, filepath.Join(vol("kube-api-access-x"), "token")))
	assert.Equal(t, "CA", read(t, filepath.Join(vol("kube-api-access-x"), "ca.crt")))
	assert.Equal(t, "kube-system", read(t, filepath.Join(vol("kube-api-access-x"), "namespace")))
	require.NotNil(t, gotReq)
	assert.Equal(t, "u1", string(gotReq.Spec.BoundObjectRef.UID))
	assert.Equal(t, "Pod", gotReq.Spec.BoundObjectRef.Kind)
	assert.Equal(t, now.Add(3607*time.Second*8/10), set.RefreshAt)
	require.Len(t, set.Unsupported, 1)
	assert.Contains(t, set.Unsupported[0], "volume pvc")
	_, ok := set.Paths["pvc"]
	assert.False(t, ok)
}

func TestPrepareErrors(t *testing.T) {
	m := &Materializer{Client: fake.NewClientset()}
	fileType := corev1.HostPathFile
	tests := []struct {
		name    string
		vol     corev1.Volume
		wantErr string
	}{
		{"missing configMap", corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}}, "volume c: get configMap ns/nope"},
		{"relative hostPath", corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "rel"}}}, `volume h: hostPath.path "rel" is not absolute`},
		{"missing file", corev1.Volume{Name: "f", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/nonexistent/file", Type: &fileType}}}, "hostPath.type File"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{tt.vol}}}
			_, err := m.Prepare(context.Background(), pod, t.TempDir())
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestWriteFileStaysInside(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x"} {
		assert.Error(t, WriteFile(dir, bad, []byte("x")), bad)
	}
	require.NoError(t, WriteFile(dir, "a/b", []byte("x")))
}

func TestMounts(t *testing.T) {
	vol := t.TempDir()
	set := Set{Paths: map[string]string{"config": vol}}
	c := &corev1.Container{Name: "agent", VolumeMounts: []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/antrea", ReadOnly: true},
		{Name: "config", MountPath: "/etc/antrea/sub", SubPath: "nested"},
		{Name: "pvc", MountPath: "/data"},
	}}
	mounts, skipped, err := Mounts(c, set)
	require.NoError(t, err)
	assert.Equal(t, []Mount{{Source: vol, Target: "/etc/antrea", ReadOnly: true}, {Source: filepath.Join(vol, "nested"), Target: "/etc/antrea/sub"}}, mounts)
	assert.Equal(t, []string{"pvc"}, skipped)
	assert.DirExists(t, filepath.Join(vol, "nested"))

	c.VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/x", SubPath: "../escape"}}
	_, _, err = Mounts(c, set)
	require.ErrorContains(t, err, "field subPath")
}

func TestMissingPaths(t *testing.T) {
	base := t.TempDir()
	got := MissingPaths(filepath.Join(base, "a", "b", "c"))
	assert.Equal(t, []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), filepath.Join(base, "a", "b", "c")}, got)
	assert.Empty(t, MissingPaths(base))
}
