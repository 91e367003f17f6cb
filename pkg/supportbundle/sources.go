package supportbundle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Runner runs the commands a bundle collects the output of; tests give a
// fake.
type Runner interface {
	// Run runs name with args and returns its standard output. When the
	// command fails, the error names it and quotes its standard error.
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands on this machine, from its PATH.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 1024 {
			msg = msg[len(msg)-1024:]
		}
		if msg != "" {
			return out, fmt.Errorf("%s: %w: %s", commandLine(name, args), err, msg)
		}
		return out, fmt.Errorf("%s: %w", commandLine(name, args), err)
	}
	return out, nil
}

func commandLine(name string, args []string) string {
	return strings.Join(append([]string{name}, args...), " ")
}

// Command collects what a command prints; filter, when not nil, rewrites
// it (e.g. to redact secrets) before it goes into the bundle.
func Command(r Runner, filter func([]byte) []byte, name string, args ...string) func(context.Context, *Out) error {
	return func(ctx context.Context, out *Out) error {
		data, err := r.Run(ctx, name, args...)
		if filter != nil {
			data = filter(data)
		}
		_, _ = out.Write(data)
		if err != nil {
			return err
		}
		out.Note = joinNotes(out.Note, "output of: "+commandLine(name, args))
		return nil
	}
}

// JSON collects what get returns, as indented JSON.
func JSON(get func(ctx context.Context) (any, error)) func(context.Context, *Out) error {
	return func(ctx context.Context, out *Out) error {
		v, err := get(ctx)
		if err != nil {
			return err
		}
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		_, _ = out.Write(append(data, '\n'))
		return nil
	}
}

// FileTail collects the end of the file at path: at most max bytes, from
// the start of a line. A file that does not exist is skipped.
func FileTail(path string, max int64) func(context.Context, *Out) error {
	return func(_ context.Context, out *Out) error {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Skipped("no file %s", path)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		size := fi.Size()
		if size > max {
			if _, err := f.Seek(size-max, io.SeekStart); err != nil {
				return fmt.Errorf("seek %s: %w", path, err)
			}
			r := bufio.NewReader(io.LimitReader(f, max))
			if _, err := r.ReadBytes('\n'); err != nil && !errors.Is(err, io.EOF) { // a partial first line
				return fmt.Errorf("read %s: %w", path, err)
			}
			n, err := io.Copy(out, r)
			if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			out.Note = joinNotes(out.Note, fmt.Sprintf("%s: the last %d bytes of %d", path, n, size))
			return nil
		}
		if _, err := io.Copy(out, io.LimitReader(f, max)); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		out.Note = joinNotes(out.Note, path)
		return nil
	}
}

// Tail copies the end of what r gives into out: at most max bytes, from
// the start of a line when it had to cut. what names the source in the
// note.
func Tail(r io.Reader, max int64, what string, out *Out) error {
	var keep []byte
	total := int64(0)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		total += int64(n)
		keep = append(keep, buf[:n]...)
		if int64(len(keep)) > 2*max {
			keep = append([]byte(nil), keep[int64(len(keep))-max:]...)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if int64(len(keep)) > max || total > int64(len(keep)) {
		if int64(len(keep)) > max {
			keep = keep[int64(len(keep))-max:]
		}
		if i := bytes.IndexByte(keep, '\n'); i >= 0 {
			keep = keep[i+1:]
		}
		out.Note = joinNotes(out.Note, fmt.Sprintf("%s: the last %d bytes of %d", what, len(keep), total))
	} else {
		out.Note = joinNotes(out.Note, what)
	}
	_, _ = out.Write(keep)
	return nil
}

// LogFiles returns one item per log file in dir whose name matches one of
// patterns (filepath.Match), newest first, under folder in the bundle:
// each the end of its file up to maxEach bytes, and no more items once
// total bytes are planned. A missing dir gives one skipped item.
func LogFiles(dir, folder string, patterns []string, maxEach, total int64) []Item {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []Item{{Path: folder + "/" + filepath.Base(dir), Description: "log files in " + dir,
			Collect: func(context.Context, *Out) error {
				if errors.Is(err, fs.ErrNotExist) {
					return Skipped("no folder %s", dir)
				}
				return err
			}}}
	}
	type file struct {
		name string
		size int64
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, e.Name()); ok {
				if fi, err := e.Info(); err == nil {
					files = append(files, file{e.Name(), fi.Size(), fi.ModTime()})
				}
				break
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	var items []Item
	planned := int64(0)
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		it := Item{Path: folder + "/" + f.name, Description: "log file " + path}
		if planned >= total {
			it.Collect = func(context.Context, *Out) error {
				return Skipped("older log, over the bundle's log budget of %d bytes", total)
			}
		} else {
			it.Collect = FileTail(path, maxEach)
			planned += min(f.size, maxEach)
		}
		items = append(items, it)
	}
	return items
}
