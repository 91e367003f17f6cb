package antctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"sigs.k8s.io/yaml"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/agent/nodebundle"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/supportbundle"
	"github.com/ovs-cni/antrea/pkg/version"
)

// Where antrea runs, and how its pods are labelled (build/yamls).
const (
	antreaNamespace    = "kube-system"
	agentSelector      = "app=antrea,component=antrea-agent"
	controllerSelector = "app=antrea,component=antrea-controller"
	agentContainer     = "antrea-agent"
	// podLogTailLines bounds what is read of a container log through the
	// API server; the bundle keeps the end of it, up to --max-log-size.
	podLogTailLines = 200000
	// bundleTimeout is the default time for all bundles together.
	bundleTimeout = 5 * time.Minute
)

type bundleFlags struct {
	nodes      []string
	dir        string
	local      bool
	maxLogSize string
	controller bool
}

// BundleResult is what `supportbundle` reports for each archive.
type BundleResult struct {
	// Subject is node/<name> or controller.
	Subject string `json:"subject"`
	File    string `json:"file,omitempty"`
	Size    int64  `json:"size"`
	Items   int    `json:"items"`
	// Failed are the items that could not be collected.
	Failed []supportbundle.Entry `json:"failed,omitempty"`
	// Error says why there is no archive, or what it lacks (the agent's
	// part of a node's bundle).
	Error string `json:"error,omitempty"`
}

func newSupportBundle(o *options) *cobra.Command {
	f := bundleFlags{}
	cmd := &cobra.Command{
		Use:   "supportbundle [--node NODE]... [--dir DIR] [--local]",
		Short: "Collect what a bug report needs into one .tar.gz per node, and one of the controller",
		Long: `supportbundle collects, for each node, the agent's logs, state (agentinfo,
podinterfaces, realized NetworkPolicies, metrics) and effective
configuration, the bridge's flows (by table, with table names) and groups,
the OVS database, the OVS daemons' logs, and the node's addresses, routes,
neighbours and nftables ruleset; and from the cluster the controller's
state, computed policies and logs and antrea's pods, ConfigMaps and
events. Each archive has an index.json that lists every item, whether it
was collected, and why not. Secrets are never read; IPsec pre-shared keys
in OVS's output are redacted. Review a bundle before you share it: logs
name pods, namespaces and addresses.

Against the cluster (the default) antctl asks each node's agent over HTTPS
on its apiPort (10350), with the credentials of the kubeconfig, which the
agent checks with the API server (it must allow get on the non-resource
URL /v1/supportbundle). On a node, --local (implied by --agent-socket)
asks the local agent over its API socket instead.`,
		Example: `  antctl supportbundle                         # every node and the controller, into .
  antctl supportbundle --node node-1 --dir /tmp/bug-1234
  antctl supportbundle --local                 # on a node, as root`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			maxLog, err := parseLogSize(f.maxLogSize)
			if err != nil {
				return err
			}
			local := f.local || cmd.Flag("agent-socket").Changed
			if local && len(f.nodes) > 0 {
				return fmt.Errorf("--node: not with --local or --agent-socket (the local agent is this node's)")
			}
			for _, n := range f.nodes {
				if n == "" {
					return fmt.Errorf("--node: empty node name")
				}
			}
			if err := os.MkdirAll(f.dir, 0o755); err != nil {
				return fmt.Errorf("--dir %q: %w", f.dir, err)
			}
			timeout := bundleTimeout
			if cmd.Flag("timeout").Changed {
				timeout = o.timeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			opts := agentapi.BundleOptions{MaxLogBytes: maxLog}
			now := time.Now()
			var results []BundleResult
			if local {
				results = []BundleResult{localBundle(ctx, o.agent(), f.dir, now, opts)}
			} else if results, err = clusterBundles(ctx, o, f, now, opts); err != nil {
				return err
			}
			if err := printBundles(cmd.OutOrStdout(), o.output, results); err != nil {
				return err
			}
			incomplete := 0
			for _, r := range results {
				if r.Error != "" {
					incomplete++
				}
			}
			if incomplete > 0 {
				return fmt.Errorf("%d of %d bundles are missing or lack their agent's part (see ERROR)", incomplete, len(results))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.nodes, "node", nil, "only these nodes (repeat, or comma-separated; default: every node)")
	fl.StringVar(&f.dir, "dir", ".", "the folder the archives are written to (created if missing)")
	fl.BoolVar(&f.local, "local", false, "this node's agent, over --agent-socket (root on the node)")
	fl.StringVar(&f.maxLogSize, "max-log-size", "16Mi", "the end of each log file kept, as a quantity (1Ki to 128Mi)")
	fl.BoolVar(&f.controller, "controller", true, "also the controller's bundle (not with --local)")
	return cmd
}

func parseLogSize(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("--max-log-size %q: not a quantity such as 16Mi: %w", s, err)
	}
	n := q.Value()
	if n < agentapi.MinMaxLogBytes || n > agentapi.MaxMaxLogBytes {
		return 0, fmt.Errorf("--max-log-size %s: must be between 1Ki and 128Mi", s)
	}
	return n, nil
}

// localBundle asks the agent of this node for its bundle.
func localBundle(ctx context.Context, agent *agentapi.Client, dir string, now time.Time, opts agentapi.BundleOptions) BundleResult {
	info, err := agent.Info(ctx)
	if err != nil {
		return BundleResult{Subject: "node", Error: err.Error()}
	}
	path := freePath(dir, nodebundle.Name(info.NodeName, now))
	err = writeFile(path, func(w io.Writer) error { return agent.SupportBundle(ctx, opts, w) })
	return summarize("node/"+info.NodeName, path, err)
}

// clusterBundles writes the bundles of the nodes f names (every node by
// default) and the controller's, four at a time.
func clusterBundles(ctx context.Context, o *options, f bundleFlags, now time.Time, opts agentapi.BundleOptions) ([]BundleResult, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	nodes, err := selectNodes(ctx, kc, f.nodes)
	if err != nil {
		return nil, err
	}
	transport, err := agentTransport(cfg)
	if err != nil {
		return nil, err
	}
	results := make([]BundleResult, len(nodes), len(nodes)+1)
	if f.controller {
		results = append(results, BundleResult{})
	}
	var g errgroup.Group
	g.SetLimit(4)
	for i := range nodes {
		g.Go(func() error {
			results[i] = nodeBundle(ctx, kc, transport, &nodes[i], f.dir, now, opts)
			return nil
		})
	}
	if f.controller {
		g.Go(func() error {
			results[len(nodes)] = controllerBundle(ctx, cfg, kc, f.dir, now, opts)
			return nil
		})
	}
	_ = g.Wait()
	return results, nil
}

// selectNodes returns the named nodes, or every node.
func selectNodes(ctx context.Context, kc kubernetes.Interface, names []string) ([]corev1.Node, error) {
	list, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	if len(names) == 0 {
		return list.Items, nil
	}
	byName := map[string]corev1.Node{}
	var all []string
	for _, n := range list.Items {
		byName[n.Name] = n
		all = append(all, n.Name)
	}
	var out []corev1.Node
	seen := map[string]bool{}
	for _, name := range names {
		n, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("--node %q: no such node (the cluster's nodes: %s)", name, strings.Join(all, ", "))
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// agentTransport authenticates to agents with the kubeconfig's
// credentials. It cannot verify the agent: its certificate is self-signed
// (docs/antctl.md).
func agentTransport(cfg *rest.Config) (http.RoundTripper, error) {
	c := rest.CopyConfig(cfg)
	c.TLSClientConfig = rest.TLSClientConfig{Insecure: true,
		CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CertData: cfg.CertData, KeyData: cfg.KeyData}
	rt, err := rest.TransportFor(c)
	if err != nil {
		return nil, fmt.Errorf("transport to the agents: %w", err)
	}
	return rt, nil
}

// agentPod returns the running agent pod of node.
func agentPod(ctx context.Context, kc kubernetes.Interface, node string) (*corev1.Pod, error) {
	pods, err := kc.CoreV1().Pods(antreaNamespace).List(ctx, metav1.ListOptions{LabelSelector: agentSelector, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, fmt.Errorf("list the agent pods of %s: %w", node, err)
	}
	var live []*corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			live = append(live, &pods.Items[i])
		}
	}
	if len(live) != 1 {
		return nil, fmt.Errorf("node %s has %d agent pods (%s in %s), want 1", node, len(live), agentSelector, antreaNamespace)
	}
	return live[0], nil
}

// agentURL is where the agent of pod serves its HTTPS API: the node's
// address (the agent uses the host network) and its container's port named
// api.
func agentURL(pod *corev1.Pod, node *corev1.Node) (string, error) {
	host := pod.Status.HostIP
	if host == "" {
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				host = a.Address
				break
			}
		}
	}
	if host == "" {
		return "", fmt.Errorf("node %s has no address", node.Name)
	}
	port := config.DefaultAPIPort
	for _, c := range pod.Spec.Containers {
		if c.Name != agentContainer {
			continue
		}
		for _, p := range c.Ports {
			if p.Name == "api" {
				port = int(p.ContainerPort)
			}
		}
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// nodeBundle writes node's bundle: the agent's part, and what the API
// server knows of the node and its agent pod (their objects, container
// logs and events). Without the agent's part, the bundle still has the
// latter, which may say why.
func nodeBundle(ctx context.Context, kc kubernetes.Interface, transport http.RoundTripper, node *corev1.Node, dir string, now time.Time, opts agentapi.BundleOptions) BundleResult {
	name := nodebundle.Name(node.Name, now)
	path := freePath(dir, name)
	pod, podErr := agentPod(ctx, kc, node.Name)
	var agentPart bytes.Buffer
	where := "its agent"
	agentErr := podErr
	if podErr == nil {
		var url string
		if url, agentErr = agentURL(pod, node); agentErr == nil {
			where = url
			agentErr = agentapi.NewRemoteClient(url, transport).SupportBundle(ctx, opts, &agentPart)
		}
	}
	if agentErr == nil {
		if _, err := supportbundle.Files(bytes.NewReader(agentPart.Bytes())); err != nil {
			agentErr = fmt.Errorf("the agent's archive from %s: %w", where, err)
		}
	}
	err := writeFile(path, func(w io.Writer) error {
		bw := supportbundle.NewWriter(w, name, "node/"+node.Name, "antctl "+version.Version)
		if agentErr == nil {
			if err := bw.Include(bytes.NewReader(agentPart.Bytes())); err != nil {
				return err
			}
		} else if err := bw.Add(supportbundle.Entry{Path: "agent", Status: supportbundle.StatusFailed, Error: agentErr.Error(),
			Description: "the agent's part: its state, logs, configuration, OVS and the node's network (GET " + agentapi.PathSupportBundle + " on " + where + ")"}, nil); err != nil {
			return err
		}
		items := []supportbundle.Item{
			{Path: "k8s/node.yaml", Description: "the Node object", Collect: yamlOf(func(context.Context) (any, error) { return stripped(node), nil })},
			{Path: "k8s/agent-pod.yaml", Description: "the agent's Pod object", Collect: yamlOf(func(context.Context) (any, error) {
				if podErr != nil {
					return nil, podErr
				}
				return stripped(pod), nil
			})},
		}
		if pod != nil {
			items = append(items, containerLogItems(kc, pod, "k8s/logs", opts.MaxLogBytes)...)
			items = append(items, supportbundle.Item{Path: "k8s/agent-pod-events.yaml", Description: "the agent pod's events",
				Collect: yamlOf(func(ctx context.Context) (any, error) {
					l, err := kc.CoreV1().Events(antreaNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
					if err != nil {
						return nil, err
					}
					for i := range l.Items {
						l.Items[i].ManagedFields = nil
					}
					return l, nil
				})})
		}
		if err := supportbundle.Collect(ctx, bw, items, supportbundle.Options{MaxItemBytes: int(max(opts.MaxLogBytes, supportbundle.DefaultMaxItemBytes))}); err != nil {
			return err
		}
		return bw.Close()
	})
	res := summarize("node/"+node.Name, path, err)
	if res.Error == "" && agentErr != nil {
		res.Error = "no agent part: " + agentErr.Error()
	}
	return res
}

// containerLogItems are the logs of pod's containers through the API
// server (kubectl logs), and those of their previous run when they
// restarted.
func containerLogItems(kc kubernetes.Interface, pod *corev1.Pod, folder string, maxBytes int64) []supportbundle.Item {
	restarted := map[string]bool{}
	for _, s := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		restarted[s.Name] = s.RestartCount > 0
	}
	var items []supportbundle.Item
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, previous := range []bool{false, true} {
			if previous && !restarted[c.Name] {
				continue
			}
			file, desc := c.Name+".log", "the log of container "+c.Name+" of "+pod.Name+" (kubectl logs)"
			if previous {
				file, desc = c.Name+"-previous.log", "the log of the previous run of container "+c.Name+" of "+pod.Name+" (kubectl logs --previous)"
			}
			opts := &corev1.PodLogOptions{Container: c.Name, Previous: previous, TailLines: ptrTo(int64(podLogTailLines))}
			items = append(items, supportbundle.Item{Path: folder + "/" + file, Description: desc,
				Collect: func(ctx context.Context, out *supportbundle.Out) error {
					r, err := kc.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
					if err != nil {
						return fmt.Errorf("logs of %s/%s: %w", pod.Name, c.Name, err)
					}
					defer r.Close()
					return supportbundle.Tail(r, maxBytes, "kubectl logs "+pod.Name+" -c "+c.Name, out)
				}})
		}
	}
	return items
}

func ptrTo[T any](v T) *T { return &v }

// controllerBundle writes the controller's bundle: its state, computed
// objects and logs, and antrea's pods, configuration and events.
func controllerBundle(ctx context.Context, cfg *rest.Config, kc kubernetes.Interface, dir string, now time.Time, opts agentapi.BundleOptions) BundleResult {
	name := "supportbundle-controller-" + now.UTC().Format("20060102T150405Z")
	path := freePath(dir, name)
	err := writeFile(path, func(w io.Writer) error {
		bw := supportbundle.NewWriter(w, name, "controller", "antctl "+version.Version)
		items := []supportbundle.Item{
			{Path: "controller/controllerinfo.json", Description: "the controller's state (antctl get controllerinfo)",
				Collect: supportbundle.JSON(func(ctx context.Context) (any, error) { return getControllerInfo(ctx, cfg) })},
		}
		api, apiErr := rest.UnversionedRESTClientFor(withJSON(cfg))
		for _, res := range []string{"networkpolicies", "appliedtogroups", "addressgroups"} {
			items = append(items, supportbundle.Item{Path: "controller/" + res + ".json", Description: "the controller's computed " + res + " (" + v1beta1.SchemeGroupVersion.String() + ")",
				Collect: func(ctx context.Context, out *supportbundle.Out) error {
					if apiErr != nil {
						return apiErr
					}
					body, err := api.Get().AbsPath("/apis/" + v1beta1.SchemeGroupVersion.String() + "/" + res).DoRaw(ctx)
					if err != nil {
						return fmt.Errorf("list %s: %w", res, err)
					}
					var indented bytes.Buffer
					if json.Indent(&indented, body, "", "  ") == nil {
						body = append(indented.Bytes(), '\n')
					}
					_, _ = out.Write(body)
					return nil
				}})
		}
		pods, podsErr := kc.CoreV1().Pods(antreaNamespace).List(ctx, metav1.ListOptions{LabelSelector: controllerSelector})
		if podsErr != nil {
			items = append(items, supportbundle.Item{Path: "k8s/logs", Description: "the controller's container logs",
				Collect: func(context.Context, *supportbundle.Out) error {
					return fmt.Errorf("list controller pods: %w", podsErr)
				}})
		} else {
			for i := range pods.Items {
				items = append(items, containerLogItems(kc, &pods.Items[i], "k8s/logs/"+pods.Items[i].Name, opts.MaxLogBytes)...)
			}
		}
		items = append(items,
			supportbundle.Item{Path: "k8s/antrea-pods.yaml", Description: "antrea's pods (" + antreaNamespace + ", app=antrea)",
				Collect: yamlOf(func(ctx context.Context) (any, error) {
					l, err := kc.CoreV1().Pods(antreaNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=antrea"})
					if err != nil {
						return nil, err
					}
					for i := range l.Items {
						l.Items[i].ManagedFields = nil
					}
					return l, nil
				})},
			supportbundle.Item{Path: "k8s/antrea-configmaps.yaml", Description: "antrea's configuration: the ConfigMaps labelled app=antrea (never Secrets)",
				Collect: yamlOf(func(ctx context.Context) (any, error) {
					l, err := kc.CoreV1().ConfigMaps(antreaNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=antrea"})
					if err != nil {
						return nil, err
					}
					for i := range l.Items {
						l.Items[i].ManagedFields = nil
					}
					return l, nil
				})},
			supportbundle.Item{Path: "k8s/antrea-events.yaml", Description: "the events of antrea's objects in " + antreaNamespace,
				Collect: yamlOf(func(ctx context.Context) (any, error) {
					l, err := kc.CoreV1().Events(antreaNamespace).List(ctx, metav1.ListOptions{})
					if err != nil {
						return nil, err
					}
					var keep []corev1.Event
					for _, e := range l.Items {
						if strings.HasPrefix(e.InvolvedObject.Name, "antrea") {
							e.ManagedFields = nil
							keep = append(keep, e)
						}
					}
					return keep, nil
				})},
			supportbundle.Item{Path: "k8s/nodes.yaml", Description: "the Nodes",
				Collect: yamlOf(func(ctx context.Context) (any, error) {
					l, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
					if err != nil {
						return nil, err
					}
					for i := range l.Items {
						l.Items[i].ManagedFields = nil
					}
					return l, nil
				})},
			supportbundle.Item{Path: "k8s/apiservice.yaml", Description: "the controller's APIService",
				Collect: yamlOf(func(ctx context.Context) (any, error) {
					ac, err := aggregator.NewForConfig(cfg)
					if err != nil {
						return nil, err
					}
					svc, err := ac.ApiregistrationV1().APIServices().Get(ctx, v1beta1.SchemeGroupVersion.Version+"."+v1beta1.GroupName, metav1.GetOptions{})
					if err != nil {
						return nil, err
					}
					svc.ManagedFields = nil
					return svc, nil
				})},
			supportbundle.Item{Path: "k8s/version.json", Description: "the API server's version",
				Collect: supportbundle.JSON(func(context.Context) (any, error) { return kc.Discovery().ServerVersion() })},
		)
		if err := supportbundle.Collect(ctx, bw, items, supportbundle.Options{MaxItemBytes: int(max(opts.MaxLogBytes, supportbundle.DefaultMaxItemBytes))}); err != nil {
			return err
		}
		return bw.Close()
	})
	return summarize("controller", path, err)
}

func yamlOf(get func(ctx context.Context) (any, error)) func(context.Context, *supportbundle.Out) error {
	return func(ctx context.Context, out *supportbundle.Out) error {
		v, err := get(ctx)
		if err != nil {
			return err
		}
		data, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		_, _ = out.Write(data)
		return nil
	}
}

// stripped drops an object's managed fields (noise in a bug report).
func stripped[T interface {
	SetManagedFields([]metav1.ManagedFieldsEntry)
}](o T) T {
	o.SetManagedFields(nil)
	return o
}

// freePath is dir/name.tar.gz, or dir/name-N.tar.gz when that exists
// (two runs within a second).
func freePath(dir, name string) string {
	path := filepath.Join(dir, name+".tar.gz")
	for i := 2; ; i++ {
		if _, err := os.Lstat(path); os.IsNotExist(err) {
			return path
		}
		path = filepath.Join(dir, name+"-"+strconv.Itoa(i)+".tar.gz")
	}
}

// writeFile writes path through fill, under a temporary name until it is
// complete: a bundle that failed half-way leaves no file.
func writeFile(path string, fill func(w io.Writer) error) error {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// summarize reads back the index of the archive at path.
func summarize(subject, path string, writeErr error) BundleResult {
	res := BundleResult{Subject: subject}
	if writeErr != nil {
		res.Error = writeErr.Error()
		return res
	}
	res.File = path
	if fi, err := os.Stat(path); err == nil {
		res.Size = fi.Size()
	}
	idx, err := supportbundle.ReadIndex(path)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Items = len(idx.Items)
	res.Failed = idx.Failed()
	return res
}

func printBundles(w io.Writer, output string, results []BundleResult) error {
	if output == "json" {
		return writeJSON(w, results)
	}
	rows := [][]string{{"BUNDLE", "FILE", "SIZE", "ITEMS", "FAILED"}}
	for _, r := range results {
		if r.File == "" {
			rows = append(rows, []string{r.Subject, "-", "-", "-", "-"})
			continue
		}
		rows = append(rows, []string{r.Subject, r.File, humanSize(r.Size), strconv.Itoa(r.Items), strconv.Itoa(len(r.Failed))})
	}
	if err := writeTable(w, rows); err != nil {
		return err
	}
	var notes []string
	for _, r := range results {
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("ERROR %s: %s", r.Subject, r.Error))
		}
		for _, e := range r.Failed {
			if e.Path == "agent" && r.Error != "" {
				continue // said in its ERROR line
			}
			notes = append(notes, fmt.Sprintf("%s: %s failed: %s", r.Subject, e.Path, firstLine(e.Error)))
		}
	}
	if len(notes) > 0 {
		_, err := fmt.Fprintln(w, "\n"+strings.Join(notes, "\n"))
		return err
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
