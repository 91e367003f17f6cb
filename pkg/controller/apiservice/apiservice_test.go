package apiservice

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
)

const name = "v1beta1.controlplane.antrea.io"

func TestPublish(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	p := Publisher{Client: client.ApiregistrationV1(), Name: name, CABundle: []byte("CA1")}

	_, err := p.Publish(ctx)
	require.ErrorContains(t, err, "get APIService "+name)

	_, err = client.ApiregistrationV1().APIServices().Create(ctx, &apiregv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       apiregv1.APIServiceSpec{Group: "controlplane.antrea.io", Version: "v1beta1", InsecureSkipTLSVerify: true},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	changed, err := p.Publish(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
	got, err := client.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte("CA1"), got.Spec.CABundle)
	assert.False(t, got.Spec.InsecureSkipTLSVerify, "a published bundle replaces skipping verification")

	changed, err = p.Publish(ctx)
	require.NoError(t, err)
	assert.False(t, changed, "an equal bundle is not written again")
}

func TestRunRepairsOverwrittenBundle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewSimpleClientset(&apiregv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: name}})
	p := Publisher{Client: client.ApiregistrationV1(), Name: name, CABundle: []byte("CA1"), Period: 20 * time.Millisecond}
	go p.Run(ctx)
	bundle := func() string {
		got, err := client.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return string(got.Spec.CABundle)
	}
	require.Eventually(t, func() bool { return bundle() == "CA1" }, 5*time.Second, 10*time.Millisecond)
	got, err := client.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	got.Spec.CABundle = []byte("other")
	_, err = client.ApiregistrationV1().APIServices().Update(ctx, got, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return bundle() == "CA1" }, 5*time.Second, 10*time.Millisecond)
}
