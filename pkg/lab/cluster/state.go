// Package cluster brings a whole lab up and down: the underlay, the control
// plane, the nodes with their OVS and kubelet, the external host, and the
// CNI configuration; it is what `antrea-lab up|down|status` run.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
)

// CNI modes of a lab.
const (
	CNIBridge = "bridge"
	CNIAntrea = "antrea"
)

// State is what lab.json records about a lab that is up.
type State struct {
	Name       string   `json:"name"`
	Nodes      []string `json:"nodes"`
	CNI        string   `json:"cni"`
	BinDir     string   `json:"binDir"`
	KubeBinDir string   `json:"kubeBinDir"`
	// Manifest is the antrea.yml the lab deploys (--cni antrea), with
	// TunnelType and Settings, the configuration keys set on top of the
	// lab's own by 'antrea-lab antrea apply --set'.
	Manifest   string    `json:"manifest,omitempty"`
	TunnelType string    `json:"tunnelType,omitempty"`
	Settings   Settings  `json:"settings,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	Ready      bool      `json:"ready"`
}

// ErrNotUp is returned when a command needs a lab and none is up.
var ErrNotUp = errors.New("no lab is up")

// LoadState reads lab.json.
func LoadState(lab layout.Lab) (State, error) {
	data, err := os.ReadFile(lab.StateFile())
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%w: %s does not exist (run 'antrea-lab up')", ErrNotUp, lab.StateFile())
	}
	if err != nil {
		return State{}, fmt.Errorf("read lab state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("decode lab state %s: %w", lab.StateFile(), err)
	}
	return st, nil
}

func saveState(lab layout.Lab, st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	if err := os.WriteFile(lab.StateFile(), data, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}
