// Package podstate persists what the lab kubelet knows about each pod
// sandbox (IDs, namespace, IPs, process IDs, restart counts) as JSON under
// <kubelet dir>/pods/<uid>/, so that a restarted kubelet can adopt or clean
// up everything it started.
package podstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const stateFile = "state.json"

// Container is the runtime state of one container of a pod.
type Container struct {
	Name string `json:"name"`
	Init bool   `json:"init,omitempty"`
	// Unsupported containers cannot run in the lab and count as completed.
	Unsupported  bool      `json:"unsupported,omitempty"`
	ID           string    `json:"id,omitempty"`
	PID          int       `json:"pid,omitempty"`
	Running      bool      `json:"running,omitempty"`
	StartedAt    time.Time `json:"startedAt,omitempty"`
	FinishedAt   time.Time `json:"finishedAt,omitempty"`
	ExitCode     int       `json:"exitCode,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	RestartCount int       `json:"restartCount,omitempty"`
	// LastTerminated is the previous run, reported as lastState.
	LastTerminated *Terminated `json:"lastTerminated,omitempty"`
	// NextStart delays a restart (crash-loop back-off).
	NextStart time.Time     `json:"nextStart,omitempty"`
	Backoff   time.Duration `json:"backoff,omitempty"`
}

// Terminated describes a finished run of a container.
type Terminated struct {
	ID         string    `json:"id"`
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Exited reports whether the container ran and finished.
func (c *Container) Exited() bool { return !c.Running && !c.FinishedAt.IsZero() }

// Pod is the runtime state of one pod.
type Pod struct {
	UID         string `json:"uid"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	HostNetwork bool   `json:"hostNetwork,omitempty"`
	// SandboxID is the CNI container ID; Netns the sandbox namespace name.
	SandboxID string `json:"sandboxID,omitempty"`
	Netns     string `json:"netns,omitempty"`
	// NetworkReady is set once CNI ADD succeeded.
	NetworkReady bool     `json:"networkReady,omitempty"`
	IPs          []string `json:"ips,omitempty"`
	// CreatedPaths are mount points made on the host for this pod's
	// containers (also listed lab-wide for `antrea-lab down`).
	CreatedPaths []string `json:"createdPaths,omitempty"`
	// Finished is set once the pod reached Succeeded or Failed; its
	// network is then released and nothing runs any more.
	Finished   bool         `json:"finished,omitempty"`
	Containers []*Container `json:"containers,omitempty"`
	CreatedAt  time.Time    `json:"createdAt"`
}

// Container returns the named container's state, or nil.
func (p *Pod) Container(name string, init bool) *Container {
	for _, c := range p.Containers {
		if c.Name == name && c.Init == init {
			return c
		}
	}
	return nil
}

// Store reads and writes pod state below Dir (<kubelet dir>/pods).
type Store struct {
	Dir string
}

// PodDir is the folder of one pod: state, logs and volumes.
func (s Store) PodDir(uid string) string { return filepath.Join(s.Dir, uid) }

// Save writes the state atomically.
func (s Store) Save(p *Pod) error {
	if p.UID == "" {
		return errors.New("pod state: field uid is empty")
	}
	dir := s.PodDir(p.UID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create pod dir %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state of pod %s: %w", p.UID, err)
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("write state of pod %s: %w", p.UID, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("commit state of pod %s: %w", p.UID, err)
	}
	return nil
}

// Load reads the state of one pod.
func (s Store) Load(uid string) (*Pod, error) {
	path := filepath.Join(s.PodDir(uid), stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pod state %s: %w", path, err)
	}
	var p Pod
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("parse pod state %s: %w", path, err)
	}
	if p.UID != uid {
		return nil, fmt.Errorf("pod state %s: field uid is %q, want %q", path, p.UID, uid)
	}
	return &p, nil
}

// LoadAll reads every pod state. Folders without a readable state are
// returned by UID in broken so the caller can remove them.
func (s Store) LoadAll() (pods []*Pod, broken []string, err error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list pod states in %s: %w", s.Dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := s.Load(e.Name())
		if err != nil {
			broken = append(broken, e.Name())
			continue
		}
		pods = append(pods, p)
	}
	return pods, broken, nil
}

// Remove deletes the pod's folder.
func (s Store) Remove(uid string) error {
	if uid == "" || filepath.Base(uid) != uid {
		return fmt.Errorf("remove pod state: invalid uid %q", uid)
	}
	if err := os.RemoveAll(s.PodDir(uid)); err != nil {
		return fmt.Errorf("remove pod dir of %s: %w", uid, err)
	}
	return nil
}
