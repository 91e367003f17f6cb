// Package apiserver is the agent's API: plain HTTP with JSON bodies on a
// unix socket that only root can open (mode 0600), for antctl on the node,
// the probes and tests; being local, it needs no certificates or tokens.
// The same paths are also served over HTTPS on a TCP port (secure.go) to
// clients the kube-apiserver authenticates and authorizes, for antctl
// from outside the node.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/util/unixsock"
)

// Paths served.
const (
	PathHealthz         = "/healthz"
	PathReadyz          = "/readyz"
	PathNetworkPolicies = "/v1/networkpolicies"
	PathMetrics         = "/metrics"
)

// Sources give the API its data.
type Sources struct {
	// NetworkPolicies returns what the agent last realized, nil before
	// its first realization.
	NetworkPolicies func() *policysync.RealizedState
	// Metrics, when not nil, are served in the Prometheus text format.
	Metrics prometheus.Gatherer
	// Ready returns nil once the agent serves pods; nil Ready means
	// always ready.
	Ready func() error
	// Inspector, when not nil, serves the inspection paths (antctl).
	Inspector Inspector
	// SupportBundle, when not nil, serves PathSupportBundle.
	SupportBundle BundleFunc
}

// Handler serves the API's paths from src.
func Handler(src Sources) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		if src.Ready != nil {
			if err := src.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+PathNetworkPolicies, func(w http.ResponseWriter, _ *http.Request) {
		state := src.NetworkPolicies()
		if state == nil {
			http.Error(w, "no NetworkPolicy state realized yet", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, state)
	})
	if src.Inspector != nil {
		handleInspect(mux, src.Inspector)
	}
	if src.SupportBundle != nil {
		handleBundle(mux, src.SupportBundle)
	}
	if src.Metrics != nil {
		mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(src.Metrics, promhttp.HandlerOpts{ErrorLog: promErrorLog{}}))
	}
	return mux
}

// promErrorLog sends promhttp's errors to klog.
type promErrorLog struct{}

func (promErrorLog) Println(v ...any) { klog.ErrorS(nil, "Serving metrics", "error", fmt.Sprint(v...)) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		klog.ErrorS(err, "Writing an API answer failed")
	}
}

// Serve serves src on the unix socket at path until ctx ends, then
// removes the socket.
func Serve(ctx context.Context, path string, src Sources) error {
	return ServeHandler(ctx, path, Handler(src))
}

// ServeHandler serves h on the unix socket at path until ctx ends, then
// removes the socket.
func ServeHandler(ctx context.Context, path string, h http.Handler) error {
	lis, err := unixsock.Listen(path)
	if err != nil {
		return fmt.Errorf("agent API: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("Serving the agent API", "socket", path)
	err = srv.Serve(lis)
	_ = os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("agent API on %s: %w", path, err)
}
