package podnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// IPAM delegates address management to the host-local plugin over the
// node's podCIDR, with its store under the agent's state dir, as a CNI
// plugin delegates IPAM.
type IPAM struct {
	BinDir  string // where host-local is
	DataDir string // host-local's store
	PodCIDR netip.Prefix
	Gateway netip.Addr
	exec    invoke.Exec
}

// IPAMRequest identifies one attachment.
type IPAMRequest struct {
	ContainerID string
	Netns       string
	IfName      string
}

// conf is the network config host-local receives.
func (m *IPAM) conf(cniVersion string) ([]byte, error) {
	c := map[string]any{
		"cniVersion": cniVersion,
		"name":       "antrea",
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": m.PodCIDR.String(), "gateway": m.Gateway.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": m.DataDir,
		},
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode host-local config: %w", err)
	}
	return data, nil
}

func (m *IPAM) args(cmd string, r IPAMRequest) *invoke.Args {
	return &invoke.Args{Command: cmd, ContainerID: r.ContainerID, NetNS: r.Netns, IfName: r.IfName, Path: m.BinDir}
}

func (m *IPAM) plugin() string { return filepath.Join(m.BinDir, "host-local") }

// Add allocates an address for the attachment. host-local refuses a
// second allocation for the same container; Add then releases the first
// one and allocates again.
func (m *IPAM) Add(ctx context.Context, r IPAMRequest) (*current.Result, error) {
	conf, err := m.conf("1.0.0")
	if err != nil {
		return nil, err
	}
	res, err := invoke.ExecPluginWithResult(ctx, m.plugin(), conf, m.args("ADD", r), m.exec)
	if err != nil && strings.Contains(err.Error(), "duplicate allocation") {
		// An earlier ADD of this container got its address but did not
		// finish (the agent died): release it and allocate again.
		if derr := m.Del(ctx, r); derr != nil {
			return nil, fmt.Errorf("host-local ADD: %w (and releasing the earlier allocation failed: %v)", err, derr)
		}
		res, err = invoke.ExecPluginWithResult(ctx, m.plugin(), conf, m.args("ADD", r), m.exec)
	}
	if err != nil {
		return nil, fmt.Errorf("host-local ADD: %w", err)
	}
	out, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("host-local result: %w", err)
	}
	if len(out.IPs) == 0 {
		return nil, fmt.Errorf("host-local returned no address")
	}
	return out, nil
}

// Del releases the attachment's address; an unknown one is fine.
func (m *IPAM) Del(ctx context.Context, r IPAMRequest) error {
	conf, err := m.conf("1.0.0")
	if err != nil {
		return err
	}
	if err := invoke.ExecPluginWithoutResult(ctx, m.plugin(), conf, m.args("DEL", r), m.exec); err != nil {
		return fmt.Errorf("host-local DEL: %w", err)
	}
	return nil
}

// GC releases every address not held by one of valid (CNI 1.1 GC).
// host-local has no GC of its own: its store (one file per address, named
// by the address, holding the container ID and interface) is read, and
// every allocation of an unlisted container is released through host-local
// DEL, so the plugin's own locking and bookkeeping stay in charge.
func (m *IPAM) GC(ctx context.Context, valid []types.GCAttachment) error {
	keep := map[string]bool{}
	for _, a := range valid {
		keep[a.ContainerID+"/"+a.IfName] = true
	}
	dir := filepath.Join(m.DataDir, "antrea")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read IPAM store %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue // lock and last_reserved_ip files
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // released meanwhile
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		id := strings.TrimSpace(lines[0])
		ifName := "eth0"
		if len(lines) > 1 {
			ifName = strings.TrimSpace(lines[1])
		}
		if id == "" || keep[id+"/"+ifName] {
			continue
		}
		if err := m.Del(ctx, IPAMRequest{ContainerID: id, IfName: ifName}); err != nil {
			errs = append(errs, fmt.Errorf("release %s of container %s: %w", e.Name(), id, err))
		}
	}
	return errors.Join(errs...)
}
