package apiserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"k8s.io/klog/v2"
)

// PathSupportBundle streams this node's support bundle (a .tar.gz).
const PathSupportBundle = "/v1/supportbundle"

// Bounds of BundleOptions.MaxLogBytes.
const (
	DefaultMaxLogBytes = 16 << 20
	MinMaxLogBytes     = 1 << 10
	MaxMaxLogBytes     = 128 << 20
)

// BundleOptions shape a support bundle.
type BundleOptions struct {
	// MaxLogBytes is how much of the end of each log file goes in.
	MaxLogBytes int64
}

// Validate names the option with a bad value, as the query parameter.
func (o BundleOptions) Validate() error {
	if o.MaxLogBytes < MinMaxLogBytes || o.MaxLogBytes > MaxMaxLogBytes {
		return fmt.Errorf("maxLogBytes %d: must be between %d and %d", o.MaxLogBytes, MinMaxLogBytes, MaxMaxLogBytes)
	}
	return nil
}

// BundleFunc writes the node's support bundle to w.
type BundleFunc func(ctx context.Context, w io.Writer, opts BundleOptions) error

// handleBundle serves one bundle at a time: a bundle runs many commands
// on the node, and two at once only make both slower.
func handleBundle(mux *http.ServeMux, bundle BundleFunc) {
	busy := make(chan struct{}, 1)
	mux.HandleFunc("GET "+PathSupportBundle, func(w http.ResponseWriter, r *http.Request) {
		opts := BundleOptions{MaxLogBytes: DefaultMaxLogBytes}
		if v := r.URL.Query().Get("maxLogBytes"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				http.Error(w, fmt.Sprintf("maxLogBytes %q: not a number", v), http.StatusBadRequest)
				return
			}
			opts.MaxLogBytes = n
		}
		if err := opts.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case busy <- struct{}{}:
			defer func() { <-busy }()
		default:
			http.Error(w, "a support bundle is being collected on this node; try again when it is done", http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		cw := &countingWriter{w: w}
		if err := bundle(r.Context(), cw, opts); err != nil {
			if cw.n == 0 {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			// The archive is cut short: the client sees it as a
			// truncated gzip stream.
			klog.ErrorS(err, "Writing a support bundle failed", "written", cw.n)
		}
	})
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// SupportBundle streams the agent's support bundle into w.
func (c *Client) SupportBundle(ctx context.Context, opts BundleOptions, w io.Writer) error {
	path := PathSupportBundle
	if opts.MaxLogBytes != 0 {
		path += "?" + url.Values{"maxLogBytes": {strconv.FormatInt(opts.MaxLogBytes, 10)}}.Encode()
	}
	resp, err := c.do(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("agent API %s on %s: read: %w", PathSupportBundle, c.where, err)
	}
	return nil
}
