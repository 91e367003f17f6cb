package supportbundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func entryOf(t *testing.T, idx *Index, path string) Entry {
	t.Helper()
	for _, e := range idx.Items {
		if e.Path == path {
			return e
		}
	}
	t.Fatalf("no index entry %s in %+v", path, idx.Items)
	return Entry{}
}

func indexOf(t *testing.T, files map[string][]byte) *Index {
	t.Helper()
	var idx Index
	require.NoError(t, json.Unmarshal(files[IndexFile], &idx))
	return &idx
}

func TestCollect(t *testing.T) {
	tests := []struct {
		name       string
		collect    func(ctx context.Context, out *Out) error
		wantStatus string
		wantData   string
		wantError  string
		wantNote   string
	}{
		{"ok", func(_ context.Context, out *Out) error { _, _ = out.Write([]byte("hello\n")); return nil },
			StatusOK, "hello\n", "", ""},
		{"failed keeps what was read", func(_ context.Context, out *Out) error {
			_, _ = out.Write([]byte("partial"))
			return errors.New("connection reset")
		}, StatusFailed, "partial", "connection reset", ""},
		{"skipped", func(context.Context, *Out) error { return Skipped("no file /x.log") },
			StatusSkipped, "", "not collected: no file /x.log", ""},
		{"timeout", func(ctx context.Context, _ *Out) error { <-ctx.Done(); return ctx.Err() },
			StatusFailed, "", "context deadline exceeded (after the item timeout of 50ms)", ""},
		{"cut at the item limit", func(_ context.Context, out *Out) error {
			_, _ = out.Write([]byte("0123456789"))
			_, _ = out.Write([]byte("abcdef"))
			return nil
		}, StatusOK, "0123456789ab", "", "cut at 12 bytes: 4 more bytes dropped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, "bundle-x", "node/n1", "test v1")
			require.NoError(t, Collect(context.Background(), w, []Item{{Path: "a/item.txt", Description: "an item", Collect: tc.collect}},
				Options{ItemTimeout: 50 * time.Millisecond, MaxItemBytes: 12}))
			require.NoError(t, w.Close())
			files, err := Files(&buf)
			require.NoError(t, err)
			idx := indexOf(t, files)
			assert.Equal(t, "node/n1", idx.Subject)
			assert.Equal(t, []string{"test v1"}, idx.Producers)
			e := entryOf(t, idx, "a/item.txt")
			assert.Equal(t, tc.wantStatus, e.Status)
			assert.Equal(t, tc.wantError, e.Error)
			assert.Equal(t, tc.wantNote, e.Note)
			assert.Equal(t, "an item", e.Description)
			assert.Equal(t, int64(len(tc.wantData)), e.Size)
			if tc.wantData == "" {
				assert.NotContains(t, files, "a/item.txt", "no file for an item without content")
			} else {
				assert.Equal(t, tc.wantData, string(files["a/item.txt"]))
			}
		})
	}
}

func TestCollectStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWriter(&bytes.Buffer{}, "b", "controller", "test")
	items := []Item{
		{Path: "one", Collect: func(context.Context, *Out) error { cancel(); return nil }},
		{Path: "two", Collect: func(context.Context, *Out) error { t.Error("collected after cancel"); return nil }},
	}
	assert.ErrorIs(t, Collect(ctx, w, items, Options{}), context.Canceled)
}

func TestWriterRejectsBadPaths(t *testing.T) {
	w := NewWriter(&bytes.Buffer{}, "b", "controller", "test")
	for _, p := range []string{"", "/abs", "../up", "a/../b", IndexFile} {
		assert.Error(t, w.Add(Entry{Path: p, Status: StatusOK}, []byte("x")), p)
	}
	require.NoError(t, w.Add(Entry{Path: "a", Status: StatusOK}, []byte("x")))
	assert.ErrorContains(t, w.Add(Entry{Path: "a", Status: StatusOK}, []byte("x")), "added twice")
}

func TestFileTail(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "agent.log")
	require.NoError(t, os.WriteFile(log, []byte("line one\nline two\nline three\n"), 0o644))
	tests := []struct {
		name     string
		path     string
		max      int64
		want     string
		wantNote string
		wantErr  error
	}{
		{"whole file", log, 1000, "line one\nline two\nline three\n", log, nil},
		{"the end, from a line's start", log, 15, "line three\n", log + ": the last 11 bytes of 29", nil},
		{"missing", filepath.Join(dir, "none.log"), 10, "", "", ErrSkipped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := &Out{limit: 1 << 20}
			err := FileTail(tc.path, tc.max)(context.Background(), out)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(out.Bytes()))
			assert.Equal(t, tc.wantNote, out.Note)
		})
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		max      int64
		want     string
		wantNote string
	}{
		{"all of it", "a\nb\n", 10, "a\nb\n", "pod log"},
		{"the end from a line", "first line\nsecond\nthird\n", 12, "third\n", "pod log: the last 6 bytes of 24"},
		{"long input", strings.Repeat("0123456789\n", 30000), 22, "0123456789\n", "pod log: the last 11 bytes of 330000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := &Out{limit: 1 << 20}
			require.NoError(t, Tail(strings.NewReader(tc.in), tc.max, "pod log", out))
			assert.Equal(t, tc.want, string(out.Bytes()))
			assert.Equal(t, tc.wantNote, out.Note)
		})
	}
}

func TestLogFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for i, name := range []string{"antrea-agent.log", "antrea-agent-2026-01-01T00-00-00.000.log", "antrea-agent-2025-12-01T00-00-00.000.log", "other.txt"} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("x\n", 50)), 0o644))
		mod := now.Add(-time.Duration(i) * time.Hour)
		require.NoError(t, os.Chtimes(p, mod, mod))
	}
	items := LogFiles(dir, "logs", []string{"antrea-*.log"}, 100, 150)
	var paths []string
	for _, it := range items {
		paths = append(paths, it.Path)
	}
	assert.Equal(t, []string{"logs/antrea-agent.log", "logs/antrea-agent-2026-01-01T00-00-00.000.log", "logs/antrea-agent-2025-12-01T00-00-00.000.log"}, paths, "newest first")
	out := &Out{limit: 1 << 20}
	require.NoError(t, items[0].Collect(context.Background(), out))
	assert.Len(t, out.Bytes(), 100)
	assert.ErrorIs(t, items[2].Collect(context.Background(), &Out{limit: 10}), ErrSkipped, "over the budget")

	missing := LogFiles(filepath.Join(dir, "none"), "logs", []string{"*.log"}, 100, 100)
	require.Len(t, missing, 1)
	assert.ErrorIs(t, missing[0].Collect(context.Background(), &Out{}), ErrSkipped)
}

type fakeRunner map[string]struct {
	out string
	err error
}

func (f fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	r, ok := f[commandLine(name, args)]
	if !ok {
		return nil, errors.New("unexpected command " + commandLine(name, args))
	}
	return []byte(r.out), r.err
}

func TestCommandAndJSON(t *testing.T) {
	r := fakeRunner{
		"ip addr":  {out: "1: lo\n"},
		"nft list": {out: "partial", err: errors.New("nft list: exit status 1: permission denied")},
		"ovs show": {out: "psk=secret\n"},
	}
	redact := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("secret"), []byte("<redacted>")) }
	var buf bytes.Buffer
	w := NewWriter(&buf, "b", "node/n", "test")
	require.NoError(t, Collect(context.Background(), w, []Item{
		{Path: "ip.txt", Collect: Command(r, nil, "ip", "addr")},
		{Path: "nft.txt", Collect: Command(r, nil, "nft", "list")},
		{Path: "ovs.txt", Collect: Command(r, redact, "ovs", "show")},
		{Path: "info.json", Collect: JSON(func(context.Context) (any, error) { return map[string]int{"pods": 2}, nil })},
		{Path: "bad.json", Collect: JSON(func(context.Context) (any, error) { return nil, errors.New("not ready") })},
	}, Options{}))
	require.NoError(t, w.Close())
	files, err := Files(&buf)
	require.NoError(t, err)
	idx := indexOf(t, files)
	assert.Equal(t, "1: lo\n", string(files["ip.txt"]))
	assert.Equal(t, "output of: ip addr", entryOf(t, idx, "ip.txt").Note)
	assert.Equal(t, "partial", string(files["nft.txt"]))
	assert.Equal(t, "nft list: exit status 1: permission denied", entryOf(t, idx, "nft.txt").Error)
	assert.Equal(t, "psk=<redacted>\n", string(files["ovs.txt"]))
	assert.JSONEq(t, `{"pods": 2}`, string(files["info.json"]))
	assert.Equal(t, StatusFailed, entryOf(t, idx, "bad.json").Status)
	assert.Len(t, idx.Failed(), 2)
}

func TestExecRunner(t *testing.T) {
	out, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo out; echo oops >&2; exit 3")
	assert.Equal(t, "out\n", string(out))
	assert.ErrorContains(t, err, "sh -c echo out; echo oops >&2; exit 3: exit status 3: oops")
	_, err = ExecRunner{}.Run(context.Background(), "no-such-command-here")
	assert.ErrorContains(t, err, "executable file not found")
}

func TestInclude(t *testing.T) {
	var agent bytes.Buffer
	aw := NewWriter(&agent, "agent-bundle", "node/n1", "antrea-agent v1")
	require.NoError(t, aw.Add(Entry{Path: "logs/antrea-agent.log", Status: StatusOK}, []byte("log\n")))
	require.NoError(t, aw.Add(Entry{Path: "node/nftables.txt", Status: StatusFailed, Error: "nft: not found"}, nil))
	require.NoError(t, aw.Close())

	var merged bytes.Buffer
	w := NewWriter(&merged, "supportbundle-n1", "node/n1", "antctl v1")
	require.NoError(t, w.Include(bytes.NewReader(agent.Bytes())))
	require.NoError(t, w.Add(Entry{Path: "k8s/node.yaml", Status: StatusOK}, []byte("name: n1\n")))
	assert.ErrorContains(t, w.Add(Entry{Path: "logs/antrea-agent.log", Status: StatusOK}, []byte("x")), "added twice")
	require.NoError(t, w.Close())

	files, err := Files(bytes.NewReader(merged.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, "log\n", string(files["logs/antrea-agent.log"]))
	assert.Equal(t, "name: n1\n", string(files["k8s/node.yaml"]))
	idx := indexOf(t, files)
	assert.Equal(t, []string{"antctl v1", "antrea-agent v1"}, idx.Producers)
	var paths []string
	for _, e := range idx.Items {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"logs/antrea-agent.log", "node/nftables.txt", "k8s/node.yaml"}, paths)

	file := filepath.Join(t.TempDir(), "b.tar.gz")
	require.NoError(t, os.WriteFile(file, merged.Bytes(), 0o644))
	read, err := ReadIndex(file)
	require.NoError(t, err)
	assert.Len(t, read.Items, 3)
	assert.Equal(t, "node/nftables.txt", read.Failed()[0].Path)

	assert.ErrorContains(t, NewWriter(&bytes.Buffer{}, "x", "s", "p").Include(strings.NewReader("not gzip")), "read bundle")
}
