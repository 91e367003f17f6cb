package v1alpha1

import (
	"fmt"
	"net/netip"
	"time"
)

// Defaults and limits of a Traceflow spec. The CRD's schema enforces the
// same limits when an object is created; ValidateSpec is for the code that
// acts on one (and names the field at fault in the status).
const (
	DefaultTimeoutSeconds = 20
	MaxTimeoutSeconds     = 300
	DefaultDstPort        = 80
	// TCPFlagSYN is the default TCP flags.
	TCPFlagSYN = 0x02
)

// TimeoutDuration is the spec's timeout, or the default.
func (s *TraceflowSpec) TimeoutDuration() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeoutSeconds * time.Second
	}
	return time.Duration(s.Timeout) * time.Second
}

// ProtocolOrDefault is the packet's protocol, TCP when empty.
func (p Packet) ProtocolOrDefault() Protocol {
	if p.Protocol == "" {
		return ProtocolTCP
	}
	return p.Protocol
}

// FlagsOrDefault is the packet's TCP flags, SYN when 0.
func (p Packet) FlagsOrDefault() uint8 {
	if p.Flags == 0 {
		return TCPFlagSYN
	}
	return uint8(p.Flags)
}

// Final says whether an action ends the trace.
func (a Action) Final() bool {
	return a == ActionDelivered || a == ActionDropped || a == ActionForwardedOutOfNetwork
}

// Terminal says whether the phase is one the trace ends in.
func (p Phase) Terminal() bool { return p == PhaseSucceeded || p == PhaseFailed }

// String is the destination as antctl takes it: namespace/name of a pod,
// service namespace/name, or the IP.
func (d Destination) String() string {
	switch {
	case d.Pod != "":
		return d.Namespace + "/" + d.Pod
	case d.Service != "":
		return "service " + d.Namespace + "/" + d.Service
	}
	return d.IP
}

// ValidateSpec checks what the spec says by itself (not whether its pods
// and Services exist) and names the first field at fault.
func ValidateSpec(s *TraceflowSpec) error {
	switch {
	case s.Source.Namespace == "":
		return fmt.Errorf("source.namespace: required")
	case s.Source.Pod == "":
		return fmt.Errorf("source.pod: required")
	}
	d := s.Destination
	set := 0
	for _, v := range []string{d.Pod, d.Service, d.IP} {
		if v != "" {
			set++
		}
	}
	switch {
	case set != 1:
		return fmt.Errorf("destination: exactly one of pod, service and ip is required, got %d", set)
	case d.IP != "":
		a, err := netip.ParseAddr(d.IP)
		if err != nil || !a.Is4() {
			return fmt.Errorf("destination.ip %q: not an IPv4 address", d.IP)
		}
		if d.Namespace != "" {
			return fmt.Errorf("destination.namespace: only with pod or service, not with ip")
		}
	case d.Namespace == "":
		return fmt.Errorf("destination.namespace: required with pod or service")
	}
	switch s.Packet.ProtocolOrDefault() {
	case ProtocolTCP, ProtocolUDP:
	case ProtocolICMP:
		if s.Packet.SrcPort != 0 || s.Packet.DstPort != 0 {
			return fmt.Errorf("packet.srcPort, packet.dstPort: ICMP has no ports")
		}
		if d.Service != "" {
			return fmt.Errorf("packet.protocol ICMP: a Service balances TCP, UDP and SCTP ports only")
		}
	default:
		return fmt.Errorf("packet.protocol %q: must be TCP, UDP or ICMP", s.Packet.Protocol)
	}
	if s.Packet.Flags != 0 && s.Packet.ProtocolOrDefault() != ProtocolTCP {
		return fmt.Errorf("packet.flags: TCP only")
	}
	for _, p := range []struct {
		field string
		v     int32
	}{{"packet.srcPort", s.Packet.SrcPort}, {"packet.dstPort", s.Packet.DstPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("%s %d: must be between 0 (default) and 65535", p.field, p.v)
		}
	}
	if s.Packet.Flags < 0 || s.Packet.Flags > 255 {
		return fmt.Errorf("packet.flags %d: must be between 0 (SYN) and 255", s.Packet.Flags)
	}
	if s.Timeout < 0 || s.Timeout > MaxTimeoutSeconds {
		return fmt.Errorf("timeout %d: must be between 0 (%d s) and %d seconds", s.Timeout, DefaultTimeoutSeconds, MaxTimeoutSeconds)
	}
	return nil
}
