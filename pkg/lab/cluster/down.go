package cluster

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/lab/hostpaths"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// DownResult says what `down` removed.
type DownResult struct {
	Processes  int
	Namespaces int
	NothingUp  bool
}

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 3 * time.Second

// Down stops every process of the lab and deletes its namespaces and state.
// It needs no lab.json, so it also cleans up after a crashed `up`.
func Down(lab layout.Lab) (DownResult, error) {
	if os.Geteuid() != 0 {
		return DownResult{}, fmt.Errorf("antrea-lab down needs root")
	}
	var res DownResult
	recs, err := proc.Load(lab.PIDDir())
	if err != nil {
		return res, err
	}
	namespaces, err := netnsutil.List(lab.NetnsPrefix())
	if err != nil {
		return res, err
	}
	_, stateErr := os.Stat(lab.StateFile())
	if len(recs) == 0 && len(namespaces) == 0 && errors.Is(stateErr, os.ErrNotExist) {
		res.NothingUp = true
		return res, nil
	}

	// 1. Every process we recorded, in parallel.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, r := range recs {
		if !r.Alive() {
			continue
		}
		wg.Add(1)
		go func(r proc.Record) {
			defer wg.Done()
			if err := r.Stop(stopGrace); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop %s: %w", r.Name, err))
				mu.Unlock()
			}
		}(r)
		res.Processes++
	}
	wg.Wait()

	// 2. Anything still running inside one of our namespaces: pod
	// containers, children of a crashed up, daemons without pid files.
	paths := make([]string, 0, len(namespaces))
	for _, n := range namespaces {
		paths = append(paths, netnsutil.Path(n))
	}
	for attempt := 0; attempt < 3; attempt++ {
		pids, err := proc.InNetns(paths)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			wg.Add(1)
			go func(pid int) {
				defer wg.Done()
				if err := proc.Kill(pid, time.Second); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}(pid)
		}
		wg.Wait()
		res.Processes += len(pids)
	}

	// 3. The namespaces: pods first, then hosts, the underlay last. Their
	// links go with them.
	sort.Slice(namespaces, func(i, j int) bool { return nsOrder(lab, namespaces[i]) < nsOrder(lab, namespaces[j]) })
	for _, n := range namespaces {
		if err := netnsutil.Delete(n); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Namespaces++
	}

	// 4. Mount points made on the host for containers, now that no
	// container uses them.
	if err := hostpaths.RemoveRecorded(lab.CreatedPathsFile()); err != nil {
		errs = append(errs, err)
	}

	// 5. The state: only the folders the lab makes, never the state dir's
	// other content (it may be a folder the user chose).
	if err := removeState(lab); err != nil {
		errs = append(errs, err)
	}
	klog.V(2).InfoS("Lab down", "name", lab.Name, "processes", res.Processes, "namespaces", res.Namespaces)
	return res, errors.Join(errs...)
}

func nsOrder(lab layout.Lab, name string) int {
	switch {
	case strings.HasPrefix(name, lab.PodNetns("")):
		return 0
	case name == lab.UnderlayNetns():
		return 2
	default:
		return 1
	}
}

func removeState(lab layout.Lab) error {
	var errs []error
	for _, p := range []string{lab.PIDDir(), lab.PKIDir(), lab.KubeconfigDir(), lab.EtcdDir(), lab.LogDir(), lab.StateDir + "/nodes", RenderedManifest(lab), lab.StateFile()} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	// Remove the state dir itself only if nothing else is in it.
	_ = os.Remove(lab.StateDir)
	return errors.Join(errs...)
}
