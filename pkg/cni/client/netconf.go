package client

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// DefaultTimeout bounds one call to the agent when the network config has
// no cniTimeout.
const DefaultTimeout = 5 * time.Second

// NetConf is the network config of the antrea plugin: the standard fields
// (with ipam, passed through to the agent untouched) and ours.
type NetConf struct {
	types.PluginConf
	// CNISocket is the agent's unix socket, an absolute path;
	// cniv1.DefaultSocketPath if empty.
	CNISocket string `json:"cniSocket,omitempty"`
	// CNITimeout bounds one call to the agent, connection included;
	// DefaultTimeout if zero.
	CNITimeout Duration `json:"cniTimeout,omitempty"`
}

// Duration is a time.Duration that decodes from a Go duration string
// ("5s", "1m30s") or from a JSON number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*d = Duration(v * float64(time.Second))
	case string:
		p, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", v, err)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("want a duration string such as \"5s\" or a number of seconds, got %s", b)
	}
	return nil
}

// ParseNetConf decodes and validates a network config. Its errors are CNI
// errors: code 6 for bad JSON, code 7 naming the invalid field.
func ParseNetConf(data []byte) (*NetConf, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, types.NewError(cniv1.CodeDecodingFailure, "network config is not valid JSON", err.Error())
	}
	conf := &NetConf{}
	for _, f := range []struct {
		name string
		dst  any
	}{{"cniSocket", &conf.CNISocket}, {"cniTimeout", &conf.CNITimeout}} {
		if v, ok := raw[f.name]; ok {
			if err := json.Unmarshal(v, f.dst); err != nil {
				return nil, types.NewError(cniv1.CodeInvalidNetworkConfig, "network config: invalid "+f.name, err.Error())
			}
		}
	}
	if err := json.Unmarshal(data, &conf.PluginConf); err != nil {
		return nil, types.NewError(cniv1.CodeInvalidNetworkConfig, "network config: invalid standard field", err.Error())
	}
	if conf.Name == "" {
		return nil, types.NewError(cniv1.CodeInvalidNetworkConfig, "network config: name is required", "")
	}
	if conf.CNISocket == "" {
		conf.CNISocket = cniv1.DefaultSocketPath
	}
	if !filepath.IsAbs(conf.CNISocket) {
		return nil, types.NewError(cniv1.CodeInvalidNetworkConfig,
			fmt.Sprintf("network config: cniSocket %q must be an absolute path", conf.CNISocket), "")
	}
	if conf.CNITimeout < 0 {
		return nil, types.NewError(cniv1.CodeInvalidNetworkConfig,
			fmt.Sprintf("network config: cniTimeout %s must be positive", time.Duration(conf.CNITimeout)), "")
	}
	if conf.CNITimeout == 0 {
		conf.CNITimeout = Duration(DefaultTimeout)
	}
	return conf, nil
}

// Timeout returns CNITimeout as a time.Duration.
func (c *NetConf) Timeout() time.Duration { return time.Duration(c.CNITimeout) }
