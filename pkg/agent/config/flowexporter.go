package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// FlowExporterConfig is the flowExporter section: connection records of
// the node's pods, exported over IPFIX. Durations are Go duration strings.
type FlowExporterConfig struct {
	// Enable the exporter; default false.
	Enable bool `json:"enable"`
	// CollectorAddress is HOST:PORT[:PROTO], PROTO tcp (the default) or
	// udp; HOST a name or an address ([...] for IPv6).
	CollectorAddress string `json:"collectorAddress"`
	// PollInterval is how often conntrack is read.
	PollInterval string `json:"pollInterval"`
	// ActiveFlowExportTimeout: a connection with traffic is exported at
	// least this often.
	ActiveFlowExportTimeout string `json:"activeFlowExportTimeout"`
	// IdleFlowExportTimeout: a connection without new packets for this
	// long is exported once, then not again until it has traffic.
	IdleFlowExportTimeout string `json:"idleFlowExportTimeout"`
}

// Flow exporter defaults.
const (
	DefaultPollInterval            = 5 * time.Second
	DefaultActiveFlowExportTimeout = 60 * time.Second
	DefaultIdleFlowExportTimeout   = 15 * time.Second
)

// FlowExporterSettings is a valid FlowExporterConfig, parsed.
type FlowExporterSettings struct {
	// CollectorAddress is HOST:PORT, CollectorProtocol "tcp" or "udp".
	CollectorAddress  string
	CollectorProtocol string
	PollInterval      time.Duration
	ActiveTimeout     time.Duration
	IdleTimeout       time.Duration
}

// Settings parses the section; the error names the bad key.
func (c FlowExporterConfig) Settings() (FlowExporterSettings, error) {
	s := FlowExporterSettings{PollInterval: DefaultPollInterval, ActiveTimeout: DefaultActiveFlowExportTimeout, IdleTimeout: DefaultIdleFlowExportTimeout}
	var err error
	if s.CollectorAddress, s.CollectorProtocol, err = parseCollectorAddress(c.CollectorAddress); err != nil {
		return s, fmt.Errorf("flowExporter.collectorAddress %q: %w", c.CollectorAddress, err)
	}
	for _, d := range []struct {
		key   string
		value string
		into  *time.Duration
	}{
		{"pollInterval", c.PollInterval, &s.PollInterval},
		{"activeFlowExportTimeout", c.ActiveFlowExportTimeout, &s.ActiveTimeout},
		{"idleFlowExportTimeout", c.IdleFlowExportTimeout, &s.IdleTimeout},
	} {
		if d.value == "" {
			continue
		}
		v, err := time.ParseDuration(d.value)
		if err != nil {
			return s, fmt.Errorf("flowExporter.%s %q: not a duration (e.g. 5s, 1m)", d.key, d.value)
		}
		*d.into = v
	}
	switch {
	case s.PollInterval < time.Second:
		return s, fmt.Errorf("flowExporter.pollInterval %s: must be at least 1s", s.PollInterval)
	case s.ActiveTimeout < s.PollInterval:
		return s, fmt.Errorf("flowExporter.activeFlowExportTimeout %s: must not be shorter than pollInterval (%s)", s.ActiveTimeout, s.PollInterval)
	case s.IdleTimeout < s.PollInterval:
		return s, fmt.Errorf("flowExporter.idleFlowExportTimeout %s: must not be shorter than pollInterval (%s)", s.IdleTimeout, s.PollInterval)
	}
	return s, nil
}

// parseCollectorAddress splits HOST:PORT[:PROTO].
func parseCollectorAddress(a string) (addr, proto string, err error) {
	if a == "" {
		return "", "", fmt.Errorf("must be set when flowExporter.enable is true (HOST:PORT[:tcp|udp])")
	}
	proto = "tcp"
	if i := strings.LastIndex(a, ":"); i >= 0 {
		switch p := strings.ToLower(a[i+1:]); p {
		case "tcp", "udp":
			proto, a = p, a[:i]
		}
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", "", fmt.Errorf("want HOST:PORT[:tcp|udp]: %w", err)
	}
	if host == "" {
		return "", "", fmt.Errorf("want HOST:PORT[:tcp|udp]: no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port %q: must be 1 to 65535", port)
	}
	return net.JoinHostPort(host, port), proto, nil
}
