package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the controller's objects.
const GroupName = "controlplane.antrea.io"

// SchemeGroupVersion is this version of the group.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1beta1"}

// Resource returns the group-qualified resource of that name.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder registers this version's types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this version's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// NodeNameField is the field selector that narrows every resource to the
// objects one node needs.
const NodeNameField = "nodeName"

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&AppliedToGroup{}, &AppliedToGroupPatch{}, &AppliedToGroupList{},
		&AddressGroup{}, &AddressGroupPatch{}, &AddressGroupList{},
		&NetworkPolicy{}, &NetworkPolicyList{},
		&NodeStatsSummary{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	for _, kind := range []string{"AppliedToGroup", "AddressGroup", "NetworkPolicy"} {
		if err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind(kind), fieldLabel); err != nil {
			return err
		}
	}
	return nil
}

func fieldLabel(label, value string) (string, string, error) {
	switch label {
	case NodeNameField, "metadata.name", "metadata.namespace":
		return label, value, nil
	}
	return "", "", &UnsupportedFieldError{Label: label}
}

// UnsupportedFieldError is returned for a field selector on a field the
// API does not select on.
//
// +protobuf=false
type UnsupportedFieldError struct{ Label string }

func (e *UnsupportedFieldError) Error() string {
	return "field label not supported: " + e.Label + " (supported: nodeName, metadata.name, metadata.namespace)"
}
