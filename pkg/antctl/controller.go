package antctl

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// ControllerInfo is what `get controllerinfo` reports.
type ControllerInfo struct {
	APIService      string          `json:"apiService"`
	Available       bool            `json:"available"`
	AvailableReason string          `json:"availableReason,omitempty"`
	Pods            []ControllerPod `json:"pods"`
	NetworkPolicies int             `json:"networkPolicies"`
	AppliedToGroups int             `json:"appliedToGroups"`
	AddressGroups   int             `json:"addressGroups"`
}

// ControllerPod is one antrea-controller pod.
type ControllerPod struct {
	Name     string `json:"name"`
	Node     string `json:"node"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	Image    string `json:"image"`
}

func newGetControllerInfo(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "controllerinfo",
		Short: "The controller: its pod, whether its API is available, how many policies and groups it serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			ctx, cancel := o.context(cmd)
			defer cancel()
			info, err := getControllerInfo(ctx, cfg)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			available := "yes"
			if !info.Available {
				available = "no: " + info.AvailableReason
			}
			rows := [][]string{{"API", info.APIService + " (available: " + available + ")"}}
			for _, p := range info.Pods {
				rows = append(rows, []string{"POD", fmt.Sprintf("%s on %s, ready %v, %d restarts, %s", p.Name, p.Node, p.Ready, p.Restarts, p.Image)})
			}
			if len(info.Pods) == 0 {
				rows = append(rows, []string{"POD", "none (is the Deployment scaled to 0?)"})
			}
			rows = append(rows,
				[]string{"NETWORKPOLICIES", fmt.Sprint(info.NetworkPolicies)},
				[]string{"APPLIEDTOGROUPS", fmt.Sprint(info.AppliedToGroups)},
				[]string{"ADDRESSGROUPS", fmt.Sprint(info.AddressGroups)})
			return writeTable(cmd.OutOrStdout(), rows)
		},
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// sortTables orders "N:Name=count" entries by table number.
func sortTables(entries []string) {
	num := func(s string) int {
		n, _ := strconv.Atoi(s[:max(0, strings.Index(s, ":"))])
		return n
	}
	sort.Slice(entries, func(i, j int) bool { return num(entries[i]) < num(entries[j]) })
}

// getControllerInfo asks the API server about the controller: its
// APIService, its pods, and (when its API is available) how many policies
// and groups it serves.
func getControllerInfo(ctx context.Context, cfg *rest.Config) (*ControllerInfo, error) {
	info := ControllerInfo{APIService: v1beta1.SchemeGroupVersion.Version + "." + v1beta1.GroupName}
	ac, err := aggregator.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := ac.ApiregistrationV1().APIServices().Get(ctx, info.APIService, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("APIService %s: %w", info.APIService, err)
	}
	for _, c := range svc.Status.Conditions {
		if c.Type == "Available" {
			info.Available = c.Status == "True"
			if !info.Available {
				info.AvailableReason = c.Reason + ": " + c.Message
			}
		}
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	pods, err := kc.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=antrea,component=antrea-controller"})
	if err != nil {
		return nil, fmt.Errorf("list antrea-controller pods: %w", err)
	}
	for _, p := range pods.Items {
		cp := ControllerPod{Name: p.Name, Node: p.Spec.NodeName, Ready: podReady(&p)}
		for _, c := range p.Status.ContainerStatuses {
			cp.Restarts += c.RestartCount
			cp.Image = c.Image
		}
		info.Pods = append(info.Pods, cp)
	}
	if info.Available {
		client, err := rest.UnversionedRESTClientFor(withJSON(cfg))
		if err != nil {
			return nil, err
		}
		for res, n := range map[string]*int{"networkpolicies": &info.NetworkPolicies, "appliedtogroups": &info.AppliedToGroups, "addressgroups": &info.AddressGroups} {
			body, err := client.Get().AbsPath("/apis/" + v1beta1.SchemeGroupVersion.String() + "/" + res).DoRaw(ctx)
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", res, err)
			}
			var list struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				return nil, fmt.Errorf("decode %s: %w", res, err)
			}
			*n = len(list.Items)
		}
	}
	return &info, nil
}
