// Package apiserver serves the controller's computed objects
// (AppliedToGroups, AddressGroups, NetworkPolicies) as the aggregated API
// controlplane.antrea.io/v1beta1: read-only get, list and watch, with the
// nodeName field selector that narrows each resource to one node's span,
// membership changes sent as patches, and authentication and authorization
// delegated to the kube-apiserver. The same group takes the agents'
// traffic statistics (NodeStatsSummaries, create only), served summed as
// stats.antrea.io/v1alpha1 NetworkPolicyStats (get, list).
package apiserver

import (
	"context"
	"fmt"
	"net"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/component-base/compatibility"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
	generatedopenapi "github.com/ovs-cni/antrea/pkg/apiserver/openapi"
)

// DefaultPort is the port the API server listens on.
const DefaultPort = 10349

// Options configure the API server.
type Options struct {
	// SecureServing is where and with which certificate it serves. Without
	// a certificate it makes a self-signed one in its CertDirectory.
	SecureServing *genericoptions.SecureServingOptionsWithLoopback
	// Authentication and Authorization are delegated to the kube-apiserver
	// through TokenReviews and SubjectAccessReviews.
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
}

// NewOptions returns the defaults: port 10349 on all addresses,
// authentication and authorization delegated with the in-cluster or
// given kubeconfig.
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication: genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:  genericoptions.NewDelegatingAuthorizationOptions(),
	}
	o.SecureServing.BindPort = DefaultPort
	o.SecureServing.ServerCert.PairName = "antrea-controller"
	// Probes and metrics scrapes need no identity.
	o.Authorization.AlwaysAllowPaths = []string{"/healthz", "/readyz", "/livez"}
	return o
}

// Validate returns what is wrong with the options.
func (o *Options) Validate() []error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	return errs
}

// Server is the controller's API server.
type Server struct {
	generic  *genericapiserver.GenericAPIServer
	caBundle []byte
}

// ServiceDNSNames are the names the aggregator dials the controller by
// (the Service kube-system/antrea); a self-signed certificate covers them.
var ServiceDNSNames = []string{"antrea.kube-system.svc", "antrea.kube-system.svc.cluster.local"}

// CABundle is the PEM of the self-signed serving certificate and its CA,
// for the APIService to trust; nil when the certificate came from files.
func (s *Server) CABundle() []byte { return s.caBundle }

// New builds the server for the objects of sources.
func New(o *Options, sources Sources) (*Server, error) {
	if errs := o.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("api server options: %v", errs)
	}
	var caBundle []byte
	if o.SecureServing.ServerCert.CertKey.CertFile == "" {
		// A self-signed certificate kept in memory (no certificate
		// directory): the controller publishes its CA in the APIService,
		// and a new one at every start.
		o.SecureServing.ServerCert.CertDirectory = ""
		if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("antrea", ServiceDNSNames, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
			return nil, fmt.Errorf("create self-signed certificate: %w", err)
		}
		if gen := o.SecureServing.ServerCert.GeneratedCert; gen != nil {
			caBundle, _ = gen.CurrentCertKeyContent()
		}
	}
	cfg := genericapiserver.NewRecommendedConfig(Codecs)
	cfg.EffectiveVersion = compatibility.NewEffectiveVersionFromString("1.33", "", "")
	if err := o.SecureServing.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	namer := openapi.NewDefinitionNamer(Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "antrea-controller"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "antrea-controller"
	if err := o.Authentication.ApplyTo(&cfg.Authentication, cfg.SecureServing, cfg.OpenAPIConfig); err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	if err := o.Authorization.ApplyTo(&cfg.Authorization); err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	// No priority and fairness: the clients are the agents, one watch each
	// per resource.
	cfg.FlowControl = nil

	generic, err := cfg.Complete().New("antrea-controller", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("create api server: %w", err)
	}
	info := genericapiserver.NewDefaultAPIGroupInfo(v1beta1.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	info.VersionedResourcesStorageMap[v1beta1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"appliedtogroups": newAppliedToGroupStorage(sources.AppliedToGroups),
		"addressgroups":   newAddressGroupStorage(sources.AddressGroups),
		"networkpolicies": newNetworkPolicyStorage(sources.NetworkPolicies),
	}
	if sources.Stats != nil {
		info.VersionedResourcesStorageMap[v1beta1.SchemeGroupVersion.Version]["nodestatssummaries"] = &summaryStorage{agg: sources.Stats}
	}
	if err := generic.InstallAPIGroup(&info); err != nil {
		return nil, fmt.Errorf("install %s: %w", v1beta1.GroupName, err)
	}
	if sources.Stats != nil {
		statsInfo := genericapiserver.NewDefaultAPIGroupInfo(statsv1alpha1.GroupName, Scheme, metav1.ParameterCodec, Codecs)
		statsInfo.VersionedResourcesStorageMap[statsv1alpha1.SchemeGroupVersion.Version] = map[string]rest.Storage{
			"networkpolicystats": &policyStatsStorage{agg: sources.Stats},
		}
		if err := generic.InstallAPIGroup(&statsInfo); err != nil {
			return nil, fmt.Errorf("install %s: %w", statsv1alpha1.GroupName, err)
		}
	}
	return &Server{generic: generic, caBundle: caBundle}, nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	return s.generic.PrepareRun().RunWithContext(ctx)
}
