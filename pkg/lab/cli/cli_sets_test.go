package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSets(t *testing.T) {
	s, err := parseSets([]string{"agent.defaultMTU=1400", "agent.antreaProxy={enable: false}", "controller.kubeAPIServerOverride=null", "agent.tunnelType=geneve"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"defaultMTU": float64(1400), "antreaProxy": map[string]any{"enable": false}, "tunnelType": "geneve"}, s.Agent)
	assert.Equal(t, map[string]any{"kubeAPIServerOverride": nil}, s.Controller)

	for in, want := range map[string]string{
		"defaultMTU=1":   "want agent.KEY=VALUE",
		"agent.mtu":      "want agent.KEY=VALUE",
		"agent.=1":       "want agent.KEY=VALUE",
		"proxy.enable=1": `"proxy" is not agent or controller`,
		"agent.x=[":      "value",
	} {
		_, err := parseSets([]string{in})
		assert.ErrorContains(t, err, want, in)
	}
}
