package unixctl

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve answers one request per connection with answer(method).
func serve(t *testing.T, socket string, answer func(request) string) {
	t.Helper()
	lis, err := net.Listen("unix", socket)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			var req request
			if json.NewDecoder(conn).Decode(&req) == nil {
				_, _ = conn.Write([]byte(answer(req)))
			}
			_ = conn.Close()
		}
	}()
}

func TestCall(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "ovs-vswitchd.ctl")
	serve(t, socket, func(r request) string {
		switch r.Method {
		case "revalidator/purge":
			return `{"id":0,"result":"","error":null}`
		case "echo":
			b, _ := json.Marshal(r.Params)
			return `{"id":0,"result":` + string(mustQuote(string(b))) + `,"error":null}`
		default:
			return `{"id":0,"result":null,"error":"\"` + r.Method + `\" is not a valid command"}`
		}
	})
	tests := []struct {
		name    string
		method  string
		params  []string
		want    string
		wantErr string
	}{
		{"no output", "revalidator/purge", nil, "", ""},
		{"params travel", "echo", []string{"a", "b"}, `["a","b"]`, ""},
		{"daemon error", "nope", nil, "", `unixctl nope: "nope" is not a valid command`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Call(context.Background(), socket, tc.method, tc.params...)
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := Call(context.Background(), filepath.Join(t.TempDir(), "missing.ctl"), "x")
	assert.ErrorContains(t, err, "unixctl x")
}

func mustQuote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func TestVswitchdSocket(t *testing.T) {
	dir := t.TempDir()
	_, err := VswitchdSocket(dir)
	assert.ErrorContains(t, err, "no ovs-vswitchd control socket")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte("4242\n"), 0o644))
	got, err := VswitchdSocket(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "ovs-vswitchd.4242.ctl"), got)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "ovs-vswitchd.ctl"), nil, 0o644))
	got, err = VswitchdSocket(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "ovs-vswitchd.ctl"), got)
}
