package agnhost

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeTCPAndUDP(t *testing.T) {
	// Port 0 picks free ports; the server reports what it bound.
	srv, err := Listen(Config{Name: "web-1", TCP: []int{}, UDP: []int{}, Host: "127.0.0.1"})
	require.NoError(t, err)
	srv.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tcpPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	udpPort := u.LocalAddr().(*net.UDPAddr).Port
	u.Close()

	srv, err = Listen(Config{Name: "web-1", TCP: []int{tcpPort}, UDP: []int{udpPort}, Host: "127.0.0.1"})
	require.NoError(t, err)
	srv.logf = t.Logf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	base := "http://" + srv.TCPAddrs()[0].String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path string
		want string
	}{
		{"/healthz", "ok"},
		{"/", "web-1"},
		{"/hostname", "web-1"},
	}
	for _, tt := range tests {
		code, body := get(tt.path)
		assert.Equal(t, 200, code, tt.path)
		assert.Equal(t, tt.want, body, tt.path)
	}
	_, body := get("/clientip")
	host, _, err := net.SplitHostPort(body)
	require.NoError(t, err, body)
	assert.Equal(t, "127.0.0.1", host)
	_, body = get("/serverip")
	assert.Equal(t, srv.TCPAddrs()[0].String(), body, "the address the client reached")

	conn, err := net.Dial("udp", srv.UDPAddrs()[0].String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 100)
	for _, tc := range []struct{ send, want string }{{"hostname", "web-1"}, {"clientip", conn.LocalAddr().String()}} {
		_, err = conn.Write([]byte(tc.send))
		require.NoError(t, err)
		n, err := conn.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, tc.want, string(buf[:n]))
	}
}

func TestListenErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no name", Config{TCP: []int{80}}, "--name is required"},
		{"bad port", Config{Name: "x", UDP: []int{70000}}, "port 70000 is out of range"},
		{"busy port", Config{Name: "x", TCP: []int{busy}, Host: "127.0.0.1"}, "bind TCP port"},
		{"bad netns", Config{Name: "x", Netns: "/nonexistent/ns"}, "open network namespace /nonexistent/ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Listen(tt.cfg)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
