// Package hostpaths keeps the lab-wide list of paths the lab created on the
// machine's own file system: the mount points that containers of our own
// binaries need (e.g. /var/run/secrets/kubernetes.io/serviceaccount). They
// are removed only by `antrea-lab down`: removing one while the lab runs
// would detach the same mount in every other container that uses it.
package hostpaths

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Record appends paths to the list in file. Appends of one small write are
// atomic, so kubelets of several nodes can share the file.
func Record(file string, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open created-paths list: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(paths, "\n") + "\n"); err != nil {
		return fmt.Errorf("record created paths: %w", err)
	}
	return nil
}

// RemoveRecorded removes every recorded path that is an empty folder or an
// empty file, deepest first, then the list itself. Paths that hold
// something are left alone.
func RemoveRecorded(file string) error {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open created-paths list: %w", err)
	}
	seen := map[string]bool{}
	var paths []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		p := strings.TrimSpace(s.Text())
		if p != "" && p != "/" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	f.Close()
	if err := s.Err(); err != nil {
		return fmt.Errorf("read created-paths list: %w", err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || (!fi.IsDir() && fi.Size() > 0) {
			continue
		}
		_ = os.Remove(p) // a folder that is not empty stays
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove created-paths list: %w", err)
	}
	return nil
}
