// Package conntrack reads the datapath's connections: the userspace
// datapath's through ovs-vswitchd (dpctl/dump-conntrack, with the
// counters of the learned ConnectionStats flows), the kernel's through
// netlink (with its accounting counters).
package conntrack

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

var protoNumbers = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}

// ParseDumpConntrack parses the output of ovs-appctl dpctl/dump-conntrack
// [-s] [-m]: one entry per line, as OVS's ct_dpif_format_entry prints it,
// e.g.
//
//	tcp,orig=(src=10.10.0.3,dst=10.96.83.79,sport=57416,dport=80),reply=(src=10.10.1.2,dst=10.10.0.3,sport=80,dport=57416),zone=65520,timeout=29,labels=0x700000003,protoinfo=(state=TIME_WAIT)
//
// Counters (packets=,bytes= inside orig and reply) and start= are read
// when present; the userspace datapath prints neither. Lines that are not
// entries (empty ones) are skipped; a malformed entry is an error.
func ParseDumpConntrack(text string) ([]connection.Conn, error) {
	var out []connection.Conn
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		c, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("dump-conntrack line %d %q: %w", n+1, line, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseEntry(line string) (connection.Conn, error) {
	var c connection.Conn
	protoName, rest, ok := strings.Cut(line, ",")
	if !ok {
		return c, fmt.Errorf("no fields")
	}
	proto, ok := protoNumbers[protoName]
	if !ok {
		n, err := strconv.ParseUint(protoName, 10, 8)
		if err != nil {
			return c, fmt.Errorf("protocol %q", protoName)
		}
		proto = uint8(n)
	}
	fields, err := splitFields(rest)
	if err != nil {
		return c, err
	}
	var haveOrig, haveReply bool
	for _, f := range fields {
		switch f.key {
		case "orig", "reply":
			t, counters, err := parseTuple(proto, f.value)
			if err != nil {
				return c, fmt.Errorf("%s: %w", f.key, err)
			}
			if f.key == "orig" {
				c.Orig, c.OrigCounters, haveOrig = t, counters, true
			} else {
				c.Reply, c.ReplyCounters, haveReply = t, counters, true
			}
			if counters != (connection.Counters{}) {
				c.HasCounters = true
			}
		case "zone":
			z, err := strconv.ParseUint(f.value, 10, 16)
			if err != nil {
				return c, fmt.Errorf("zone %q", f.value)
			}
			c.Zone = uint16(z)
		case "mark":
			m, err := strconv.ParseUint(f.value, 10, 32)
			if err != nil {
				return c, fmt.Errorf("mark %q", f.value)
			}
			c.Mark = uint32(m)
		case "labels":
			if c.LabelLow, c.LabelHigh, err = parseLabels(f.value); err != nil {
				return c, err
			}
		case "protoinfo":
			// The short form (without -m): state=<TCP state>.
			for _, kv := range strings.Split(f.value, ",") {
				if k, v, _ := strings.Cut(kv, "="); k == "state" {
					c.TCPState = v
				}
			}
		case "start":
			t, err := time.ParseInLocation("2006-01-02T15:04:05.000", f.value, time.Local)
			if err != nil {
				return c, fmt.Errorf("start %q", f.value)
			}
			c.Start = t
		}
	}
	if !haveOrig || !haveReply {
		return c, fmt.Errorf("no orig or reply tuple")
	}
	return c, nil
}

type field struct{ key, value string }

// splitFields splits key=value,key=(a=b,c=d),... at the top level.
func splitFields(s string) ([]field, error) {
	var out []field
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("field %q has no value", s)
		}
		var value string
		if strings.HasPrefix(rest, "(") {
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return nil, fmt.Errorf("field %s: unclosed (", key)
			}
			value, rest = rest[1:end], rest[end+1:]
		} else if i := strings.IndexByte(rest, ','); i >= 0 {
			value, rest = rest[:i], rest[i:]
		} else {
			value, rest = rest, ""
		}
		out = append(out, field{key: key, value: value})
		s = strings.TrimPrefix(rest, ",")
	}
	return out, nil
}

func parseTuple(proto uint8, s string) (connection.Tuple, connection.Counters, error) {
	t := connection.Tuple{Proto: proto}
	var c connection.Counters
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return t, c, fmt.Errorf("%q", kv)
		}
		var err error
		switch k {
		case "src":
			t.Src, err = netip.ParseAddr(v)
		case "dst":
			t.Dst, err = netip.ParseAddr(v)
		case "sport", "id":
			t.SrcPort, err = parseUint16(v)
		case "dport":
			t.DstPort, err = parseUint16(v)
		case "packets":
			c.Packets, err = strconv.ParseUint(v, 10, 64)
		case "bytes":
			c.Bytes, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return t, c, fmt.Errorf("%s %q: %w", k, v, err)
		}
	}
	if !t.Src.IsValid() || !t.Dst.IsValid() {
		return t, c, fmt.Errorf("no src or dst")
	}
	return t, c, nil
}

func parseUint16(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// parseLabels reads OVS's hex of the 128-bit label (leading zeros left
// out).
func parseLabels(s string) (lo, hi uint64, err error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || h == "" || len(h) > 32 {
		return 0, 0, fmt.Errorf("labels %q", s)
	}
	if len(h) > 16 {
		if hi, err = strconv.ParseUint(h[:len(h)-16], 16, 64); err != nil {
			return 0, 0, fmt.Errorf("labels %q", s)
		}
		h = h[len(h)-16:]
	}
	if lo, err = strconv.ParseUint(h, 16, 64); err != nil {
		return 0, 0, fmt.Errorf("labels %q", s)
	}
	return lo, hi, nil
}
