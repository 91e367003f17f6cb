package cniserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
	"github.com/ovs-cni/antrea/pkg/util/unixsock"
)

// Defaults of Config.
const (
	DefaultOperationTimeout = 2 * time.Minute
	DefaultShutdownTimeout  = 5 * time.Second
)

// Config configures a Server.
type Config struct {
	// SocketPath is the unix socket to serve on; cniv1.DefaultSocketPath if
	// empty.
	SocketPath string
	// Configurator does the work; required.
	Configurator PodConfigurator
	// Observe, if set, is called after every request (for latency
	// metrics). It must be fast and safe for concurrent use.
	Observe func(Observation)
	// OperationTimeout bounds one configurator call. The call is not
	// canceled when the plugin gives up (it times out sooner), so that
	// the runtime's retry finds the work done; DefaultOperationTimeout if
	// zero.
	OperationTimeout time.Duration
	// ShutdownTimeout bounds the graceful stop once the context of Serve
	// is done; in-flight requests are then cut. DefaultShutdownTimeout if
	// zero.
	ShutdownTimeout time.Duration
}

// Server serves the Cni gRPC service. Create it with New, then call Run,
// or Listen and Serve.
type Server struct {
	cniv1.UnimplementedCniServer
	cfg   Config
	locks *locker

	mu  sync.Mutex
	lis *net.UnixListener
}

// New validates cfg, fills its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Configurator == nil {
		return nil, errors.New("cniserver: Config.Configurator is required")
	}
	if cfg.SocketPath == "" {
		cfg.SocketPath = cniv1.DefaultSocketPath
	}
	if cfg.OperationTimeout < 0 || cfg.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("cniserver: negative timeout (OperationTimeout %s, ShutdownTimeout %s)",
			cfg.OperationTimeout, cfg.ShutdownTimeout)
	}
	if cfg.OperationTimeout == 0 {
		cfg.OperationTimeout = DefaultOperationTimeout
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	return &Server{cfg: cfg, locks: newLocker()}, nil
}

// SocketPath returns the path the server listens on.
func (s *Server) SocketPath() string { return s.cfg.SocketPath }

// Listen creates the socket (mode 0600), replacing a stale one. Once it
// returns, plugins can connect; their requests wait for Serve.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis != nil {
		return fmt.Errorf("cniserver: already listening on %s", s.cfg.SocketPath)
	}
	lis, err := unixsock.Listen(s.cfg.SocketPath)
	if err != nil {
		return fmt.Errorf("cniserver: %w", err)
	}
	s.lis = lis
	return nil
}

// Serve serves on the socket created by Listen until ctx is done, then
// stops gracefully and removes the socket. It returns nil after a stop
// caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	lis := s.lis
	s.mu.Unlock()
	if lis == nil {
		return errors.New("cniserver: Serve called before Listen")
	}
	defer func() {
		if err := os.Remove(s.cfg.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			klog.ErrorS(err, "Removing CNI socket", "path", s.cfg.SocketPath)
		}
	}()
	gs := grpc.NewServer()
	cniv1.RegisterCniServer(gs, s)

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		timer := time.AfterFunc(s.cfg.ShutdownTimeout, gs.Stop)
		defer timer.Stop()
		gs.GracefulStop()
	}()
	klog.InfoS("CNI server listening", "socket", s.cfg.SocketPath)
	err := gs.Serve(lis)
	close(done)
	<-stopped
	_ = lis.Close() // already closed unless Serve failed early
	if errors.Is(err, grpc.ErrServerStopped) && ctx.Err() != nil {
		err = nil // ctx was done before Serve started
	}
	if err != nil {
		return fmt.Errorf("cniserver: serving on %s: %w", s.cfg.SocketPath, err)
	}
	klog.InfoS("CNI server stopped", "socket", s.cfg.SocketPath)
	return nil
}

// Run is Listen then Serve.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// CmdAdd implements cniv1.CniServer.
func (s *Server) CmdAdd(ctx context.Context, req *cniv1.CmdRequest) (*cniv1.CmdResponse, error) {
	return s.handle(ctx, CmdAdd, req), nil
}

// CmdCheck implements cniv1.CniServer.
func (s *Server) CmdCheck(ctx context.Context, req *cniv1.CmdRequest) (*cniv1.CmdResponse, error) {
	return s.handle(ctx, CmdCheck, req), nil
}

// CmdDel implements cniv1.CniServer.
func (s *Server) CmdDel(ctx context.Context, req *cniv1.CmdRequest) (*cniv1.CmdResponse, error) {
	return s.handle(ctx, CmdDel, req), nil
}

// CmdGC implements cniv1.CniServer.
func (s *Server) CmdGC(ctx context.Context, req *cniv1.CmdRequest) (*cniv1.CmdResponse, error) {
	return s.handle(ctx, CmdGC, req), nil
}

// CmdStatus implements cniv1.CniServer.
func (s *Server) CmdStatus(ctx context.Context, req *cniv1.CmdRequest) (*cniv1.CmdResponse, error) {
	return s.handle(ctx, CmdStatus, req), nil
}
