package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Paths of the inspection API (antctl on the node).
const (
	PathPodInterfaces = "/v1/podinterfaces"
	PathOVSFlows      = "/v1/ovsflows"
	PathAgentInfo     = "/v1/agentinfo"
)

// PodInterface is one pod's port on the bridge.
type PodInterface struct {
	Namespace     string `json:"namespace"`
	Name          string `json:"name"`
	ContainerID   string `json:"containerID"`
	InterfaceName string `json:"interfaceName"`
	IP            string `json:"ip"`
	MAC           string `json:"mac"`
	OFPort        uint32 `json:"ofport"`
}

// Flow is one flow the agent installed, with what it belongs to.
type Flow struct {
	// Owner is what the flow is for: pod/<container>, node/<name>,
	// networkpolicy/rule/<policy UID>/..., proxy/<service port>, ...
	Owner     string `json:"owner"`
	Table     uint8  `json:"table"`
	TableName string `json:"tableName"`
	Priority  uint16 `json:"priority"`
	// Flow in ovs-ofctl syntax.
	Flow string `json:"flow"`
}

// FlowQuery selects flows; empty fields select everything.
type FlowQuery struct {
	// Pod is namespace/name: the pod's own flows and its isolation.
	Pod string
	// Policy is namespace/name of a NetworkPolicy: its rules' flows.
	Policy string
	// Table is a table number or name (case-insensitive).
	Table string
}

// AgentInfo summarizes the agent.
type AgentInfo struct {
	NodeName        string         `json:"nodeName"`
	Version         string         `json:"version"`
	OVSVersion      string         `json:"ovsVersion"`
	DatapathType    string         `json:"datapathType"`
	TunnelType      string         `json:"tunnelType"`
	NodeIP          string         `json:"nodeIP"`
	PodCIDR         string         `json:"podCIDR"`
	GatewayIP       string         `json:"gatewayIP"`
	StartTime       time.Time      `json:"startTime"`
	Ready           bool           `json:"ready"`
	NotReadyReason  string         `json:"notReadyReason,omitempty"`
	OVSConnected    bool           `json:"ovsConnected"`
	FlowRound       uint16         `json:"flowRound"`
	Pods            int            `json:"pods"`
	NetworkPolicies int            `json:"networkPolicies"`
	FlowsByTable    map[string]int `json:"flowsByTable"`
}

// ErrNotFound is what a source returns for a pod or policy it does not
// know: the API answers 404.
var ErrNotFound = errors.New("not found")

// Inspector gives the inspection API its data.
type Inspector interface {
	PodInterfaces() []PodInterface
	Flows(FlowQuery) ([]Flow, error)
	Info() AgentInfo
	TracePacket(context.Context, TraceQuery) (*TraceResult, error)
}

func handleInspect(mux *http.ServeMux, in Inspector) {
	mux.HandleFunc("GET "+PathPodInterfaces, func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.URL.Query().Get("namespace"), r.URL.Query().Get("name")
		out := []PodInterface{}
		for _, p := range in.PodInterfaces() {
			if (ns == "" || p.Namespace == ns) && (name == "" || p.Name == name) {
				out = append(out, p)
			}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET "+PathOVSFlows, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		flows, err := in.Flows(FlowQuery{Pod: q.Get("pod"), Policy: q.Get("policy"), Table: q.Get("table")})
		if flows == nil {
			flows = []Flow{}
		}
		writeAnswer(w, flows, err)
	})
	mux.HandleFunc("GET "+PathAgentInfo, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, in.Info())
	})
	mux.HandleFunc("GET "+PathTracePacket, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		tq := TraceQuery{Source: q.Get("source"), Destination: q.Get("destination"), Protocol: q.Get("protocol")}
		if p := q.Get("dstPort"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				http.Error(w, fmt.Sprintf("dstPort %q: %v", p, err), http.StatusBadRequest)
				return
			}
			tq.DstPort = n
		}
		res, err := in.TracePacket(r.Context(), tq)
		writeAnswer(w, res, err)
	})
}

// writeAnswer writes v, or err: 404 for what the agent does not know, 400
// for a question it cannot answer.
func writeAnswer(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		writeJSON(w, v)
	}
}

// SplitNamespacedName parses namespace/name.
func SplitNamespacedName(s string) (string, string, bool) {
	ns, name, ok := strings.Cut(s, "/")
	return ns, name, ok && ns != "" && name != "" && !strings.Contains(name, "/")
}

// PathTracePacket traces a synthesized packet through this node's bridge.
const PathTracePacket = "/v1/tracepacket"

// TraceQuery describes the packet: from a pod of this node to a pod
// (namespace/name, on any node) or an IP, over TCP, UDP or ICMP.
type TraceQuery struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Protocol    string `json:"protocol"`
	DstPort     int    `json:"dstPort"`
}

// TraceStep is one table the packet went through.
type TraceStep struct {
	Table     uint8  `json:"table"`
	TableName string `json:"tableName"`
	// Kind of the flow that matched: base, pod, node, networkpolicy,
	// service; empty when no flow matched (the table's miss).
	Kind    string   `json:"kind,omitempty"`
	Match   string   `json:"match,omitempty"`
	NoMatch bool     `json:"noMatch,omitempty"`
	Actions []string `json:"actions,omitempty"`
	// Policy is the NetworkPolicy (namespace/name and rule) the flow
	// belongs to, for the policy tables' rule flows.
	Policy string `json:"policy,omitempty"`
}

// TraceResult is the packet's path and what became of it.
type TraceResult struct {
	Packet string `json:"packet"`
	// Service is the Service (namespace/name) whose ClusterIP the packet
	// was sent to, when the destination named one.
	Service string `json:"service,omitempty"`
	// Endpoint is the endpoint (IP:port) the Service's group was taken
	// to choose; the steps after the group are those of the packet as
	// DNATed to it.
	Endpoint string      `json:"endpoint,omitempty"`
	Steps    []TraceStep `json:"steps"`
	// Outcome: delivered to a pod, sent into the tunnel, to the node, or
	// dropped in a table.
	Outcome string `json:"outcome"`
	// Decision names the NetworkPolicy that allowed or dropped it, when
	// one did.
	Decision string `json:"decision,omitempty"`
	// Raw is OVS's own ofproto/trace output.
	Raw string `json:"raw"`
}
