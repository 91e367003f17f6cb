package hostpaths

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordAndRemove(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "created-paths")
	a := filepath.Join(dir, "a")
	ab := filepath.Join(a, "b")
	full := filepath.Join(dir, "full")
	emptyFile := filepath.Join(dir, "empty.conf")
	require.NoError(t, os.MkdirAll(ab, 0o755))
	require.NoError(t, os.MkdirAll(full, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(emptyFile, nil, 0o644))

	require.NoError(t, Record(list, []string{a, ab}))
	require.NoError(t, Record(list, []string{ab, full, emptyFile})) // duplicates are fine
	require.NoError(t, Record(list, nil))

	require.NoError(t, RemoveRecorded(list))
	assert.NoDirExists(t, a, "empty folders go, deepest first")
	assert.NoFileExists(t, emptyFile)
	assert.DirExists(t, full, "a folder with content stays")
	assert.NoFileExists(t, list)
	require.NoError(t, RemoveRecorded(list), "no list is not an error")
}
