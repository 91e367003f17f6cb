package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlowExporterSettings(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    FlowExporterSettings
		wantErr string
	}{
		{"defaults", "enable: true\ncollectorAddress: 172.18.0.200:4739\n",
			FlowExporterSettings{CollectorAddress: "172.18.0.200:4739", CollectorProtocol: "tcp", PollInterval: 5 * time.Second, ActiveTimeout: time.Minute, IdleTimeout: 15 * time.Second}, ""},
		{"udp and durations", "enable: true\ncollectorAddress: collector.example:4739:udp\npollInterval: 1s\nactiveFlowExportTimeout: 10s\nidleFlowExportTimeout: 2s\n",
			FlowExporterSettings{CollectorAddress: "collector.example:4739", CollectorProtocol: "udp", PollInterval: time.Second, ActiveTimeout: 10 * time.Second, IdleTimeout: 2 * time.Second}, ""},
		{"ipv6", "enable: true\ncollectorAddress: '[fd00::1]:4739:TCP'\n",
			FlowExporterSettings{CollectorAddress: "[fd00::1]:4739", CollectorProtocol: "tcp", PollInterval: 5 * time.Second, ActiveTimeout: time.Minute, IdleTimeout: 15 * time.Second}, ""},
		{"no collector", "enable: true\n", FlowExporterSettings{}, `flowExporter.collectorAddress "": must be set when flowExporter.enable is true`},
		{"no port", "enable: true\ncollectorAddress: 172.18.0.200\n", FlowExporterSettings{}, `flowExporter.collectorAddress "172.18.0.200": want HOST:PORT`},
		{"bad protocol", "enable: true\ncollectorAddress: a:4739:sctp\n", FlowExporterSettings{}, `flowExporter.collectorAddress "a:4739:sctp"`},
		{"port out of range", "enable: true\ncollectorAddress: a:70000\n", FlowExporterSettings{}, `port "70000": must be 1 to 65535`},
		{"no host", "enable: true\ncollectorAddress: :4739\n", FlowExporterSettings{}, "no host"},
		{"bad duration", "enable: true\ncollectorAddress: a:1\npollInterval: 5\n", FlowExporterSettings{}, `flowExporter.pollInterval "5": not a duration`},
		{"poll too fast", "enable: true\ncollectorAddress: a:1\npollInterval: 100ms\n", FlowExporterSettings{}, "flowExporter.pollInterval 100ms: must be at least 1s"},
		{"active shorter than poll", "enable: true\ncollectorAddress: a:1\npollInterval: 10s\nactiveFlowExportTimeout: 5s\n", FlowExporterSettings{}, "flowExporter.activeFlowExportTimeout 5s: must not be shorter than pollInterval (10s)"},
		{"idle shorter than poll", "enable: true\ncollectorAddress: a:1\nidleFlowExportTimeout: 1s\n", FlowExporterSettings{}, "flowExporter.idleFlowExportTimeout 1s: must not be shorter than pollInterval (5s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(write(t, "nodeName: n1\nflowExporter:\n"+indent(tc.content)))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			s, err := c.FlowExporter.Settings()
			require.NoError(t, err)
			assert.Equal(t, tc.want, s)
		})
	}
}

func TestFlowExporterOffByDefault(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	c, err := Load(write(t, "nodeName: n1\n"))
	require.NoError(t, err)
	assert.False(t, c.FlowExporter.Enable)
	// A disabled exporter's keys are not checked: it is off.
	c, err = Load(write(t, "nodeName: n1\nflowExporter:\n  pollInterval: nonsense\n"))
	require.NoError(t, err)
	assert.False(t, c.FlowExporter.Enable)
	_, err = Load(write(t, "nodeName: n1\nflowExporter:\n  enabled: true\n"))
	assert.ErrorContains(t, err, `unknown field "enabled"`, "a misspelt key is an error")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}
