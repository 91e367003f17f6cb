package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
	"github.com/ovs-cni/antrea/pkg/cni/client"
)

func TestParseNetConf(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantSocket  string
		wantTimeout time.Duration
		wantIPAM    string
		wantCode    uint
		wantMsg     string
	}{
		{"defaults", `{"cniVersion":"1.0.0","name":"n"}`, cniv1.DefaultSocketPath, client.DefaultTimeout, "", 0, ""},
		{"all fields", `{"cniVersion":"1.0.0","name":"n","cniSocket":"/run/a.sock","cniTimeout":"250ms","ipam":{"type":"host-local"}}`,
			"/run/a.sock", 250 * time.Millisecond, "host-local", 0, ""},
		{"timeout in seconds", `{"name":"n","cniTimeout":2.5}`, cniv1.DefaultSocketPath, 2500 * time.Millisecond, "", 0, ""},
		{"bad JSON", `{"name":`, "", 0, "", cniv1.CodeDecodingFailure, "network config is not valid JSON"},
		{"no name", `{"cniVersion":"1.0.0"}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "network config: name is required"},
		{"bad timeout string", `{"name":"n","cniTimeout":"5 parsecs"}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "network config: invalid cniTimeout"},
		{"bad timeout type", `{"name":"n","cniTimeout":true}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "network config: invalid cniTimeout"},
		{"negative timeout", `{"name":"n","cniTimeout":"-1s"}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "cniTimeout -1s must be positive"},
		{"bad socket type", `{"name":"n","cniSocket":7}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "network config: invalid cniSocket"},
		{"relative socket", `{"name":"n","cniSocket":"cni.sock"}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "must be an absolute path"},
		{"bad standard field", `{"name":"n","ipam":"host-local"}`, "", 0, "", cniv1.CodeInvalidNetworkConfig, "network config: invalid standard field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := client.ParseNetConf([]byte(tt.in))
			if tt.wantCode != 0 {
				var cniErr *types.Error
				require.True(t, errors.As(err, &cniErr), "error %v", err)
				assert.Equal(t, tt.wantCode, cniErr.Code)
				assert.Contains(t, cniErr.Msg, tt.wantMsg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSocket, conf.CNISocket)
			assert.Equal(t, tt.wantTimeout, conf.Timeout())
			assert.Equal(t, tt.wantIPAM, conf.IPAM.Type)
		})
	}
}
