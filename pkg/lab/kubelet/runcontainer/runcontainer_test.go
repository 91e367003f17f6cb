package runcontainer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMount(t *testing.T) {
	tests := []struct {
		in      string
		want    Mount
		wantErr string
	}{
		{"/a:/b", Mount{Source: "/a", Target: "/b"}, ""},
		{"/a:/b:ro", Mount{Source: "/a", Target: "/b", ReadOnly: true}, ""},
		{"/a:/b:rw", Mount{Source: "/a", Target: "/b"}, ""},
		{"/a", Mount{}, "want SRC:DST"},
		{"/a:/b:x", Mount{}, `option "x"`},
		{"a:/b", Mount{}, "must be absolute"},
	}
	for _, tt := range tests {
		got, err := ParseMount(tt.in)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, tt.in)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
}

func TestExecNeedsCommand(t *testing.T) {
	require.ErrorContains(t, Exec(Options{}), "no command given")
}
