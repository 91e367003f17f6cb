package proc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartRecordStop(t *testing.T) {
	dir := t.TempDir()
	rec, err := Start(dir, Spec{Name: "sleeper", Args: []string{"sleep", "30"}, LogFile: filepath.Join(dir, "sleeper.log")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = Kill(rec.PID, 0) })
	assert.True(t, rec.Alive())

	recs, err := Load(dir)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, rec, recs[0])

	require.NoError(t, recs[0].Stop(2*time.Second))
	assert.False(t, rec.Alive())
	// Stopping again is fine.
	require.NoError(t, recs[0].Stop(time.Second))
}

func TestReusedPIDIsNotAlive(t *testing.T) {
	rec := Record{Name: "self", PID: os.Getpid(), StartTime: 1}
	assert.False(t, rec.Alive(), "a different start time means a different process")
}

func TestStartRejectsEmptySpec(t *testing.T) {
	_, err := Start(t.TempDir(), Spec{Name: "x"})
	assert.ErrorContains(t, err, "name and args are required")
}

func TestLoadRejectsCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644))
	_, err := Load(dir)
	assert.ErrorContains(t, err, "bad.json")
}
