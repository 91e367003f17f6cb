// Package trace turns OVS's ofproto/trace output into steps a person can
// read: each table the packet went through by name, the category of the
// flow that matched, and the outcome (forwarded to a port, sent into the
// tunnel, dropped), across conntrack recirculations.
package trace

import (
	"regexp"
	"strconv"
	"strings"
)

// Step is one table the packet went through.
type Step struct {
	Table    uint8    `json:"table"`
	Priority int      `json:"priority,omitempty"`
	Cookie   uint64   `json:"cookie,omitempty"`
	Match    string   `json:"match"`
	NoMatch  bool     `json:"noMatch,omitempty"`
	Actions  []string `json:"actions,omitempty"`
}

// Result is a parsed trace.
type Result struct {
	Steps []Step `json:"steps"`
	// OutputPorts are the OpenFlow ports the packet left through.
	OutputPorts []int `json:"outputPorts,omitempty"`
	// TunnelDst is the remote end of the tunnel it was sent into.
	TunnelDst string `json:"tunnelDst,omitempty"`
	// DatapathActions of the last pass (after recirculations).
	DatapathActions string `json:"datapathActions"`
	// Dropped is true when the last pass drops the packet.
	Dropped bool `json:"dropped"`
}

var (
	tableLine   = regexp.MustCompile(`^\s*(\d+)\. (?:(.*?), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$`)
	noMatchLine = regexp.MustCompile(`^\s*(\d+)\. No match`)
	outputLine  = regexp.MustCompile(`-> output port is (\d+)`)
	tunDstField = regexp.MustCompile(`set_field:([0-9.]+)->tun_dst`)
)

// Parse reads the text of `ovs-appctl ofproto/trace`.
func Parse(out string) Result {
	var r Result
	var cur *Step
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			cur = nil
		case strings.HasPrefix(trimmed, "Datapath actions:"):
			r.DatapathActions = strings.TrimSpace(strings.TrimPrefix(trimmed, "Datapath actions:"))
			cur = nil
		case strings.HasPrefix(trimmed, "Flow:"), strings.HasPrefix(trimmed, "Final flow:"), strings.HasPrefix(trimmed, "Megaflow:"),
			strings.HasPrefix(trimmed, "bridge("), strings.HasPrefix(trimmed, "---"), strings.HasPrefix(trimmed, "==="),
			strings.HasPrefix(trimmed, "recirc("):
			cur = nil
		case strings.HasPrefix(trimmed, "->"):
			if m := outputLine.FindStringSubmatch(trimmed); m != nil {
				p, _ := strconv.Atoi(m[1])
				r.OutputPorts = append(r.OutputPorts, p)
			}
		default:
			if m := noMatchLine.FindStringSubmatch(line); m != nil {
				t, _ := strconv.Atoi(m[1])
				r.Steps = append(r.Steps, Step{Table: uint8(t), NoMatch: true})
				cur = &r.Steps[len(r.Steps)-1]
				continue
			}
			if m := tableLine.FindStringSubmatch(line); m != nil {
				t, _ := strconv.Atoi(m[1])
				s := Step{Table: uint8(t), Match: m[2]}
				s.Priority, _ = strconv.Atoi(m[3])
				if m[4] != "" {
					s.Cookie, _ = strconv.ParseUint(m[4], 0, 64)
				}
				r.Steps = append(r.Steps, s)
				cur = &r.Steps[len(r.Steps)-1]
				continue
			}
			if cur != nil {
				cur.Actions = append(cur.Actions, trimmed)
				if m := tunDstField.FindStringSubmatch(trimmed); m != nil {
					r.TunnelDst = m[1]
				}
			}
		}
	}
	r.Dropped = r.DatapathActions == "drop" || r.DatapathActions == ""
	return r
}

// Category of a flow from its cookie (bits 40-47, as the agent sets them).
func Category(cookie uint64) int { return int(cookie >> 40 & 0xff) }
