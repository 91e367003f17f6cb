package policysync

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

var scheme = runtime.NewScheme()

func init() { utilruntime.Must(v1beta1.AddToScheme(scheme)) }

// NewRESTClient returns a client of controlplane.antrea.io/v1beta1 that
// speaks protobuf, through the kube-apiserver (the aggregation layer
// proxies to the controller) with the identity of base.
func NewRESTClient(base *rest.Config) (rest.Interface, error) {
	cfg := rest.CopyConfig(base)
	cfg.GroupVersion = &v1beta1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = "antrea-agent"
	}
	c, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", v1beta1.SchemeGroupVersion, err)
	}
	return c, nil
}
