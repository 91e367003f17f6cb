package cniserver_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver/cniservertest"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     cniserver.Config
		wantErr string
	}{
		{"no configurator", cniserver.Config{}, "Configurator is required"},
		{"negative timeout", cniserver.Config{Configurator: &cniservertest.Fake{}, OperationTimeout: -1}, "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cniserver.New(tt.cfg)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
	srv, err := cniserver.New(cniserver.Config{Configurator: &cniservertest.Fake{}})
	require.NoError(t, err)
	assert.Equal(t, cniv1.DefaultSocketPath, srv.SocketPath())
	assert.EqualError(t, srv.Serve(context.Background()), "cniserver: Serve called before Listen")
}

// TestSocketLifecycle checks permissions, stale socket replacement, refusal
// of a live socket, and removal on stop.
func TestSocketLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "cni.sock")
	newServer := func() *cniserver.Server {
		srv, err := cniserver.New(cniserver.Config{SocketPath: path, Configurator: &cniservertest.Fake{}})
		require.NoError(t, err)
		return srv
	}

	// Listen creates the directory; a server stopped at once removes its
	// socket.
	first := newServer()
	require.NoError(t, first.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, first.Serve(ctx))
	_, err := os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "socket removed on stop")

	// A crashed agent leaves a socket nobody listens on.
	makeDeadSocket(t, path)

	srv := newServer()
	require.NoError(t, srv.Listen(), "stale socket replaced")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode()&(os.ModeType|os.ModePerm))

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()

	assert.ErrorContains(t, newServer().Listen(), "in use by another server")
	c := startClient(t, path)
	assert.Nil(t, call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", netConf(t, "1.0.0", nil))).Error)

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop on context cancel")
	}
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist)

	// A regular file in the way is not removed.
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o644))
	assert.ErrorContains(t, newServer().Listen(), "is not a socket")
}

// TestGracefulStop checks that a stop waits for an in-flight request.
func TestGracefulStop(t *testing.T) {
	fake := &cniservertest.Fake{Delay: 300 * time.Millisecond}
	srv, err := cniserver.New(cniserver.Config{SocketPath: filepath.Join(t.TempDir(), "cni.sock"), Configurator: fake})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	c := startClient(t, srv.SocketPath())
	respc := make(chan *cniv1.CmdResponse, 1)
	go func() { respc <- call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", netConf(t, "1.0.0", nil))) }()
	require.Eventually(t, func() bool { return len(fake.Requests()) == 1 }, 2*time.Second, 5*time.Millisecond)
	cancel()
	resp := <-respc
	assert.Nil(t, resp.Error)
	assert.NoError(t, <-errc)
}
