package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/ovs-cni/antrea/pkg/agent/policysync"
)

// Client reads the API of the agent whose socket it is given.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the agent API at the unix socket path.
func NewClient(socket string) *Client {
	return &Client{socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// NetworkPolicies returns what the agent last realized.
func (c *Client) NetworkPolicies(ctx context.Context) (*policysync.RealizedState, error) {
	var s policysync.RealizedState
	if err := c.get(ctx, PathNetworkPolicies, &s); err != nil {
		return nil, err
	}
	return &s, nil
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
		return fmt.Errorf("agent API %s on %s: decode: %w", path, c.socket, err)
	}
	return nil
}

func (c *Client) raw(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent API %s on %s: %w", path, c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("agent API %s on %s: read: %w", path, c.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent API %s on %s: %s: %s", path, c.socket, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
