package podnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"

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

// Add allocates an address for the attachment (host-local returns the
// same address again for a container it already knows).
func (m *IPAM) Add(ctx context.Context, r IPAMRequest) (*current.Result, error) {
	conf, err := m.conf("1.0.0")
	if err != nil {
		return nil, err
	}
	res, err := invoke.ExecPluginWithResult(ctx, m.plugin(), conf, m.args("ADD", r), m.exec)
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
func (m *IPAM) GC(ctx context.Context, valid []types.GCAttachment) error {
	conf, err := m.conf("1.1.0")
	if err != nil {
		return err
	}
	var c map[string]any
	if err := json.Unmarshal(conf, &c); err != nil {
		return fmt.Errorf("decode host-local config: %w", err)
	}
	if valid == nil {
		valid = []types.GCAttachment{}
	}
	c["cni.dev/valid-attachments"] = valid
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode host-local GC config: %w", err)
	}
	if err := invoke.ExecPluginWithoutResult(ctx, m.plugin(), data, &invoke.Args{Command: "GC", Path: m.BinDir}, m.exec); err != nil {
		return fmt.Errorf("host-local GC: %w", err)
	}
	return nil
}
