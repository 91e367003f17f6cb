package podstate

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSaveLoadRemove(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	p := &Pod{UID: "u1", Namespace: "ns", Name: "p", SandboxID: "abc", Netns: "lab-pod-u1", IPs: []string{"10.10.1.2"},
		Containers: []*Container{{Name: "c", PID: 42, Running: true, RestartCount: 2, StartedAt: time.Unix(100, 0).UTC()}}}
	require.NoError(t, s.Save(p))
	got, err := s.Load("u1")
	require.NoError(t, err)
	assert.Equal(t, p, got)

	require.NoError(t, os.MkdirAll(filepath.Join(s.Dir, "broken"), 0o755))
	pods, broken, err := s.LoadAll()
	require.NoError(t, err)
	assert.Len(t, pods, 1)
	assert.Equal(t, []string{"broken"}, broken)

	require.NoError(t, s.Remove("u1"))
	_, err = s.Load("u1")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestBadInput(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	require.ErrorContains(t, s.Save(&Pod{}), "field uid is empty")
	require.ErrorContains(t, s.Remove("../x"), "invalid uid")
	require.NoError(t, os.MkdirAll(s.PodDir("u2"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.PodDir("u2"), stateFile), []byte(`{"uid":"other"}`), 0o644))
	_, err := s.Load("u2")
	require.ErrorContains(t, err, `field uid is "other"`)
}

func TestExited(t *testing.T) {
	c := &Container{}
	assert.False(t, c.Exited())
	c.FinishedAt = time.Now()
	assert.True(t, c.Exited())
}
