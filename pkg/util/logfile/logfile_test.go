package logfile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"no file", Options{MaxSizeMB: 100, MaxBackups: 4}, ""},
		{"file", Options{Path: "/var/log/antrea/antrea-agent.log", MaxSizeMB: 1}, ""},
		{"relative", Options{Path: "agent.log", MaxSizeMB: 1}, `--log-file "agent.log": must be an absolute path`},
		{"size", Options{MaxSizeMB: 0}, "--log-file-max-size 0: must be at least 1"},
		{"backups", Options{MaxSizeMB: 1, MaxBackups: -1}, "--log-file-max-num -1: must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.wantErr)
			}
		})
	}
}

func TestSetupWritesEveryLineOnce(t *testing.T) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	path := filepath.Join(t.TempDir(), "sub", "agent.log")
	c, err := Setup(fs, Options{Path: path, MaxSizeMB: 1, MaxBackups: 1})
	require.NoError(t, err)
	defer func() {
		klog.LogToStderr(true)
		_ = c.Close()
	}()
	klog.InfoS("An info line", "k", 1)
	klog.ErrorS(nil, "An error line")
	klog.Flush()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(data), "An info line"))
	assert.Equal(t, 1, strings.Count(string(data), "An error line"), "not once per severity")
}
