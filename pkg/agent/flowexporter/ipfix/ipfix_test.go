package ipfix

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/go-ipfix/pkg/collector"
	"github.com/vmware/go-ipfix/pkg/entities"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

func testRecord() connection.Record {
	a := netip.MustParseAddr
	return connection.Record{
		Conn: connection.Conn{Zone: 65520,
			Orig:         connection.Tuple{Proto: 6, Src: a("10.10.0.3"), SrcPort: 40000, Dst: a("10.96.0.10"), DstPort: 80},
			Reply:        connection.Tuple{Proto: 6, Src: a("10.10.1.2"), SrcPort: 8080, Dst: a("10.10.0.3"), DstPort: 40000},
			OrigCounters: connection.Counters{Packets: 10, Bytes: 1000}, ReplyCounters: connection.Counters{Packets: 8, Bytes: 9000},
			HasCounters: true, TCPState: "ESTABLISHED"},
		Enrichment: connection.Enrichment{
			Source: connection.Pod{Namespace: "shop", Name: "client"}, SourceNode: "node-1",
			Destination: connection.Pod{Namespace: "shop", Name: "web2"}, DestinationNode: "node-2",
			Service:       connection.Service{PortName: "shop/web:http", IP: a("10.96.0.10"), Port: 80},
			IngressPolicy: connection.Policy{Namespace: "shop", Name: "web-in", UID: "uid-1", Rule: "ingress-0"},
			FlowType:      connection.FlowTypeInterNode,
		},
		Start:      time.Unix(1700000000, 0),
		End:        time.Unix(1700000060, 0),
		OrigDelta:  connection.Counters{Packets: 4, Bytes: 400},
		ReplyDelta: connection.Counters{Packets: 3, Bytes: 3000},
		EndReason:  connection.EndActiveTimeout,
	}
}

// startCollector runs go-ipfix's collecting process on a free local port
// and stops it (draining what it still has) at the end of the test.
func startCollector(t *testing.T, proto string) *collector.CollectingProcess {
	t.Helper()
	cp, err := collector.InitCollectingProcess(collector.CollectorInput{Address: "127.0.0.1:0", Protocol: proto, MaxBufferSize: 65535})
	require.NoError(t, err)
	go cp.Start()
	require.Eventually(t, func() bool { return cp.GetAddress() != nil && cp.GetAddress().String() != "" }, 5*time.Second, 10*time.Millisecond)
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-cp.GetMsgChan():
				case <-done:
					return
				}
			}
		}()
		cp.Stop()
		close(done)
	})
	return cp
}

func valueOfElement(e entities.InfoElementWithValue) any {
	switch e.GetInfoElement().DataType {
	case entities.String:
		return e.GetStringValue()
	case entities.Ipv4Address:
		return e.GetIPAddressValue().String()
	case entities.Unsigned8:
		return uint64(e.GetUnsigned8Value())
	case entities.Unsigned16:
		return uint64(e.GetUnsigned16Value())
	case entities.Unsigned32:
		return uint64(e.GetUnsigned32Value())
	case entities.DateTimeSeconds:
		return uint64(e.GetUnsigned32Value())
	case entities.Unsigned64:
		return e.GetUnsigned64Value()
	}
	return nil
}

// TestExportToACollector sends records to go-ipfix's collecting process
// over TCP and UDP and reads every element back.
func TestExportToACollector(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			cp := startCollector(t, proto)

			e, err := New(Config{Address: cp.GetAddress().String(), Protocol: proto, NodeName: "node-1"})
			require.NoError(t, err)
			defer e.Close()
			rec := testRecord()
			other := testRecord()
			other.Conn.Orig.SrcPort, other.EndReason = 40001, connection.EndOfFlow
			other.Enrichment = connection.Enrichment{}
			require.NoError(t, e.Export(context.Background(), []connection.Record{rec, other}))

			var got []map[string]any
			timeout := time.After(5 * time.Second)
			for len(got) < 2 {
				select {
				case msg := <-cp.GetMsgChan():
					assert.Equal(t, ObservationDomainID("node-1"), msg.GetObsDomainID())
					if msg.GetSet().GetSetType() != entities.Data {
						continue
					}
					for _, r := range msg.GetSet().GetRecords() {
						m := map[string]any{}
						for _, el := range r.GetOrderedElementList() {
							m[el.GetName()] = valueOfElement(el)
						}
						got = append(got, m)
					}
				case <-timeout:
					t.Fatalf("the collector got %d records", len(got))
				}
			}
			assert.Equal(t, map[string]any{
				"flowStartSeconds": uint64(1700000000), "flowEndSeconds": uint64(1700000060), "flowEndReason": uint64(2),
				"sourceIPv4Address": "10.10.0.3", "destinationIPv4Address": "10.10.1.2",
				"sourceTransportPort": uint64(40000), "destinationTransportPort": uint64(8080), "protocolIdentifier": uint64(6),
				"packetTotalCount": uint64(10), "octetTotalCount": uint64(1000), "packetDeltaCount": uint64(4), "octetDeltaCount": uint64(400),
				"reversePacketTotalCount": uint64(8), "reverseOctetTotalCount": uint64(9000), "reversePacketDeltaCount": uint64(3), "reverseOctetDeltaCount": uint64(3000),
				"sourcePodNamespace": "shop", "sourcePodName": "client", "sourceNodeName": "node-1",
				"destinationPodNamespace": "shop", "destinationPodName": "web2", "destinationNodeName": "node-2",
				"destinationClusterIPv4": "10.96.0.10", "destinationServicePort": uint64(80), "destinationServicePortName": "shop/web:http",
				"ingressNetworkPolicyNamespace": "shop", "ingressNetworkPolicyName": "web-in", "ingressNetworkPolicyUID": "uid-1",
				"ingressNetworkPolicyRuleName": "ingress-0", "ingressNetworkPolicyRuleAction": uint64(1),
				"egressNetworkPolicyNamespace": "", "egressNetworkPolicyName": "", "egressNetworkPolicyUID": "",
				"egressNetworkPolicyRuleName": "", "egressNetworkPolicyRuleAction": uint64(0),
				"tcpState": "ESTABLISHED", "flowType": uint64(2),
			}, got[0])
			assert.Equal(t, uint64(3), got[1]["flowEndReason"])
			assert.Equal(t, "0.0.0.0", got[1]["destinationClusterIPv4"], "no Service")
			assert.Equal(t, "", got[1]["sourcePodName"])
		})
	}
}

func TestExportReconnectsAfterAFailure(t *testing.T) {
	e, err := New(Config{Address: "127.0.0.1:1", Protocol: "tcp", NodeName: "node-1"})
	require.NoError(t, err)
	err = e.Export(context.Background(), []connection.Record{testRecord()})
	assert.ErrorContains(t, err, "connect to the IPFIX collector 127.0.0.1:1/tcp")

	cp := startCollector(t, "tcp")
	e.cfg.Address = cp.GetAddress().String()
	require.NoError(t, e.Export(context.Background(), []connection.Record{testRecord()}), "the next export connects")
	defer e.Close()
	for {
		select {
		case msg := <-cp.GetMsgChan():
			if msg.GetSet().GetSetType() == entities.Data {
				assert.Equal(t, 1, len(msg.GetSet().GetRecords()))
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no data record reached the collector")
		}
	}
}

func TestEveryElementIsInTheRegistry(t *testing.T) {
	e, err := New(Config{})
	require.NoError(t, err)
	require.Len(t, e.ies, len(Elements))
	for i, ie := range e.ies {
		assert.Equal(t, Elements[i].Name, ie.Name)
		_, err := valueOf(ie, Elements[i].value(&connection.Record{}))
		assert.NoError(t, err, "%s: the value of an empty record has the element's type", ie.Name)
	}
}
