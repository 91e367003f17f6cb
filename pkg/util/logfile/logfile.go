// Package logfile makes klog write to a size-rotated file as well as to
// standard error: the container log stays as it was, and the file (on a
// hostPath) survives restarts of the container, so that a support bundle
// has the log of an agent that crashed before the current one started.
package logfile

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"gopkg.in/natefinch/lumberjack.v2"
	"k8s.io/klog/v2"
)

// Options of the log file.
type Options struct {
	// Path of the log file; empty logs to standard error only.
	Path string
	// MaxSizeMB is the size at which the file is rotated.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept beside it.
	MaxBackups int
}

// AddFlags adds --log-file, --log-file-max-size and --log-file-max-num.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Path, "log-file", "", "also log to this file, rotated by size (empty: standard error only)")
	fs.IntVar(&o.MaxSizeMB, "log-file-max-size", 100, "size in MB at which --log-file is rotated")
	fs.IntVar(&o.MaxBackups, "log-file-max-num", 4, "rotated log files kept beside --log-file")
}

// Validate names the flag with a bad value.
func (o Options) Validate() error {
	switch {
	case o.Path != "" && !filepath.IsAbs(o.Path):
		return fmt.Errorf("--log-file %q: must be an absolute path", o.Path)
	case o.MaxSizeMB < 1:
		return fmt.Errorf("--log-file-max-size %d: must be at least 1", o.MaxSizeMB)
	case o.MaxBackups < 0:
		return fmt.Errorf("--log-file-max-num %d: must not be negative", o.MaxBackups)
	}
	return nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// Setup sends klog's output to the file as well as to standard error;
// klogFlags is the flag set klog.InitFlags registered its flags on. It
// does nothing without a path. Close the result when the program ends.
func Setup(klogFlags *flag.FlagSet, o Options) (io.Closer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Path == "" {
		return nopCloser{}, nil
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	file := &lumberjack.Logger{Filename: o.Path, MaxSize: o.MaxSizeMB, MaxBackups: o.MaxBackups}
	// Every line once in the file (one_output: not once per severity at
	// or below its own) and once on standard error.
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "true", "one_output": "true"} {
		if err := klogFlags.Set(name, value); err != nil {
			return nil, fmt.Errorf("klog flag %s: %w", name, err)
		}
	}
	klog.SetOutput(file)
	return file, nil
}
