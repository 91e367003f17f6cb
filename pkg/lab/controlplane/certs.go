// Package controlplane runs a lab's Kubernetes control plane (etcd,
// kube-apiserver with RBAC, ServiceAccount tokens and the aggregation layer,
// kube-controller-manager, kube-scheduler) inside the control-plane
// namespace, and writes the certificates and kubeconfigs every lab
// component uses to reach it.
package controlplane

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/pki"
)

// Identity is a client of the API server with its own certificate and
// kubeconfig.
type Identity struct {
	File         string // kubeconfig file name (without folder)
	CommonName   string
	Organization []string
}

// Fixed identities of the control plane; each node adds its kubelet's.
var (
	Admin             = Identity{"admin.conf", "kubernetes-admin", []string{"system:masters"}}
	ControllerManager = Identity{"kube-controller-manager.conf", "system:kube-controller-manager", nil}
	Scheduler         = Identity{"kube-scheduler.conf", "system:kube-scheduler", nil}
)

// KubeletIdentity is the node-restricted identity of a node's kubelet.
func KubeletIdentity(node string) Identity {
	return Identity{"kubelet-" + node + ".conf", "system:node:" + node, []string{"system:nodes"}}
}

// APIServerURL is where every component reaches the API server.
func APIServerURL() string {
	return fmt.Sprintf("https://%s:%d", layout.ControlPlaneIP, layout.APIServerPort)
}

// WritePKI creates the CAs, serving and client certificates, the
// ServiceAccount key pair and one kubeconfig per identity.
func WritePKI(lab layout.Lab, identities []Identity) error {
	dir := lab.PKIDir()
	for _, d := range []string{dir, lab.KubeconfigDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	ca, err := pki.NewAuthority("antrea-lab-ca")
	if err != nil {
		return err
	}
	if err := pki.WritePair(dir, "ca", ca.Cert, ca.Key); err != nil {
		return err
	}
	serving, key, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		IPs:        []net.IP{layout.ControlPlaneIP.AsSlice(), layout.KubernetesSvcIP.AsSlice(), net.ParseIP("127.0.0.1")},
		Server:     true,
	})
	if err != nil {
		return err
	}
	if err := pki.WritePair(dir, "apiserver", serving, key); err != nil {
		return err
	}
	if err := pki.WriteServiceAccountKey(dir); err != nil {
		return err
	}
	// The aggregation layer authenticates itself to aggregated API servers
	// with a client certificate of a separate CA.
	fp, err := pki.NewAuthority("front-proxy-ca")
	if err != nil {
		return err
	}
	if err := pki.WritePair(dir, "front-proxy-ca", fp.Cert, fp.Key); err != nil {
		return err
	}
	fpc, fpk, err := fp.Issue(pki.Request{CommonName: "front-proxy-client", Client: true})
	if err != nil {
		return err
	}
	if err := pki.WritePair(dir, "front-proxy-client", fpc, fpk); err != nil {
		return err
	}
	for _, id := range identities {
		cert, key, err := ca.Issue(pki.Request{CommonName: id.CommonName, Organization: id.Organization, Client: true})
		if err != nil {
			return err
		}
		keyPEM, err := pki.KeyPEM(key)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(filepath.Join(lab.KubeconfigDir(), id.File), id.CommonName, pki.CertPEM(ca.Cert), pki.CertPEM(cert), keyPEM); err != nil {
			return err
		}
	}
	return nil
}

func writeKubeconfig(path, user string, caPEM, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["antrea-lab"] = &clientcmdapi.Cluster{Server: APIServerURL(), CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["antrea-lab"] = &clientcmdapi.Context{Cluster: "antrea-lab", AuthInfo: user}
	cfg.CurrentContext = "antrea-lab"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

// Client returns a client for the lab's API server with the given identity's
// kubeconfig. Its connections are opened inside the control-plane namespace,
// so it works from the machine's root namespace without exposing the API
// there.
func Client(lab layout.Lab, id Identity) (*kubernetes.Clientset, *rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(lab.KubeconfigDir(), id.File))
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig of %s: %w", id.CommonName, err)
	}
	cfg.Dial = netnsutil.Dialer(lab.ControlPlaneNetns())
	cfg.QPS = 200
	cfg.Burst = 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("client for %s: %w", id.CommonName, err)
	}
	return cs, cfg, nil
}
