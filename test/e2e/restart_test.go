package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// restartKubelet stops a node's kubelet by its pid record, runs during(),
// and starts it again with the same command line.
func restartKubelet(t *testing.T, l *Lab, node string, during func()) {
	restartProcess(t, l, node+"-kubelet", during)
}

// restartProcess stops a lab process by its pid record, runs during(), and
// starts it again with the same command line.
func restartProcess(t *testing.T, l *Lab, name string, during func()) {
	t.Helper()
	rec, err := findLabProcess(l, name)
	require.NoError(t, err)
	require.True(t, rec.Alive())
	require.NoError(t, rec.Stop(5*time.Second))
	if during != nil {
		during()
	}
	// The record's args already include "ip netns exec <node netns>".
	_, err = proc.Start(l.Layout.PIDDir(), proc.Spec{
		Name:    rec.Name,
		Args:    rec.Args,
		LogFile: filepath.Join(l.Layout.LogDir(), rec.Name+".log"),
	})
	require.NoError(t, err)
}
