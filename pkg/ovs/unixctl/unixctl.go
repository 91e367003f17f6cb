// Package unixctl calls commands of an OVS daemon over its control socket
// (what ovs-appctl does): one JSON-RPC request per connection.
package unixctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// VswitchdSocket finds ovs-vswitchd's control socket in runDir: the
// fixed name ovs-vswitchd.ctl (a --unixctl path, as the lab uses), else
// ovs-vswitchd.<pid>.ctl with the pid of ovs-vswitchd.pid (the default).
func VswitchdSocket(runDir string) (string, error) {
	fixed := filepath.Join(runDir, "ovs-vswitchd.ctl")
	if _, err := os.Stat(fixed); err == nil {
		return fixed, nil
	}
	data, err := os.ReadFile(filepath.Join(runDir, "ovs-vswitchd.pid"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no ovs-vswitchd control socket in %s (neither ovs-vswitchd.ctl nor ovs-vswitchd.pid)", runDir)
		}
		return "", fmt.Errorf("read ovs-vswitchd pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return "", fmt.Errorf("ovs-vswitchd.pid in %s: %w", runDir, err)
	}
	return filepath.Join(runDir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid)), nil
}

type request struct {
	Method string   `json:"method"`
	Params []string `json:"params"`
	ID     int      `json:"id"`
}

type response struct {
	Result *string         `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     int             `json:"id"`
}

// Call runs method with params on the daemon listening on socket and
// returns its output.
func Call(ctx context.Context, socket, method string, params ...string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("unixctl %s: %w", method, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	if params == nil {
		params = []string{}
	}
	if err := json.NewEncoder(conn).Encode(request{Method: method, Params: params, ID: 0}); err != nil {
		return "", fmt.Errorf("unixctl %s: send: %w", method, err)
	}
	var resp response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return "", fmt.Errorf("unixctl %s: read: %w", method, err)
	}
	if len(resp.Error) > 0 && string(resp.Error) != "null" {
		var msg string
		if json.Unmarshal(resp.Error, &msg) != nil {
			msg = string(resp.Error)
		}
		return "", fmt.Errorf("unixctl %s: %s", method, strings.TrimSpace(msg))
	}
	if resp.Result == nil {
		return "", nil
	}
	return *resp.Result, nil
}
