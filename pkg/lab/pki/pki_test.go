package pki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIssueVerifiesAgainstAuthority(t *testing.T) {
	ca, err := NewAuthority("lab-ca")
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)

	tests := []struct {
		name  string
		req   Request
		usage x509.ExtKeyUsage
	}{
		{"server", Request{CommonName: "kube-apiserver", IPs: []net.IP{net.ParseIP("172.18.0.2")}, DNSNames: []string{"kubernetes"}, Server: true}, x509.ExtKeyUsageServerAuth},
		{"client", Request{CommonName: "system:node:node-1", Organization: []string{"system:nodes"}, Client: true}, x509.ExtKeyUsageClientAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, key, err := ca.Issue(tc.req)
			require.NoError(t, err)
			require.NotNil(t, key)
			_, err = cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{tc.usage}, DNSName: firstOr(tc.req.DNSNames)})
			require.NoError(t, err)
			assert.Equal(t, tc.req.Organization, cert.Subject.Organization)
		})
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	ca, err := NewAuthority("lab-ca")
	require.NoError(t, err)
	_, _, err = ca.Issue(Request{Client: true})
	assert.ErrorContains(t, err, "commonName is empty")
	_, _, err = ca.Issue(Request{CommonName: "x"})
	assert.ErrorContains(t, err, "neither server nor client")
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewAuthority("lab-ca")
	require.NoError(t, err)
	require.NoError(t, WritePair(dir, "ca", ca.Cert, ca.Key))
	require.NoError(t, WriteServiceAccountKey(dir))
	for _, f := range []string{"ca.crt", "ca.key", "sa.key", "sa.pub"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err, f)
		block, _ := pem.Decode(data)
		require.NotNil(t, block, "%s is not PEM", f)
	}
	info, err := os.Stat(filepath.Join(dir, "ca.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
