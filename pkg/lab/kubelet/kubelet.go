// Package kubelet wires the lab kubelet together: it registers the Node and
// keeps its heartbeat, and runs the pods bound to it as processes attached
// to the network through CNI.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/cni"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/node"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/pods"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/probe"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/proc"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

// Component is the event source name.
const Component = "antrea-lab-kubelet"

// Config comes from the command line.
type Config struct {
	LabName    string
	StateDir   string
	NodeName   string
	NodeIP     string
	Kubeconfig string
	BinDir     string
	// NetworkCheckPeriod is how often running sandboxes are verified with
	// CNI CHECK.
	NetworkCheckPeriod time.Duration
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.LabName == "":
		return errors.New("--lab-name is required")
	case c.StateDir == "":
		return errors.New("--state-dir is required")
	case c.NodeName == "":
		return errors.New("--node-name is required")
	case c.Kubeconfig == "":
		return errors.New("--kubeconfig is required")
	case c.BinDir == "":
		return errors.New("--bin-dir is required")
	case c.NetworkCheckPeriod < 0:
		return fmt.Errorf("--network-check-period %s: must not be negative", c.NetworkCheckPeriod)
	}
	if _, err := netip.ParseAddr(c.NodeIP); err != nil {
		return fmt.Errorf("--node-ip %q: %w", c.NodeIP, err)
	}
	return nil
}

// Run runs the kubelet until ctx ends. Pods keep running afterwards.
func Run(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	lab, err := layout.New(c.LabName, c.StateDir)
	if err != nil {
		return err
	}
	binDir, err := filepath.Abs(c.BinDir)
	if err != nil {
		return fmt.Errorf("--bin-dir %q: %w", c.BinDir, err)
	}
	kubeletDir := lab.KubeletDir(c.NodeName)
	for _, d := range []string{kubeletDir, lab.CNIConfDir(c.NodeName), lab.CNIBinDir(c.NodeName)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", c.Kubeconfig, err)
	}
	restCfg.UserAgent = Component + "/" + c.NodeName
	restCfg.QPS, restCfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("create API client: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	network := cni.New(lab.CNIConfDir(c.NodeName), lab.CNIBinDir(c.NodeName), filepath.Join(kubeletDir, "cni-cache"))

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component, Host: c.NodeName})

	agent, err := node.New(node.Config{Client: client, NodeName: c.NodeName, NodeIP: c.NodeIP, NetworkStatus: network.Status})
	if err != nil {
		return err
	}
	if err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := agent.Register(ctx); err != nil {
			klog.ErrorS(err, "Node registration failed, retrying", "node", c.NodeName)
			return false, nil
		}
		return true, nil
	}); err != nil {
		return fmt.Errorf("register node %s: %w", c.NodeName, err)
	}
	go agent.Run(ctx)

	mgr, err := pods.New(pods.Config{
		Client: client, Recorder: recorder,
		NodeName: c.NodeName, NodeIP: c.NodeIP, LabName: c.LabName,
		BinDir: binDir, SelfExe: self,
		Store:            podstate.Store{Dir: filepath.Join(kubeletDir, "pods")},
		CreatedPathsFile: lab.CreatedPathsFile(),
		CheckPeriod:      c.NetworkCheckPeriod,
		Network:          network,
		Runtime:          proc.NewOS(),
		Netns:            hostNetns{},
		Checker:          probe.NetChecker{Exec: execIn},
		Volumes:          &volumes.Materializer{Client: client},
	})
	if err != nil {
		return err
	}
	klog.InfoS("Lab kubelet running", "node", c.NodeName, "nodeIP", c.NodeIP, "kubeletDir", kubeletDir)
	return mgr.Run(ctx)
}

// hostNetns implements pods.Netns with named namespaces.
type hostNetns struct{}

func (hostNetns) Create(name string) error { return netnsutil.Create(name) }
func (hostNetns) Delete(name string) error { return netnsutil.Delete(name) }
func (hostNetns) Path(name string) string  { return netnsutil.Path(name) }

// execIn runs an exec probe's command in the namespace at path.
func execIn(ctx context.Context, path string, command []string) error {
	argv := command
	if path != "" {
		argv = append([]string{"ip", "netns", "exec", filepath.Base(path)}, command...)
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("exec probe %q: %w: %s", command, err, out)
	}
	return nil
}
