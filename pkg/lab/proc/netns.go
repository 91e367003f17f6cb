package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// InNetns returns the PIDs of every process whose network namespace is one of
// the given namespace files (e.g. /var/run/netns/NAME). It finds processes
// that no pid file knows about, such as the children of a crashed `up`.
func InNetns(nsPaths []string) ([]int, error) {
	want := map[uint64]bool{}
	for _, p := range nsPaths {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			continue
		}
		want[st.Ino] = true
	}
	if len(want) == 0 {
		return nil, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st); err != nil {
			continue
		}
		if want[st.Ino] {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
