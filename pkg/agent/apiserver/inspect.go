package apiserver

import (
	"errors"
	"net/http"
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
		switch {
		case errors.Is(err, ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if flows == nil {
			flows = []Flow{}
		}
		writeJSON(w, flows)
	})
	mux.HandleFunc("GET "+PathAgentInfo, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, in.Info())
	})
}

// SplitNamespacedName parses namespace/name.
func SplitNamespacedName(s string) (string, string, bool) {
	ns, name, ok := strings.Cut(s, "/")
	return ns, name, ok && ns != "" && name != "" && !strings.Contains(name, "/")
}
