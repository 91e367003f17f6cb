package apiserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSupportBundle(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Pointer[BundleOptions]
	release := make(chan struct{})
	bundle := func(ctx context.Context, w io.Writer, opts BundleOptions) error {
		got.Store(&opts)
		switch opts.MaxLogBytes {
		case 4096:
			return errors.New("cannot start")
		case 8192:
			<-release
		}
		_, err := w.Write([]byte("archive"))
		return err
	}
	go func() { _ = Serve(ctx, socket, Sources{SupportBundle: bundle}) }()
	c := NewClient(socket)
	require.Eventually(t, func() bool { return c.Check(ctx, PathHealthz) == nil }, 5*time.Second, 20*time.Millisecond)

	tests := []struct {
		name     string
		opts     BundleOptions
		wantOpts BundleOptions
		wantErr  string
	}{
		{"defaults", BundleOptions{}, BundleOptions{MaxLogBytes: DefaultMaxLogBytes}, ""},
		{"log size", BundleOptions{MaxLogBytes: 2048}, BundleOptions{MaxLogBytes: 2048}, ""},
		{"log size too small", BundleOptions{MaxLogBytes: 10}, BundleOptions{}, "400 Bad Request: maxLogBytes 10: must be between 1024 and 134217728"},
		{"fails before writing", BundleOptions{MaxLogBytes: 4096}, BundleOptions{MaxLogBytes: 4096}, "500 Internal Server Error: cannot start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got.Store(&BundleOptions{})
			var buf bytes.Buffer
			err := c.SupportBundle(ctx, tc.opts, &buf)
			assert.Equal(t, tc.wantOpts, *got.Load())
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "archive", buf.String())
		})
	}

	// One at a time.
	first := make(chan error, 1)
	go func() { first <- c.SupportBundle(ctx, BundleOptions{MaxLogBytes: 8192}, io.Discard) }()
	require.Eventually(t, func() bool { return got.Load().MaxLogBytes == 8192 }, 5*time.Second, 10*time.Millisecond)
	err := c.SupportBundle(ctx, BundleOptions{}, io.Discard)
	assert.ErrorContains(t, err, "429 Too Many Requests: a support bundle is being collected on this node")
	close(release)
	assert.NoError(t, <-first)
}
