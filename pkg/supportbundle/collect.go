package supportbundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// DefaultItemTimeout bounds the collection of one item.
const DefaultItemTimeout = 30 * time.Second

// DefaultMaxItemBytes bounds the content of one item: what comes after is
// dropped and the item's note says so.
const DefaultMaxItemBytes = 64 << 20

// Item is one thing to collect into one file of the bundle.
type Item struct {
	// Path of its file in the bundle, e.g. "ovs/flows.txt".
	Path        string
	Description string
	// Collect writes the content to out. An error wrapping ErrSkipped
	// marks the item skipped (not there), any other failed.
	Collect func(ctx context.Context, out *Out) error
}

// Out receives an item's content, up to a limit.
type Out struct {
	buf   bytes.Buffer
	limit int
	// dropped counts the bytes written past the limit.
	dropped int64
	// Note qualifies the content (see Entry.Note).
	Note string
}

// Write keeps what fits under the limit and counts the rest; it never
// fails, so that a command's output is read to its end.
func (o *Out) Write(p []byte) (int, error) {
	room := o.limit - o.buf.Len()
	if room < len(p) {
		if room > 0 {
			o.buf.Write(p[:room])
		}
		o.dropped += int64(len(p) - max(room, 0))
		return len(p), nil
	}
	return o.buf.Write(p)
}

// Bytes is what was kept.
func (o *Out) Bytes() []byte { return o.buf.Bytes() }

// ErrSkipped marks an item that is not there to collect.
var ErrSkipped = errors.New("not collected")

// Skipped returns an error that marks an item skipped, with why.
func Skipped(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSkipped, fmt.Sprintf(format, args...))
}

// IsSkipped reports whether err marks an item skipped.
func IsSkipped(err error) bool { return errors.Is(err, ErrSkipped) }

// Options bound a collection.
type Options struct {
	// ItemTimeout bounds each item (DefaultItemTimeout when 0).
	ItemTimeout time.Duration
	// MaxItemBytes bounds each item's content (DefaultMaxItemBytes when
	// 0).
	MaxItemBytes int
}

// Collect collects items one after the other into w, each with its own
// timeout, and records each in the index. It returns an error only when
// the bundle itself cannot be written (ctx ended, or the reader went
// away): an item's failure is in the index.
func Collect(ctx context.Context, w *Writer, items []Item, opts Options) error {
	if opts.ItemTimeout <= 0 {
		opts.ItemTimeout = DefaultItemTimeout
	}
	if opts.MaxItemBytes <= 0 {
		opts.MaxItemBytes = DefaultMaxItemBytes
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("support bundle: %w", err)
		}
		e := collectOne(ctx, it, opts)
		if err := w.Add(e.Entry, e.data); err != nil {
			return err
		}
	}
	return nil
}

type collected struct {
	Entry
	data []byte
}

func collectOne(ctx context.Context, it Item, opts Options) collected {
	start := time.Now()
	ictx, cancel := context.WithTimeout(ctx, opts.ItemTimeout)
	defer cancel()
	out := &Out{limit: opts.MaxItemBytes}
	err := it.Collect(ictx, out)
	e := Entry{Path: it.Path, Description: it.Description, Status: StatusOK, Note: out.Note,
		Seconds: float64(time.Since(start).Milliseconds()) / 1000}
	if out.dropped > 0 {
		e.Note = joinNotes(e.Note, fmt.Sprintf("cut at %d bytes: %d more bytes dropped", opts.MaxItemBytes, out.dropped))
	}
	switch {
	case errors.Is(err, ErrSkipped):
		e.Status, e.Error = StatusSkipped, err.Error()
	case err != nil:
		if ictx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (after the item timeout of %s)", err, opts.ItemTimeout)
		}
		e.Status, e.Error = StatusFailed, err.Error()
		klog.V(2).InfoS("Support bundle item failed", "item", it.Path, "err", err)
	}
	return collected{Entry: e, data: out.Bytes()}
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
