package v1alpha1

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestValidateSpec(t *testing.T) {
	valid := TraceflowSpec{Source: Source{Namespace: "ns", Pod: "a"}, Destination: Destination{Namespace: "ns", Pod: "b"}}
	for _, tc := range []struct {
		name   string
		change func(*TraceflowSpec)
		want   string
	}{
		{"pod to pod, all defaults", func(*TraceflowSpec) {}, ""},
		{"to a Service, UDP", func(s *TraceflowSpec) {
			s.Destination = Destination{Namespace: "ns", Service: "svc"}
			s.Packet = Packet{Protocol: ProtocolUDP, DstPort: 53}
		}, ""},
		{"ICMP to an IP", func(s *TraceflowSpec) {
			s.Destination = Destination{IP: "10.0.0.1"}
			s.Packet.Protocol = ProtocolICMP
		}, ""},
		{"no source pod", func(s *TraceflowSpec) { s.Source.Pod = "" }, "source.pod: required"},
		{"no source namespace", func(s *TraceflowSpec) { s.Source.Namespace = "" }, "source.namespace: required"},
		{"two destinations", func(s *TraceflowSpec) { s.Destination.IP = "10.0.0.1" }, "destination: exactly one of pod, service and ip is required, got 2"},
		{"no destination", func(s *TraceflowSpec) { s.Destination = Destination{} }, "destination: exactly one of pod, service and ip is required, got 0"},
		{"IPv6", func(s *TraceflowSpec) { s.Destination = Destination{IP: "fd00::1"} }, `destination.ip "fd00::1": not an IPv4 address`},
		{"IP with a namespace", func(s *TraceflowSpec) { s.Destination = Destination{Namespace: "ns", IP: "10.0.0.1"} },
			"destination.namespace: only with pod or service, not with ip"},
		{"pod without namespace", func(s *TraceflowSpec) { s.Destination.Namespace = "" }, "destination.namespace: required with pod or service"},
		{"SCTP", func(s *TraceflowSpec) { s.Packet.Protocol = "SCTP" }, `packet.protocol "SCTP": must be TCP, UDP or ICMP`},
		{"ICMP with a port", func(s *TraceflowSpec) { s.Packet = Packet{Protocol: ProtocolICMP, DstPort: 1} }, "packet.srcPort, packet.dstPort: ICMP has no ports"},
		{"ICMP to a Service", func(s *TraceflowSpec) {
			s.Destination = Destination{Namespace: "ns", Service: "svc"}
			s.Packet.Protocol = ProtocolICMP
		}, "packet.protocol ICMP: a Service balances TCP, UDP and SCTP ports only"},
		{"UDP flags", func(s *TraceflowSpec) { s.Packet = Packet{Protocol: ProtocolUDP, Flags: 2} }, "packet.flags: TCP only"},
		{"port out of range", func(s *TraceflowSpec) { s.Packet.SrcPort = -1 }, "packet.srcPort -1: must be between 0 (default) and 65535"},
		{"flags out of range", func(s *TraceflowSpec) { s.Packet.Flags = 256 }, "packet.flags 256: must be between 0 (SYN) and 255"},
		{"timeout too long", func(s *TraceflowSpec) { s.Timeout = 301 }, "timeout 301: must be between 0 (20 s) and 300 seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid
			tc.change(&s)
			err := ValidateSpec(&s)
			if tc.want == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s := TraceflowSpec{}
	assert.Equal(t, 20*time.Second, s.TimeoutDuration())
	s.Timeout = 5
	assert.Equal(t, 5*time.Second, s.TimeoutDuration())
	assert.Equal(t, ProtocolTCP, Packet{}.ProtocolOrDefault())
	assert.Equal(t, uint8(TCPFlagSYN), Packet{}.FlagsOrDefault())
	assert.Equal(t, uint8(0x12), Packet{Flags: 0x12}.FlagsOrDefault())
	assert.True(t, ActionDropped.Final())
	assert.False(t, ActionForwarded.Final())
	assert.True(t, PhaseFailed.Terminal())
	assert.False(t, PhaseRunning.Terminal())
	assert.Equal(t, "ns/p", Destination{Namespace: "ns", Pod: "p"}.String())
	assert.Equal(t, "service ns/s", Destination{Namespace: "ns", Service: "s"}.String())
	assert.Equal(t, "10.0.0.1", Destination{IP: "10.0.0.1"}.String())
}
