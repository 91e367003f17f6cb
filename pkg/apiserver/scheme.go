package apiserver

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
)

var (
	// Scheme knows the served types. They have no internal version of their
	// own: the storage builds v1beta1 objects straight from the
	// controller's objects, so the v1beta1 types are also registered as
	// the internal version and conversion between the two is the identity.
	Scheme = runtime.NewScheme()
	// Codecs serialize the served types (JSON, YAML, protobuf).
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	utilruntime.Must(v1beta1.AddToScheme(Scheme))
	internal := schema.GroupVersion{Group: v1beta1.GroupName, Version: runtime.APIVersionInternal}
	Scheme.AddKnownTypes(internal,
		&v1beta1.AppliedToGroup{}, &v1beta1.AppliedToGroupPatch{}, &v1beta1.AppliedToGroupList{},
		&v1beta1.AddressGroup{}, &v1beta1.AddressGroupPatch{}, &v1beta1.AddressGroupList{},
		&v1beta1.NetworkPolicy{}, &v1beta1.NetworkPolicyList{},
		&v1beta1.NodeStatsSummary{},
	)
	utilruntime.Must(statsv1alpha1.AddToScheme(Scheme))
	Scheme.AddKnownTypes(schema.GroupVersion{Group: statsv1alpha1.GroupName, Version: runtime.APIVersionInternal},
		&statsv1alpha1.NetworkPolicyStats{}, &statsv1alpha1.NetworkPolicyStatsList{})
	// What every API server serves without a group: status, discovery and
	// the options of get, list and watch.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}
