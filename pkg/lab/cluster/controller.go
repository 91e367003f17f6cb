package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/apiserver"
	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// ControllerIdentity is the API identity of antrea-controller in the lab.
var ControllerIdentity = controlplane.Identity{File: "antrea-controller.conf", CommonName: "antrea-controller"}

// ControllerProcess is the name of antrea-controller in the lab's pid dir.
const ControllerProcess = "antrea-controller"

// controllerService is the Service the APIService points at: selectorless,
// with the control-plane namespace's address as its endpoint, since the lab
// runs the controller as a process rather than a pod.
const (
	controllerServiceNamespace = "kube-system"
	controllerServiceName      = "antrea"
)

// registerController gives antrea-controller its permissions and registers
// its API with the aggregation layer.
func registerController(ctx context.Context, client kubernetes.Interface, cfg *rest.Config, caPEM []byte) error {
	objects := []struct {
		kind   string
		create func() error
	}{
		{"ClusterRole antrea-lab-controller", func() error {
			_, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "antrea-lab-controller"},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
					{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
				},
			}, metav1.CreateOptions{})
			return err
		}},
		{"ClusterRoleBinding antrea-lab-controller", func() error {
			return bindClusterRole(ctx, client, "antrea-lab-controller", "antrea-lab-controller", ControllerIdentity.CommonName)
		}},
		// Delegated authentication and authorization: TokenReviews and
		// SubjectAccessReviews, and the requestheader CA in kube-system.
		{"ClusterRoleBinding antrea-lab-controller-auth-delegator", func() error {
			return bindClusterRole(ctx, client, "antrea-lab-controller-auth-delegator", "system:auth-delegator", ControllerIdentity.CommonName)
		}},
		{"RoleBinding kube-system/antrea-lab-controller-auth-reader", func() error {
			_, err := client.RbacV1().RoleBindings("kube-system").Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "antrea-lab-controller-auth-reader", Namespace: "kube-system"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ControllerIdentity.CommonName}},
			}, metav1.CreateOptions{})
			return err
		}},
		{"Service kube-system/antrea", func() error {
			_, err := client.CoreV1().Services(controllerServiceNamespace).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: controllerServiceName, Namespace: controllerServiceNamespace},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
					Name: "api", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(apiserver.DefaultPort),
				}}},
			}, metav1.CreateOptions{})
			return err
		}},
		{"Endpoints kube-system/antrea", func() error {
			// The aggregator resolves a selectorless Service through its
			// Endpoints.
			//lint:ignore SA1019 the aggregator reads Endpoints
			_, err := client.CoreV1().Endpoints(controllerServiceNamespace).Create(ctx, &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: controllerServiceName, Namespace: controllerServiceNamespace},
				//lint:ignore SA1019 the aggregator reads Endpoints
				Subsets: []corev1.EndpointSubset{{
					Addresses: []corev1.EndpointAddress{{IP: layout.ControlPlaneIP.String()}},
					Ports:     []corev1.EndpointPort{{Name: "api", Port: apiserver.DefaultPort, Protocol: corev1.ProtocolTCP}},
				}},
			}, metav1.CreateOptions{})
			return err
		}},
		{"APIService v1beta1.controlplane.antrea.io", func() error {
			ac, err := aggregator.NewForConfig(cfg)
			if err != nil {
				return err
			}
			port := int32(443)
			_, err = ac.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
				ObjectMeta: metav1.ObjectMeta{Name: v1beta1.SchemeGroupVersion.Version + "." + v1beta1.GroupName},
				Spec: apiregistrationv1.APIServiceSpec{
					Service:              &apiregistrationv1.ServiceReference{Namespace: controllerServiceNamespace, Name: controllerServiceName, Port: &port},
					Group:                v1beta1.GroupName,
					Version:              v1beta1.SchemeGroupVersion.Version,
					CABundle:             caPEM,
					GroupPriorityMinimum: 100,
					VersionPriority:      100,
				},
			}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, o := range objects {
		if err := o.create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", o.kind, err)
		}
	}
	return nil
}

func bindClusterRole(ctx context.Context, client kubernetes.Interface, name, role, user string) error {
	_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}, metav1.CreateOptions{})
	return err
}

// ControllerArgs is the command line of antrea-controller in the lab.
func ControllerArgs(lab layout.Lab, binDir string) []string {
	pkiDir := lab.PKIDir()
	kubeconfig := filepath.Join(lab.KubeconfigDir(), ControllerIdentity.File)
	return []string{
		filepath.Join(binDir, "antrea-controller"),
		"--kubeconfig=" + kubeconfig,
		"--bind-address=" + layout.ControlPlaneIP.String(),
		"--secure-port=" + strconv.Itoa(apiserver.DefaultPort),
		"--tls-cert-file=" + filepath.Join(pkiDir, "antrea-controller.crt"),
		"--tls-private-key-file=" + filepath.Join(pkiDir, "antrea-controller.key"),
	}
}

// StartController runs antrea-controller in the control-plane namespace.
func StartController(lab layout.Lab, binDir string) error {
	_, err := proc.Start(lab.PIDDir(), proc.Spec{
		Name:    ControllerProcess,
		Netns:   lab.ControlPlaneNetns(),
		Args:    ControllerArgs(lab, binDir),
		LogFile: filepath.Join(lab.LogDir(), "antrea-controller.log"),
	})
	return err
}

// waitControllerAPI waits until the aggregated API answers through the
// kube-apiserver, which is also when the controller has computed its
// initial state.
func waitControllerAPI(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	path := "/apis/" + v1beta1.SchemeGroupVersion.String() + "/networkpolicies"
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last = client.CoreV1().RESTClient().Get().AbsPath(path).Param("limit", "1").Do(ctx).Error()
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("antrea-controller's API %s not served within %s (last error: %v)", path, timeout, last)
	}
	return nil
}

func readCA(lab layout.Lab) ([]byte, error) {
	ca, err := os.ReadFile(filepath.Join(lab.PKIDir(), "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("read lab CA: %w", err)
	}
	return ca, nil
}

// StopController stops the lab's antrea-controller, as a crash would
// (SIGKILL). Stopping a stopped controller is not an error.
func StopController(lab layout.Lab) error {
	recs, err := proc.Load(lab.PIDDir())
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Name == ControllerProcess && r.Alive() {
			if err := proc.Kill(r.PID, 0); err != nil {
				return fmt.Errorf("kill antrea-controller: %w", err)
			}
		}
	}
	return nil
}

// RestartController starts the lab's antrea-controller again after
// StopController (or a crash) and waits until its API answers.
func RestartController(ctx context.Context, lab layout.Lab, timeout time.Duration) error {
	st, err := LoadState(lab)
	if err != nil {
		return err
	}
	if st.CNI != CNIAntrea {
		return fmt.Errorf("lab %q runs --cni %s: it has no antrea-controller", lab.Name, st.CNI)
	}
	if err := StopController(lab); err != nil {
		return err
	}
	if err := StartController(lab, st.BinDir); err != nil {
		return err
	}
	client, _, err := controlplane.Client(lab, controlplane.Admin)
	if err != nil {
		return err
	}
	return waitControllerAPI(ctx, client, timeout)
}
