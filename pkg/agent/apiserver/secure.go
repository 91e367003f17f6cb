package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	genericfilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// The agent's API over HTTPS: the same paths as on the unix socket, for
// clients outside the node (antctl with a kubeconfig). Who may ask is the
// cluster's decision: the client's credentials (a client certificate
// signed by the cluster's client CA, or a bearer token) are checked by the
// kube-apiserver (TokenReview), and each request is authorized by it
// (SubjectAccessReview of the non-resource path, e.g. get
// /v1/supportbundle), as the kubelet does with its own API.

// SecureServer is the agent's HTTPS API.
type SecureServer struct {
	// Port on every address of the node.
	Port int
	// Certificate the server presents.
	Certificate   tls.Certificate
	Authenticator authenticator.Request
	Authorizer    authorizer.Authorizer
}

// SecureHandler wraps h: requests without valid credentials get 401, those
// the authorizer does not allow 403.
func SecureHandler(h http.Handler, authn authenticator.Request, authz authorizer.Authorizer) http.Handler {
	codecs := clientscheme.Codecs.WithoutConversion()
	h = genericfilters.WithAuthorization(h, authz, codecs)
	h = genericfilters.WithAuthentication(h, authn, genericfilters.Unauthorized(codecs), nil, nil)
	resolver := &request.RequestInfoFactory{
		APIPrefixes:          map[string]sets.Empty{"api": {}, "apis": {}},
		GrouplessAPIPrefixes: map[string]sets.Empty{"api": {}},
	}
	return genericfilters.WithRequestInfo(h, resolver)
}

// Serve serves h behind SecureHandler until ctx ends.
func (s SecureServer) Serve(ctx context.Context, h http.Handler) error {
	lis, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(s.Port)))
	if err != nil {
		return fmt.Errorf("agent HTTPS API: %w", err)
	}
	return s.serve(ctx, lis, h)
}

func (s SecureServer) serve(ctx context.Context, lis net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           SecureHandler(h, s.Authenticator, s.Authorizer),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{s.Certificate},
			// The authenticator verifies client certificates against
			// the cluster's client CA.
			ClientAuth: tls.RequestClientCert,
		},
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("Serving the agent API over HTTPS", "address", lis.Addr().String())
	err := srv.ServeTLS(lis, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("agent HTTPS API on %s: %w", lis.Addr(), err)
}

// SelfSignedCertificate makes a serving certificate for the node's name
// and addresses, kept in memory: clients authenticate themselves to the
// agent, not the agent to them (see docs/antctl.md).
func SelfSignedCertificate(host string, ips []net.IP) (tls.Certificate, error) {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, ips, nil)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate for %s: %w", host, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate for %s: %w", host, err)
	}
	return cert, nil
}

// Delegated returns an authenticator and an authorizer that ask the
// kube-apiserver: client certificates are checked against the client CA it
// publishes (kube-system/extension-apiserver-authentication, followed as it
// changes until ctx ends), bearer tokens through TokenReviews, requests
// through SubjectAccessReviews; answers are cached for 10 s.
func Delegated(ctx context.Context, client kubernetes.Interface) (authenticator.Request, authorizer.Authorizer, error) {
	const ns, name, key = "kube-system", "extension-apiserver-authentication", "client-ca-file"
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("client CA: %w", err)
	}
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("client-ca", ns, name, key, client)
	if err != nil {
		return nil, nil, fmt.Errorf("client CA: %w", err)
	}
	go ca.Run(ctx, 1)
	if cm.Data[key] != "" {
		// The controller reads its informer's cache: wait until it has
		// the CA, or client certificates would be refused meanwhile.
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return len(ca.CurrentCABundleContent()) > 0, nil
		}); err != nil {
			return nil, nil, fmt.Errorf("client CA of %s/%s: not loaded: %w", ns, name, err)
		}
	} else {
		klog.InfoS("The API server publishes no client CA: client certificates are not accepted, bearer tokens are", "configMap", ns+"/"+name)
	}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:            client.AuthenticationV1(),
		TokenAccessReviewTimeout:           10 * time.Second,
		WebhookRetryBackoff:                genericoptions.DefaultAuthWebhookRetryBackoff(),
		CacheTTL:                           10 * time.Second,
		ClientCertificateCAContentProvider: ca,
	}.New()
	if err != nil {
		return nil, nil, fmt.Errorf("delegated authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             10 * time.Second,
		DenyCacheTTL:              10 * time.Second,
		WebhookRetryBackoff:       genericoptions.DefaultAuthWebhookRetryBackoff(),
	}.New()
	if err != nil {
		return nil, nil, fmt.Errorf("delegated authorization: %w", err)
	}
	return authn, authz, nil
}
