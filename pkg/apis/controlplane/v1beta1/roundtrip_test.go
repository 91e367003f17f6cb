package v1beta1

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const (
	mediaTypeJSON     = runtime.ContentTypeJSON
	mediaTypeProtobuf = runtime.ContentTypeProtobuf
)

// protobufMagic prefixes every object the Kubernetes protobuf serializer
// writes.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, AddToScheme(scheme))
	return scheme
}

// objectMeta is metadata with every field the round trip must keep; times
// are whole seconds because JSON drops the rest.
func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace:         namespace,
		Name:              name,
		UID:               types.UID("6c9a3f1e-1f2b-4f3c-9d2a-" + name),
		ResourceVersion:   "42",
		Generation:        3,
		CreationTimestamp: metav1.Unix(1700000000, 0),
		Labels:            map[string]string{"app": "web"},
		Annotations:       map[string]string{"note": "round trip"},
	}
}

func listMeta() metav1.ListMeta {
	return metav1.ListMeta{ResourceVersion: "43", Continue: "next-page"}
}

func members(node string) []GroupMember {
	return []GroupMember{
		{
			Pod:  PodReference{Namespace: "ns1", Name: "web-0"},
			Node: node,
			IPs:  []string{"10.10.0.5", "fd00:10:10::5"},
			Ports: []NamedPort{
				{Name: "http", Port: 8080, Protocol: ProtocolTCP},
				{Name: "dns", Port: 5353, Protocol: ProtocolUDP},
			},
		},
		{
			Pod:   PodReference{Namespace: "ns1", Name: "web-1"},
			Node:  node,
			IPs:   []string{"10.10.0.6"},
			Ports: []NamedPort{{Name: "assoc", Port: 3868, Protocol: ProtocolSCTP}},
		},
	}
}

func appliedToGroup(name string) AppliedToGroup {
	return AppliedToGroup{ObjectMeta: objectMeta("", name), Members: members("node-1")}
}

func addressGroup(name string) AddressGroup {
	return AddressGroup{ObjectMeta: objectMeta("", name), Members: members("node-2")}
}

func networkPolicy(name string) NetworkPolicy {
	return NetworkPolicy{
		ObjectMeta: objectMeta("ns1", name),
		Rules: []NetworkPolicyRule{
			{
				Direction: DirectionIn,
				From: NetworkPolicyPeer{
					AddressGroups: []string{"ag-1", "ag-2"},
					IPBlocks: []IPBlock{
						{CIDR: "192.168.0.0/16", Except: []string{"192.168.1.0/24", "192.168.2.0/24"}},
						{CIDR: "fd00::/64"},
					},
				},
				Services: []Service{
					{Protocol: ProtocolTCP, Port: ptr.To(intstr.FromInt32(80))},
					{Protocol: ProtocolTCP, Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](9000)},
					{Protocol: ProtocolUDP, Port: ptr.To(intstr.FromString("dns"))},
					{Protocol: ProtocolSCTP},
				},
			},
			{
				Direction: DirectionOut,
				To: NetworkPolicyPeer{
					AddressGroups: []string{"ag-3"},
					IPBlocks:      []IPBlock{{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}},
				},
				Services: []Service{{Protocol: ProtocolUDP, Port: ptr.To(intstr.FromInt32(53))}},
			},
		},
		AppliedToGroups: []string{"atg-1", "atg-2"},
		PolicyTypes:     []Direction{DirectionIn, DirectionOut},
	}
}

func roundTripObjects() []struct {
	kind string
	obj  runtime.Object
} {
	atg, ag, np := appliedToGroup("atg-1"), addressGroup("ag-1"), networkPolicy("np-1")
	return []struct {
		kind string
		obj  runtime.Object
	}{
		{"AppliedToGroup", &atg},
		{"AppliedToGroupPatch", &AppliedToGroupPatch{
			ObjectMeta:     objectMeta("", "atg-1"),
			AddedMembers:   members("node-1"),
			RemovedMembers: members("node-3")[:1],
		}},
		{"AppliedToGroupList", &AppliedToGroupList{
			ListMeta: listMeta(),
			Items:    []AppliedToGroup{atg, appliedToGroup("atg-2")},
		}},
		{"AddressGroup", &ag},
		{"AddressGroupPatch", &AddressGroupPatch{
			ObjectMeta:     objectMeta("", "ag-1"),
			AddedMembers:   members("node-2")[1:],
			RemovedMembers: members("node-4"),
		}},
		{"AddressGroupList", &AddressGroupList{
			ListMeta: listMeta(),
			Items:    []AddressGroup{ag, addressGroup("ag-2")},
		}},
		{"NetworkPolicy", &np},
		{"NetworkPolicyList", &NetworkPolicyList{
			ListMeta: listMeta(),
			Items:    []NetworkPolicy{np, networkPolicy("np-2")},
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	scheme := newScheme(t)
	codecs := serializer.NewCodecFactory(scheme)
	for _, mediaType := range []string{mediaTypeJSON, mediaTypeProtobuf} {
		info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
		require.True(t, ok, "no serializer for %s", mediaType)
		encoder := codecs.EncoderForVersion(info.Serializer, SchemeGroupVersion)
		decoder := codecs.DecoderToVersion(info.Serializer, SchemeGroupVersion)

		for _, tc := range roundTripObjects() {
			t.Run(mediaType+"/"+tc.kind, func(t *testing.T) {
				gvk := SchemeGroupVersion.WithKind(tc.kind)
				kinds, _, err := scheme.ObjectKinds(tc.obj)
				require.NoError(t, err)
				require.Equal(t, []schema.GroupVersionKind{gvk}, kinds, "the scheme knows the object under another kind")

				want := tc.obj.DeepCopyObject()
				want.GetObjectKind().SetGroupVersionKind(gvk)

				data, err := runtime.Encode(encoder, tc.obj)
				require.NoError(t, err)
				if mediaType == mediaTypeProtobuf {
					assert.True(t, bytes.HasPrefix(data, protobufMagic), "not protobuf: %q", data)
				} else {
					assert.Contains(t, string(data), `"kind":"`+tc.kind+`"`)
				}

				got, err := runtime.Decode(decoder, data)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				// Encoding must not have changed the object it was given.
				assert.Equal(t, tc.obj, roundTripObject(t, tc.kind))
			})
		}
	}
}

// roundTripObject is a fresh copy of the test object of that kind.
func roundTripObject(t *testing.T, kind string) runtime.Object {
	t.Helper()
	for _, tc := range roundTripObjects() {
		if tc.kind == kind {
			return tc.obj
		}
	}
	t.Fatalf("no test object of kind %s", kind)
	return nil
}

// protobufObject is what k8s.io/apimachinery's protobuf serializer needs of
// an object (the gogo marshalling methods of generated.pb.go).
type protobufObject interface {
	Marshal() ([]byte, error)
	MarshalToSizedBuffer(data []byte) (int, error)
	Size() int
	Unmarshal(data []byte) error
	ProtoMessage()
	Reset()
	String() string
}

func TestProtobufMarshalling(t *testing.T) {
	for _, tc := range roundTripObjects() {
		t.Run(tc.kind, func(t *testing.T) {
			m, ok := tc.obj.(protobufObject)
			require.True(t, ok, "%T lacks the generated protobuf methods", tc.obj)
			data, err := m.Marshal()
			require.NoError(t, err)
			assert.Equal(t, m.Size(), len(data))

			got := tc.obj.DeepCopyObject()
			got.(protobufObject).Reset()
			require.NoError(t, got.(protobufObject).Unmarshal(data))
			assert.Equal(t, tc.obj, got)
			assert.NotEmpty(t, m.String())
		})
	}
}

func TestConvertFieldLabel(t *testing.T) {
	scheme := newScheme(t)
	for _, kind := range []string{"AppliedToGroup", "AddressGroup", "NetworkPolicy"} {
		gvk := SchemeGroupVersion.WithKind(kind)
		t.Run(kind, func(t *testing.T) {
			for _, label := range []string{NodeNameField, "metadata.name", "metadata.namespace"} {
				gotLabel, gotValue, err := scheme.ConvertFieldLabel(gvk, label, "node-1")
				require.NoError(t, err, label)
				assert.Equal(t, label, gotLabel)
				assert.Equal(t, "node-1", gotValue)
			}
			for _, label := range []string{"spec.nodeName", "nodename", "status.phase", "members"} {
				_, _, err := scheme.ConvertFieldLabel(gvk, label, "node-1")
				require.Error(t, err, label)
				assert.Contains(t, err.Error(), label)
				var unsupported *UnsupportedFieldError
				require.True(t, errors.As(err, &unsupported), "%T", err)
				assert.Equal(t, label, unsupported.Label)
			}
		})
	}
}
