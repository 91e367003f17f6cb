package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ovs-cni/antrea/pkg/agent/policysync"
)

// Client reads the API of one agent: on its unix socket, or over HTTPS
// from another machine.
type Client struct {
	// base is the URL the paths are appended to; where names the agent
	// in errors (the socket, or the address).
	base  string
	where string
	http  *http.Client
}

// NewClient returns a client of the agent API at the unix socket path.
func NewClient(socket string) *Client {
	return &Client{base: "http://agent", where: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// NewRemoteClient returns a client of the agent API served at base
// (https://ADDRESS:PORT) through transport, which authenticates the
// client (see ServeSecure).
func NewRemoteClient(base string, transport http.RoundTripper) *Client {
	return &Client{base: strings.TrimSuffix(base, "/"), where: base, http: &http.Client{Transport: transport}}
}

// NetworkPolicies returns what the agent last realized.
func (c *Client) NetworkPolicies(ctx context.Context) (*policysync.RealizedState, error) {
	var s policysync.RealizedState
	if err := c.get(ctx, PathNetworkPolicies, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// PodInterfaces lists the pods' ports, of one namespace and name when
// given.
func (c *Client) PodInterfaces(ctx context.Context, namespace, name string) ([]PodInterface, error) {
	v := url.Values{}
	if namespace != "" {
		v.Set("namespace", namespace)
	}
	if name != "" {
		v.Set("name", name)
	}
	var out []PodInterface
	return out, c.get(ctx, PathPodInterfaces+query(v), &out)
}

// Flows lists the installed flows q selects.
func (c *Client) Flows(ctx context.Context, q FlowQuery) ([]Flow, error) {
	v := url.Values{}
	for k, val := range map[string]string{"pod": q.Pod, "policy": q.Policy, "table": q.Table} {
		if val != "" {
			v.Set(k, val)
		}
	}
	var out []Flow
	return out, c.get(ctx, PathOVSFlows+query(v), &out)
}

// TracePacket traces a synthesized packet through the node's bridge.
func (c *Client) TracePacket(ctx context.Context, q TraceQuery) (*TraceResult, error) {
	v := url.Values{"source": {q.Source}, "destination": {q.Destination}}
	if q.Protocol != "" {
		v.Set("protocol", q.Protocol)
	}
	if q.DstPort != 0 {
		v.Set("dstPort", strconv.Itoa(q.DstPort))
	}
	var out TraceResult
	if err := c.get(ctx, PathTracePacket+query(v), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Info returns the agent's summary.
func (c *Client) Info(ctx context.Context) (*AgentInfo, error) {
	var out AgentInfo
	if err := c.get(ctx, PathAgentInfo, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func query(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Check asks a health path (PathHealthz, PathReadyz): nil when the agent
// answers 200, else an error with its answer.
func (c *Client) Check(ctx context.Context, path string) error {
	_, err := c.raw(ctx, path)
	return err
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	body, err := c.raw(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("agent API %s on %s: decode: %w", path, c.where, err)
	}
	return nil
}

func (c *Client) raw(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.do(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("agent API %s on %s: read: %w", path, c.where, err)
	}
	return body, nil
}

// do sends a GET of path and returns the answer when it is 200 OK; the
// caller closes its body.
func (c *Client) do(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent API %s on %s: %w", path, c.where, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("agent API %s on %s: %s: %s", path, c.where, resp.Status, errorMessage(body))
	}
	return resp, nil
}

// errorMessage is the message of an error answer: the text, or the
// message of a Kubernetes Status (the HTTPS API's 401 and 403).
func errorMessage(body []byte) string {
	var status struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &status) == nil && status.Kind == "Status" && status.Message != "" {
		return status.Message
	}
	return strings.TrimSpace(string(body))
}
