// Package supportbundle writes support bundles: one .tar.gz whose files
// sit under one folder, with index.json listing every item that was asked
// for, whether it was collected, and why not. Collecting one item never
// fails the bundle: its error goes into the index.
package supportbundle

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
)

// IndexFile is the name of the index in every bundle's folder.
const IndexFile = "index.json"

// Statuses of an item.
const (
	// StatusOK: collected.
	StatusOK = "ok"
	// StatusFailed: collection failed; Error says why. What was read
	// before the failure, if anything, is in the archive.
	StatusFailed = "failed"
	// StatusSkipped: not there on this node (a log file that does not
	// exist, say); Error says what was looked for.
	StatusSkipped = "skipped"
)

// Entry is one item in the index.
type Entry struct {
	// Path of the file in the bundle, relative to its folder.
	Path        string `json:"path"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	// Size in bytes of the file in the bundle (0 when there is none).
	Size int64 `json:"size"`
	// Note qualifies the content, e.g. that only the end of a log is
	// there.
	Note     string  `json:"note,omitempty"`
	Seconds  float64 `json:"seconds"`
	Producer string  `json:"producer,omitempty"`
}

// Index is index.json: what the bundle holds.
type Index struct {
	// Subject is what the bundle describes: "node/<name>" or
	// "controller".
	Subject string `json:"subject"`
	// Producers made the bundle, with their versions ("antrea-agent
	// v0.1.0 on node-1", "antctl v0.1.0").
	Producers []string  `json:"producers"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Items     []Entry   `json:"items"`
}

// Failed returns the entries that failed.
func (x *Index) Failed() []Entry {
	var out []Entry
	for _, e := range x.Items {
		if e.Status == StatusFailed {
			out = append(out, e)
		}
	}
	return out
}

// Writer writes a bundle: a gzipped tar of files under one folder. Close
// writes the index and must be called.
type Writer struct {
	gz    *gzip.Writer
	tw    *tar.Writer
	root  string
	index Index
	now   func() time.Time
	names map[string]bool
}

// NewWriter starts a bundle on w with its files under the folder root.
func NewWriter(w io.Writer, root, subject, producer string) *Writer {
	gz := gzip.NewWriter(w)
	bw := &Writer{gz: gz, tw: tar.NewWriter(gz), root: root, now: time.Now, names: map[string]bool{}}
	bw.index = Index{Subject: subject, Producers: []string{producer}, Started: bw.now().UTC()}
	return bw
}

// Add records e in the index and writes data as its file when there is
// any (also for a failed item: what was read before the failure).
func (w *Writer) Add(e Entry, data []byte) error {
	if !validPath(e.Path) {
		return fmt.Errorf("bundle item %q: not a relative path", e.Path)
	}
	if w.names[e.Path] {
		return fmt.Errorf("bundle item %q: added twice", e.Path)
	}
	w.names[e.Path] = true
	e.Size = 0
	if len(data) > 0 {
		hdr := &tar.Header{Name: path.Join(w.root, e.Path), Mode: 0o644, Size: int64(len(data)), ModTime: w.now(), Typeflag: tar.TypeReg}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("bundle item %s: %w", e.Path, err)
		}
		if _, err := w.tw.Write(data); err != nil {
			return fmt.Errorf("bundle item %s: %w", e.Path, err)
		}
		e.Size = int64(len(data))
	}
	w.index.Items = append(w.index.Items, e)
	return nil
}

// Include copies the files and the index entries of another bundle into
// this one (its folder name is dropped), and adds its producers.
func (w *Writer) Include(r io.Reader) error {
	var idx *Index
	err := walk(r, func(name string, data []byte) error {
		if name == IndexFile {
			idx = &Index{}
			if err := json.Unmarshal(data, idx); err != nil {
				return fmt.Errorf("included bundle's %s: %w", IndexFile, err)
			}
			return nil
		}
		if !validPath(name) || w.names[name] {
			return fmt.Errorf("included bundle: bad or duplicate file %q", name)
		}
		w.names[name] = true
		hdr := &tar.Header{Name: path.Join(w.root, name), Mode: 0o644, Size: int64(len(data)), ModTime: w.now(), Typeflag: tar.TypeReg}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := w.tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if idx == nil {
		return fmt.Errorf("included bundle has no %s", IndexFile)
	}
	for _, e := range idx.Items {
		w.names[e.Path] = true
	}
	w.index.Items = append(w.index.Items, idx.Items...)
	w.index.Producers = append(w.index.Producers, idx.Producers...)
	if !idx.Started.IsZero() && idx.Started.Before(w.index.Started) {
		w.index.Started = idx.Started
	}
	return nil
}

// Close writes the index and ends the archive (it does not close the
// underlying writer).
func (w *Writer) Close() error {
	w.index.Finished = w.now().UTC()
	data, err := json.MarshalIndent(w.index, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	hdr := &tar.Header{Name: path.Join(w.root, IndexFile), Mode: 0o644, Size: int64(len(data)), ModTime: w.now(), Typeflag: tar.TypeReg}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("bundle index: %w", err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("bundle index: %w", err)
	}
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("close bundle: %w", err)
	}
	if err := w.gz.Close(); err != nil {
		return fmt.Errorf("close bundle: %w", err)
	}
	return nil
}

func validPath(p string) bool {
	return p != "" && p != IndexFile && !path.IsAbs(p) && path.Clean(p) == p && !strings.HasPrefix(p, "../") && p != ".."
}

// walk calls fn with every regular file of the bundle in r, its name
// relative to the bundle's folder.
func walk(r io.Reader, fn func(name string, data []byte) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read bundle: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		_, name, ok := strings.Cut(path.Clean(hdr.Name), "/")
		if !ok {
			return fmt.Errorf("read bundle: %s is not in the bundle's folder", hdr.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("read bundle %s: %w", hdr.Name, err)
		}
		if err := fn(name, data); err != nil {
			return err
		}
	}
}

// Files returns the files of the bundle in r by their path relative to
// its folder (index.json included).
func Files(r io.Reader) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := walk(r, func(name string, data []byte) error {
		out[name] = data
		return nil
	})
	return out, err
}

// ReadIndex returns the index of the bundle file at file.
func ReadIndex(file string) (*Index, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var idx *Index
	err = walk(f, func(name string, data []byte) error {
		if name == IndexFile {
			idx = &Index{}
			return json.Unmarshal(data, idx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if idx == nil {
		return nil, fmt.Errorf("%s: no %s", file, IndexFile)
	}
	return idx, nil
}
