package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
)

func TestSecureHandler(t *testing.T) {
	var seen authorizer.Attributes
	authn := authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer admin":
			return &authenticator.Response{User: &user.DefaultInfo{Name: "admin"}}, true, nil
		case "Bearer viewer":
			return &authenticator.Response{User: &user.DefaultInfo{Name: "viewer"}}, true, nil
		}
		return nil, false, nil
	})
	authz := authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		seen = a
		if a.GetUser().GetName() == "admin" {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "not an admin", nil
	})
	h := SecureHandler(Handler(Sources{Inspector: &fakeInspector{}}), authn, authz)
	tests := []struct {
		name     string
		token    string
		wantCode int
		wantBody string
	}{
		{"no credentials", "", http.StatusUnauthorized, "Unauthorized"},
		{"not allowed", "viewer", http.StatusForbidden, `forbidden: User \"viewer\" cannot get path \"/v1/agentinfo\": not an admin`},
		{"allowed", "admin", http.StatusOK, `"nodeName": "n1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, PathAgentInfo, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.wantCode, rec.Code)
			assert.Contains(t, rec.Body.String(), tc.wantBody)
		})
	}
	require.NotNil(t, seen)
	assert.False(t, seen.IsResourceRequest())
	assert.Equal(t, "get", seen.GetVerb())
	assert.Equal(t, PathAgentInfo, seen.GetPath())
}

// TestSecureServerDelegated serves over TLS with the delegated
// authenticator and authorizer against a fake kube-apiserver: a client
// certificate of the cluster's client CA is accepted and its user
// authorized by a SubjectAccessReview; one of another CA is not.
func TestSecureServerDelegated(t *testing.T) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "cluster-ca"}, caKey)
	require.NoError(t, err)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
	var mu sync.Mutex
	var reviews []authorizationv1.SubjectAccessReviewSpec
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cm := corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication", ResourceVersion: "1"},
			Data:       map[string]string{"client-ca-file": caPEM},
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication":
			_ = json.NewEncoder(w).Encode(cm)
		case r.URL.Path == "/api/v1/namespaces/kube-system/configmaps" && r.URL.Query().Get("watch") == "true":
			<-r.Context().Done()
		case r.URL.Path == "/api/v1/namespaces/kube-system/configmaps":
			_ = json.NewEncoder(w).Encode(corev1.ConfigMapList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMapList"},
				ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: []corev1.ConfigMap{cm}})
		case r.URL.Path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
			var sar authorizationv1.SubjectAccessReview
			assert.NoError(t, json.NewDecoder(r.Body).Decode(&sar))
			mu.Lock()
			reviews = append(reviews, sar.Spec)
			mu.Unlock()
			sar.Status.Allowed = sar.Spec.User == "kubernetes-admin"
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(sar)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	client, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	authn, authz, err := Delegated(ctx, client)
	require.NoError(t, err)
	serving, err := SelfSignedCertificate("node-1", []net.IP{net.ParseIP("127.0.0.1")})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := SecureServer{Certificate: serving, Authenticator: authn, Authorizer: authz}
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, lis, Handler(Sources{Inspector: &fakeInspector{}})) }()

	// The client pins the agent's certificate here; antctl cannot (see
	// docs/antctl.md) and skips verification.
	roots := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(serving.Certificate[0])
	require.NoError(t, err)
	roots.AddCert(leaf)
	get := func(clientCert *tls.Certificate) (int, string) {
		cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		if clientCert != nil {
			cfg.Certificates = []tls.Certificate{*clientCert}
		}
		c := NewRemoteClient("https://"+lis.Addr().String(), &http.Transport{TLSClientConfig: cfg})
		resp, err := c.http.Get(c.base + PathAgentInfo)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	admin := clientCert(t, ca, caKey, "kubernetes-admin", "system:masters")
	code, body := get(&admin)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"nodeName": "n1"`)
	mu.Lock()
	require.NotEmpty(t, reviews)
	first := reviews[0]
	mu.Unlock()
	assert.Equal(t, "/v1/agentinfo", first.NonResourceAttributes.Path)
	assert.Equal(t, "get", first.NonResourceAttributes.Verb)
	assert.Equal(t, []string{"system:masters", "system:authenticated"}, first.Groups)

	other := clientCert(t, ca, caKey, "someone", "")
	code, _ = get(&other)
	assert.Equal(t, http.StatusForbidden, code)
	c := NewRemoteClient("https://"+lis.Addr().String(), &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{other}}})
	_, err = c.Info(ctx)
	assert.EqualError(t, err, `agent API /v1/agentinfo on https://`+lis.Addr().String()+`: 403 Forbidden: forbidden: User "someone" cannot get path "/v1/agentinfo"`)

	strangerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	strangerCA, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "other-ca"}, strangerKey)
	require.NoError(t, err)
	stranger := clientCert(t, strangerCA, strangerKey, "kubernetes-admin", "system:masters")
	code, _ = get(&stranger)
	assert.Equal(t, http.StatusUnauthorized, code, "a certificate of another CA")
	code, _ = get(nil)
	assert.Equal(t, http.StatusUnauthorized, code, "no credentials")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
}

func clientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name, group string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	subject := pkix.Name{CommonName: name}
	if group != "" {
		subject.Organization = []string{group}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
