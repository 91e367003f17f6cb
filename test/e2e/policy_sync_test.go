package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/lab/cluster"
)

// controllerDigest is the digest of what the controller serves for node:
// what its agent has realized once it is in sync.
func controllerDigest(ctx context.Context, l *Lab, node string) (string, error) {
	var (
		atgs     v1beta1.AppliedToGroupList
		ags      v1beta1.AddressGroupList
		policies v1beta1.NetworkPolicyList
	)
	for _, r := range []struct {
		resource string
		into     any
	}{
		{policysync.ResourceAppliedToGroups, &atgs},
		{policysync.ResourceAddressGroups, &ags},
		{policysync.ResourceNetworkPolicies, &policies},
	} {
		raw, err := l.Client.CoreV1().RESTClient().Get().
			AbsPath("/apis/controlplane.antrea.io/v1beta1/"+r.resource).
			Param("fieldSelector", "nodeName="+node).DoRaw(ctx)
		if err != nil {
			return "", fmt.Errorf("list %s for %s: %w", r.resource, node, err)
		}
		if err := json.Unmarshal(raw, r.into); err != nil {
			return "", fmt.Errorf("decode %s for %s: %w", r.resource, node, err)
		}
	}
	return policysync.DigestOfLists(&atgs, &ags, &policies), nil
}

// waitAgentsInSync waits until the agent of every node has realized
// exactly what the controller serves for that node: its flows are in
// OVS. It fails naming the nodes that lag.
func waitAgentsInSync(ctx context.Context, l *Lab, nodes []string) error {
	var lagging []string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		lagging = lagging[:0]
		for _, n := range nodes {
			want, err := controllerDigest(ctx, l, n)
			if err != nil {
				lagging = append(lagging, n+": "+err.Error())
				continue
			}
			got, err := agentapi.NewClient(cluster.AgentAPISocket(l.Layout, n)).NetworkPolicies(ctx)
			if err != nil {
				lagging = append(lagging, n+": "+err.Error())
				continue
			}
			if got.Digest != want {
				lagging = append(lagging, fmt.Sprintf("%s: realized %s (at %s), controller serves %s", n, got.Digest, got.RealizedAt.Format(time.StampMilli), want))
			}
		}
		return len(lagging) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("agents not in sync with the controller:\n%s", strings.Join(lagging, "\n"))
	}
	return nil
}
