package cniservertest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
)

// Serve runs a cniserver for configurator on a socket in a fresh t.TempDir()
// until the test ends, and returns the socket path. cfg may set everything
// but Configurator and SocketPath.
func Serve(t testing.TB, configurator cniserver.PodConfigurator, cfg cniserver.Config) string {
	t.Helper()
	cfg.Configurator = configurator
	cfg.SocketPath = filepath.Join(t.TempDir(), "cni.sock")
	srv, err := cniserver.New(cfg)
	if err != nil {
		t.Fatalf("cniserver.New: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return cfg.SocketPath
}
