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

func TestMountPoints(t *testing.T) {
	info := `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
22 27 0:21 / /proc rw,relatime - proc proc rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
43 42 0:4 net:[4026532] /run/netns/a rw shared:1 - nsfs nsfs rw
44 27 0:5 / /mnt/with\040space rw - tmpfs tmpfs rw
`
	assert.Equal(t, []string{"/", "/proc", "/run/netns", "/run/netns/a", "/mnt/with space"}, MountPoints(info))
	assert.True(t, under("/run/netns/a", []string{"/run/netns"}))
	assert.True(t, under("/run/netns", []string{"/run/netns"}))
	assert.False(t, under("/run/netnsx", []string{"/run/netns"}))
}
