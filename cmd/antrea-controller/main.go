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
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apiserver"
	"github.com/ovs-cni/antrea/pkg/controller/networkpolicy"
)

func main() {
	var kubeconfig string
	var verbosity int
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
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			defer klog.Flush()
			return run(ctx, kubeconfig, server)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: in-cluster); also used to delegate authentication and authorization")
	flags.IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	server.SecureServing.AddFlags(flags)
	server.Authentication.AddFlags(flags)
	server.Authorization.AddFlags(flags)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig string, serverOpts *apiserver.Options) error {
	cfg, err := clientConfig(kubeconfig)
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
	server, err := apiserver.New(serverOpts, apiserver.Sources{
		AppliedToGroups: controller.AppliedToGroups(),
		AddressGroups:   controller.AddressGroups(),
		NetworkPolicies: controller.NetworkPolicies(),
	})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	g.Go(func() error { return controller.Run(ctx) })
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

func clientConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (pass --kubeconfig outside a cluster): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load --kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}
