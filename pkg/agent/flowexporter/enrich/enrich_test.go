package enrich

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func indexer(t *testing.T, objs ...any) cache.Indexer {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		require.NoError(t, idx.Add(o))
	}
	return idx
}

func node(name, ip, cidr string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

func conn(proto uint8, src string, sport uint16, dst string, dport uint16, replySrc string, replySport uint16, label uint64) *connection.Conn {
	return &connection.Conn{Zone: 65520,
		Orig:     connection.Tuple{Proto: proto, Src: addr(src), SrcPort: sport, Dst: addr(dst), DstPort: dport},
		Reply:    connection.Tuple{Proto: proto, Src: addr(replySrc), SrcPort: replySport, Dst: addr(src), DstPort: sport},
		LabelLow: label}
}

func testEnricher(t *testing.T) *Enricher {
	nodes := corelisters.NewNodeLister(indexer(t, node("node-1", "172.18.0.11", "10.10.0.0/24"), node("node-2", "172.18.0.12", "10.10.1.0/24")))
	nodeName := "node-2"
	slices := discoverylisters.NewEndpointSliceLister(indexer(t, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-abc"},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.10.1.2"}, NodeName: &nodeName, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web2"}},
			{Addresses: []string{"172.18.0.2"}}, // no pod behind it
		},
	}))
	services := corelisters.NewServiceLister(indexer(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		}},
	}))
	rules := map[uint32]networkpolicy.Rule{
		7: {PolicyUID: "uid-egress", PolicyNamespace: "shop", PolicyName: "client-out", Direction: controlplane.DirectionOut, Index: 0},
		9: {PolicyUID: "uid-ingress", PolicyNamespace: "shop", PolicyName: "web-in", Direction: controlplane.DirectionIn, Index: 1},
	}
	e := New(Sources{
		NodeName: "node-1",
		LocalPods: func() []LocalPod {
			return []LocalPod{{Namespace: "shop", Name: "client", IP: addr("10.10.0.3")}, {Namespace: "shop", Name: "web1", IP: addr("10.10.0.2")}}
		},
		Nodes:          nodes,
		Services:       services,
		EndpointSlices: slices,
		GroupMembers: func() []controlplane.GroupMember {
			return []controlplane.GroupMember{{Pod: controlplane.PodReference{Namespace: "shop", Name: "db"}, Node: "node-2", IPs: []string{"10.10.1.5"}}}
		},
		Rule:       func(id uint32) (networkpolicy.Rule, bool) { r, ok := rules[id]; return r, ok },
		NodePortIP: addr("169.254.169.110"),
	})
	e.Refresh()
	return e
}

func TestEnrich(t *testing.T) {
	e := testEnricher(t)
	client := connection.Pod{Namespace: "shop", Name: "client"}
	tests := []struct {
		name string
		conn *connection.Conn
		want connection.Enrichment
	}{
		{"local pod to local pod, both rules recorded",
			conn(6, "10.10.0.3", 40000, "10.10.0.2", 80, "10.10.0.2", 80, 9<<32|7),
			connection.Enrichment{Source: client, SourceNode: "node-1", Destination: connection.Pod{Namespace: "shop", Name: "web1"}, DestinationNode: "node-1",
				FlowType:      connection.FlowTypeIntraNode,
				EgressPolicy:  connection.Policy{Namespace: "shop", Name: "client-out", UID: "uid-egress", Rule: "egress-0"},
				IngressPolicy: connection.Policy{Namespace: "shop", Name: "web-in", UID: "uid-ingress", Rule: "ingress-1"}}},
		{"through a ClusterIP to an endpoint on another node",
			conn(6, "10.10.0.3", 40001, "10.96.0.10", 80, "10.10.1.2", 80, 0),
			connection.Enrichment{Source: client, SourceNode: "node-1", Destination: connection.Pod{Namespace: "shop", Name: "web2"}, DestinationNode: "node-2",
				Service: connection.Service{PortName: "shop/web:http", IP: addr("10.96.0.10"), Port: 80}, FlowType: connection.FlowTypeInterNode}},
		{"a remote pod known from a policy group; an unknown rule id",
			conn(17, "10.10.0.3", 40002, "10.10.1.5", 5432, "10.10.1.5", 5432, 42),
			connection.Enrichment{Source: client, SourceNode: "node-1", Destination: connection.Pod{Namespace: "shop", Name: "db"}, DestinationNode: "node-2",
				FlowType: connection.FlowTypeInterNode}},
		{"a remote pod nobody names: its node only",
			conn(6, "10.10.1.77", 40003, "10.10.0.2", 80, "10.10.0.2", 80, 0),
			connection.Enrichment{SourceNode: "node-2", Destination: connection.Pod{Namespace: "shop", Name: "web1"}, DestinationNode: "node-1", FlowType: connection.FlowTypeInterNode}},
		{"the node itself (its gateway) to a pod",
			conn(6, "10.10.0.1", 40004, "10.10.0.2", 80, "10.10.0.2", 80, 0),
			connection.Enrichment{SourceNode: "node-1", Destination: connection.Pod{Namespace: "shop", Name: "web1"}, DestinationNode: "node-1", FlowType: connection.FlowTypeFromExternal}},
		{"a pod to outside the cluster",
			conn(6, "10.10.0.3", 40005, "172.18.0.200", 8080, "172.18.0.200", 8080, 0),
			connection.Enrichment{Source: client, SourceNode: "node-1", FlowType: connection.FlowTypeToExternal}},
		{"a node port, from outside",
			conn(6, "172.18.0.200", 40006, "169.254.169.110", 30080, "10.10.0.2", 80, 0),
			connection.Enrichment{Destination: connection.Pod{Namespace: "shop", Name: "web1"}, DestinationNode: "node-1",
				Service: connection.Service{PortName: "shop/web:http", IP: addr("10.96.0.10"), Port: 30080}, FlowType: connection.FlowTypeFromExternal}},
		{"a Service's UDP port, endpoint outside the pod network",
			conn(17, "10.10.0.3", 40007, "10.96.0.10", 53, "172.18.0.2", 53, 0),
			connection.Enrichment{Source: client, SourceNode: "node-1",
				Service: connection.Service{PortName: "shop/web:dns", IP: addr("10.96.0.10"), Port: 53}, FlowType: connection.FlowTypeToExternal}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, e.Enrich(tc.conn))
		})
	}
}

func TestEnrichWithoutSources(t *testing.T) {
	e := New(Sources{NodeName: "node-1"})
	e.Refresh()
	got := e.Enrich(conn(6, "10.10.0.3", 1, "10.96.0.10", 80, "10.10.1.2", 80, 7))
	assert.Equal(t, connection.Enrichment{}, got, "nothing known, nothing invented")
}

func TestRefreshForgetsWhatIsGone(t *testing.T) {
	pods := []LocalPod{{Namespace: "shop", Name: "client", IP: addr("10.10.0.3")}}
	e := New(Sources{NodeName: "node-1", LocalPods: func() []LocalPod { return pods }})
	e.Refresh()
	c := conn(6, "10.10.0.3", 1, "10.10.0.2", 80, "10.10.0.2", 80, 0)
	assert.Equal(t, "client", e.Enrich(c).Source.Name)
	pods = nil
	e.Refresh()
	assert.Empty(t, e.Enrich(c).Source.Name)
}
