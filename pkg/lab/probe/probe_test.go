package probe

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, netns, proto, addr, want string
	}{
		{"no port", "x", TCP, "10.0.0.1", "want HOST:PORT"},
		{"missing netns", "antrea-lab-test-does-not-exist", TCP, "10.0.0.1:80", "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Probe(context.Background(), tc.netns, tc.proto, tc.addr, 100*time.Millisecond)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestTableWrite(t *testing.T) {
	tbl := Table{
		Endpoints: []Endpoint{{Name: "x/a"}, {Name: "x/b"}},
		Cells:     [][]bool{{true, false}, {true, true}},
	}
	var buf bytes.Buffer
	require.NoError(t, tbl.Write(&buf))
	assert.Equal(t, "-   x/a x/b\nx/a .   X\nx/b .   .\n", buf.String())
}

func TestHTTPBody(t *testing.T) {
	assert.Equal(t, "pod-a", httpBody("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\npod-a"))
	assert.Equal(t, "raw", httpBody("raw\n"))
}
