// Command antrea-controller computes NetworkPolicies centrally and serves
// them to the agents as the aggregated API controlplane.antrea.io.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	crdv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
	"github.com/ovs-cni/antrea/pkg/apiserver"
	"github.com/ovs-cni/antrea/pkg/controller/apiservice"
	"github.com/ovs-cni/antrea/pkg/controller/config"
	"github.com/ovs-cni/antrea/pkg/controller/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/controller/stats"
	"github.com/ovs-cni/antrea/pkg/controller/traceflow"
	"github.com/ovs-cni/antrea/pkg/crdclient"
	"github.com/ovs-cni/antrea/pkg/kubeclient"
	"github.com/ovs-cni/antrea/pkg/util/logfile"
)

// APIServiceNames are the APIServices the controller's API is registered
// as: the agents' group and the statistics group.
var APIServiceNames = []string{
	v1beta1.SchemeGroupVersion.Version + "." + v1beta1.GroupName,
	statsv1alpha1.SchemeGroupVersion.Version + "." + statsv1alpha1.GroupName,
}

func main() {
	var kubeconfig, configFile string
	var verbosity int
	var logOpts logfile.Options
	server := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:           "antrea-controller",
		Short:         "Computes NetworkPolicies into groups and internal policies and serves them to the agents",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := flag.NewFlagSet("klog", flag.ContinueOnError)
			klog.InitFlags(fs)
			_ = fs.Set("v", fmt.Sprint(verbosity))
			logFile, err := logfile.Setup(fs, logOpts)
			if err != nil {
				return err
			}
			defer logFile.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			defer klog.Flush()
			cfg := config.Default()
			if configFile != "" {
				var err error
				if cfg, err = config.Load(configFile); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("kubeconfig") {
				cfg.Kubeconfig = kubeconfig
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("--kubeconfig: %w", err)
				}
			}
			if !cmd.Flags().Changed("secure-port") {
				server.SecureServing.BindPort = cfg.APIPort
			}
			if !cfg.SelfSigned() && !cmd.Flags().Changed("tls-cert-file") {
				server.SecureServing.ServerCert.CertKey.CertFile = cfg.TLSCertFile
				server.SecureServing.ServerCert.CertKey.KeyFile = cfg.TLSPrivateKeyFile
			}
			return run(ctx, cfg, server)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&configFile, "config", "", "the controller's configuration file (antrea-controller.conf); flags given explicitly win over it")
	flags.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: in-cluster); also used to delegate authentication and authorization")
	flags.IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	logOpts.AddFlags(flags)
	server.SecureServing.AddFlags(flags)
	server.Authentication.AddFlags(flags)
	server.Authorization.AddFlags(flags)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cc config.ControllerConfig, serverOpts *apiserver.Options) error {
	kubeconfig := cc.Kubeconfig
	cfg, err := kubeclient.Config(kubeconfig, cc.KubeAPIServerOverride)
	if err != nil {
		return err
	}
	// Built-in types in protobuf: the initial lists of pods, namespaces
	// and policies decode several times faster than in JSON.
	kubeCfg := rest.CopyConfig(cfg)
	kubeCfg.ContentType = "application/vnd.kubernetes.protobuf"
	kubeCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	if kubeconfig != "" {
		if serverOpts.Authentication.RemoteKubeConfigFile == "" {
			serverOpts.Authentication.RemoteKubeConfigFile = kubeconfig
		}
		if serverOpts.Authorization.RemoteKubeConfigFile == "" {
			serverOpts.Authorization.RemoteKubeConfigFile = kubeconfig
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	controller, err := networkpolicy.New(factory)
	if err != nil {
		return err
	}
	// Traceflows that no agent can take on (source pod missing, not
	// scheduled, on the host network; or its node's agent silent) fail
	// here.
	traceflows, err := crdclient.NewTraceflows(cfg)
	if err != nil {
		return err
	}
	tfInformer := traceflows.NewInformer(0)
	tfController := traceflow.New(traceflows, func(name string) (*crdv1alpha1.Traceflow, bool) {
		obj, ok, _ := tfInformer.GetStore().GetByKey(name)
		if !ok {
			return nil, false
		}
		tf, ok := obj.(*crdv1alpha1.Traceflow)
		return tf, ok
	}, controller.Pod)
	if _, err := tfInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { tfController.Enqueue(traceflowName(obj)) },
		UpdateFunc: func(_, obj any) { tfController.Enqueue(traceflowName(obj)) },
	}); err != nil {
		return fmt.Errorf("watch Traceflows: %w", err)
	}
	// Served on the API's /metrics with the API server's own metrics.
	legacyregistry.RawMustRegister(controller.Collector())
	policies := controller.NetworkPolicies()
	server, err := apiserver.New(serverOpts, apiserver.Sources{
		AppliedToGroups: controller.AppliedToGroups(),
		AddressGroups:   controller.AddressGroups(),
		NetworkPolicies: policies,
		Stats: stats.NewAggregator(func() []stats.Policy {
			list, _ := policies.List()
			out := make([]stats.Policy, len(list))
			for i, p := range list {
				out[i] = stats.Policy{Namespace: p.Namespace, Name: p.Name, UID: p.UID}
			}
			return out
		}),
	})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if ca := server.CABundle(); ca != nil {
		ac, err := aggregator.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("apiregistration client: %w", err)
		}
		for _, name := range APIServiceNames {
			pub := apiservice.Publisher{Client: ac.ApiregistrationV1(), Name: name, CABundle: ca}
			g.Go(func() error { pub.Run(ctx); return nil })
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	g.Go(func() error { return controller.Run(ctx) })
	g.Go(func() error { tfInformer.Run(ctx.Done()); return nil })
	g.Go(func() error { tfController.Run(ctx); return nil })
	g.Go(func() error {
		start := time.Now()
		if err := controller.WaitForInitialSync(ctx); err != nil {
			return err
		}
		klog.InfoS("Computed the initial state; serving it", "duration", time.Since(start))
		return server.Run(ctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// traceflowName is the name of an informer's Traceflow ("" otherwise).
func traceflowName(obj any) string {
	if tf, ok := obj.(*crdv1alpha1.Traceflow); ok {
		return tf.Name
	}
	return ""
}
