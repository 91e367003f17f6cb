package env

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func field(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
}

func TestResolve(t *testing.T) {
	optional := true
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "kube-system"}, Data: map[string]string{"mode": "encap", "a": "1"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "kube-system"}, Data: map[string][]byte{"token": []byte("s3cret")}},
	)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "antrea-agent-x", Namespace: "kube-system", UID: "u1"},
		Spec:       corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "antrea-agent"},
	}
	r := &Resolver{Client: client, HostIP: "172.18.0.11"}
	tests := []struct {
		name    string
		env     []corev1.EnvVar
		envFrom []corev1.EnvFromSource
		want    map[string]string
		wantErr string
	}{
		{name: "fieldRefs", env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: "NODE_NAME", ValueFrom: field("spec.nodeName")},
			{Name: "POD_IP", ValueFrom: field("status.podIP")},
			{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
			{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
		}, want: map[string]string{"POD_NAME": "antrea-agent-x", "POD_NAMESPACE": "kube-system", "NODE_NAME": "node-1",
			"POD_IP": "10.10.1.5", "HOST_IP": "172.18.0.11", "SA": "antrea-agent",
			"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}},
		{name: "configMap and secret keys", env: []corev1.EnvVar{
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "x", Optional: &optional}}},
		}, want: map[string]string{"MODE": "encap", "TOKEN": "s3cret"}},
		{name: "expansion", env: []corev1.EnvVar{
			{Name: "A", Value: "x"}, {Name: "B", Value: "$(A)-$(NOPE)-$$(A)"},
		}, want: map[string]string{"B": "x-$(NOPE)-$(A)"}},
		{name: "envFrom with prefix", envFrom: []corev1.EnvFromSource{{Prefix: "C_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			want: map[string]string{"C_mode": "encap", "C_a": "1"}},
		{name: "missing key names it", env: []corev1.EnvVar{
			{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "nope"}}},
		}, wantErr: `container c env X: valueFrom.configMapKeyRef: configMap cfg has no key "nope"`},
		{name: "unsupported field", env: []corev1.EnvVar{{Name: "X", ValueFrom: field("spec.hostname")}},
			wantErr: `fieldRef.fieldPath "spec.hostname" is not supported`},
		{name: "resourceFieldRef", env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}},
			wantErr: "resourceFieldRef is not supported"},
		{name: "empty name", env: []corev1.EnvVar{{Value: "x"}}, wantErr: "env[0]: field name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Name: "c", Env: tt.env, EnvFrom: tt.envFrom}
			got, err := r.Resolve(context.Background(), pod, c, "10.10.1.5")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			m := Map(got)
			for k, v := range tt.want {
				assert.Equal(t, v, m[k], k)
			}
			_, hasOpt := m["OPT"]
			assert.False(t, hasOpt, "optional missing configMap sets nothing")
		})
	}
}

func TestFieldValueLabels(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "fe"}}}
	v, err := FieldValue(pod, "metadata.labels['app']", "", "")
	require.NoError(t, err)
	assert.Equal(t, "web", v)
	v, err = FieldValue(pod, "metadata.labels", "", "")
	require.NoError(t, err)
	assert.Equal(t, "app=\"web\"\ntier=\"fe\"", v)
}
