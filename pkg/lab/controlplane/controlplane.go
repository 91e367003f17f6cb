package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// Binaries locates the programs of the control plane.
type Binaries struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	KubeScheduler         string
}

// Start launches etcd and kube-apiserver and waits until the API server is
// ready, then starts the controller manager and the scheduler.
func Start(ctx context.Context, lab layout.Lab, bins Binaries, client kubernetes.Interface) error {
	pki := lab.PKIDir()
	kc := lab.KubeconfigDir()
	ns := lab.ControlPlaneNetns()
	logs := lab.LogDir()
	start := func(name string, args ...string) error {
		_, err := proc.Start(lab.PIDDir(), proc.Spec{Name: name, Netns: ns, Args: args, LogFile: filepath.Join(logs, name+".log")})
		return err
	}

	if err := start("etcd", bins.Etcd,
		"--name=antrea-lab",
		"--data-dir="+lab.EtcdDir(),
		"--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=antrea-lab=http://127.0.0.1:2380",
		"--quota-backend-bytes=4294967296",
		"--snapshot-count=100000",
	); err != nil {
		return err
	}
	if err := start("kube-apiserver", bins.KubeAPIServer,
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0",
		"--advertise-address="+layout.ControlPlaneIP.String(),
		"--secure-port="+strconv.Itoa(layout.APIServerPort),
		"--service-cluster-ip-range="+layout.ServiceCIDR.String(),
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--client-ca-file="+filepath.Join(pki, "ca.crt"),
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// Aggregation layer: the API server proxies to aggregated servers
		// with the front-proxy client certificate and dials their endpoint
		// IPs directly (there is no ClusterIP routing in the control plane).
		"--requestheader-client-ca-file="+filepath.Join(pki, "front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+filepath.Join(pki, "front-proxy-client.crt"),
		"--proxy-client-key-file="+filepath.Join(pki, "front-proxy-client.key"),
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"--v=1",
	); err != nil {
		return err
	}
	if err := WaitReady(ctx, client, 60*time.Second); err != nil {
		return err
	}
	if err := start("kube-controller-manager", bins.KubeControllerManager,
		"--kubeconfig="+filepath.Join(kc, ControllerManager.File),
		"--authentication-kubeconfig="+filepath.Join(kc, ControllerManager.File),
		"--authorization-kubeconfig="+filepath.Join(kc, ControllerManager.File),
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--allocate-node-cidrs=true",
		"--cluster-cidr="+layout.ClusterCIDR.String(),
		"--node-cidr-mask-size="+strconv.Itoa(layout.NodeCIDRMaskSize),
		"--service-cluster-ip-range="+layout.ServiceCIDR.String(),
		"--cluster-signing-cert-file="+filepath.Join(pki, "ca.crt"),
		"--cluster-signing-key-file="+filepath.Join(pki, "ca.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--use-service-account-credentials=true",
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--profiling=false",
	); err != nil {
		return err
	}
	return start("kube-scheduler", bins.KubeScheduler,
		"--kubeconfig="+filepath.Join(kc, Scheduler.File),
		"--authentication-kubeconfig="+filepath.Join(kc, Scheduler.File),
		"--authorization-kubeconfig="+filepath.Join(kc, Scheduler.File),
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--profiling=false",
	)
}

// WaitReady polls /readyz until the API server answers ok.
func WaitReady(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return string(body) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready after %s (last error: %v); see its log", timeout, last)
	}
	return nil
}
