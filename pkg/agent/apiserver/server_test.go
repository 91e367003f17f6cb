package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/policysync"
)

func TestHandler(t *testing.T) {
	var state atomic.Pointer[policysync.RealizedState]
	var notReady atomic.Pointer[error]
	h := Handler(Sources{NetworkPolicies: state.Load, Ready: func() error {
		if e := notReady.Load(); e != nil {
			return *e
		}
		return nil
	}})
	tests := []struct {
		name     string
		method   string
		path     string
		set      *policysync.RealizedState
		notReady error
		wantCode int
		wantBody string
	}{
		{"health", http.MethodGet, PathHealthz, nil, nil, http.StatusOK, "ok"},
		{"ready", http.MethodGet, PathReadyz, nil, nil, http.StatusOK, "ok"},
		{"not ready", http.MethodGet, PathReadyz, nil, errors.New("not serving CNI yet"), http.StatusServiceUnavailable, "not ready: not serving CNI yet"},
		{"alive while not ready", http.MethodGet, PathHealthz, nil, errors.New("not serving CNI yet"), http.StatusOK, "ok"},
		{"nothing realized yet", http.MethodGet, PathNetworkPolicies, nil, nil, http.StatusServiceUnavailable, "no NetworkPolicy state realized yet"},
		{"realized", http.MethodGet, PathNetworkPolicies, &policysync.RealizedState{Digest: "abc"}, nil, http.StatusOK, `"digest": "abc"`},
		{"read only", http.MethodPost, PathNetworkPolicies, nil, nil, http.StatusMethodNotAllowed, ""},
		{"unknown path", http.MethodGet, "/v1/nope", nil, nil, http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state.Store(tc.set)
			notReady.Store(nil)
			if tc.notReady != nil {
				notReady.Store(&tc.notReady)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			assert.Equal(t, tc.wantCode, rec.Code)
			assert.Contains(t, rec.Body.String(), tc.wantBody)
		})
	}
}

func TestServeAndClientOverUnixSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	want := &policysync.RealizedState{Digest: "d1", RealizedAt: time.Unix(5, 0).UTC(),
		Policies: []policysync.RealizedPolicy{{Namespace: "x", Name: "p", Rules: 2}}}
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, socket, Sources{NetworkPolicies: func() *policysync.RealizedState { return want }})
	}()

	c := NewClient(socket)
	var got *policysync.RealizedState
	require.Eventually(t, func() bool {
		var err error
		got, err = c.NetworkPolicies(ctx)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, want, got)
	require.NoError(t, c.Check(ctx, PathReadyz))
	fi, err := os.Stat(socket)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only root may use the socket")

	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(socket)
	assert.True(t, os.IsNotExist(err), "the socket is removed on stop")
	_, err = c.NetworkPolicies(context.Background())
	assert.ErrorContains(t, err, socket)
}
