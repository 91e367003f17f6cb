// Package apiservice keeps the caBundle of the controller's APIService equal
// to the CA of the certificate the controller serves with, so that the
// aggregator trusts it without an external certificate manager.
package apiservice

import (
	"bytes"
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"
)

// Publisher writes a CA bundle into one APIService.
type Publisher struct {
	Client apiregistrationv1.APIServicesGetter
	// Name of the APIService, e.g. v1beta1.controlplane.antrea.io.
	Name     string
	CABundle []byte
	// Period of the re-check that repairs a bundle someone overwrote.
	Period time.Duration
}

// Publish sets the bundle once; it reports whether the APIService changed.
// An APIService that does not exist yet is an error: the manifest creates
// it, possibly after the controller starts.
func (p Publisher) Publish(ctx context.Context) (bool, error) {
	svc, err := p.Client.APIServices().Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get APIService %s: %w", p.Name, err)
	}
	if bytes.Equal(svc.Spec.CABundle, p.CABundle) && !svc.Spec.InsecureSkipTLSVerify {
		return false, nil
	}
	svc = svc.DeepCopy()
	svc.Spec.CABundle = p.CABundle
	svc.Spec.InsecureSkipTLSVerify = false
	if _, err := p.Client.APIServices().Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("update caBundle of APIService %s: %w", p.Name, err)
	}
	return true, nil
}

// Run publishes the bundle, retrying until it succeeds, and then checks it
// every Period until ctx ends.
func (p Publisher) Run(ctx context.Context) {
	period := p.Period
	if period <= 0 {
		period = time.Minute
	}
	published := false
	_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		changed, err := p.Publish(ctx)
		switch {
		case err != nil && apierrors.IsNotFound(err):
			klog.V(2).InfoS("APIService not created yet; retrying", "apiService", p.Name)
		case err != nil:
			klog.ErrorS(err, "Publishing the CA bundle failed; retrying", "apiService", p.Name)
		default:
			if changed || !published {
				klog.InfoS("Published the serving certificate's CA in the APIService", "apiService", p.Name, "changed", changed)
			}
			published = true
		}
		return published, nil
	})
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if changed, err := p.Publish(ctx); err != nil {
			klog.ErrorS(err, "Checking the APIService's CA bundle failed", "apiService", p.Name)
		} else if changed {
			klog.InfoS("Restored the APIService's CA bundle", "apiService", p.Name)
		}
	}, period)
}
