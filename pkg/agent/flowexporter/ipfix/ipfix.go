// Package ipfix sends the flow exporter's records to an IPFIX collector
// (RFC 7011) with go-ipfix: one template of standard IANA elements (with
// RFC 5103 reverse counters) and Antrea's enterprise elements (enterprise
// number 56506) for pods, nodes, the Service and the NetworkPolicy rules.
package ipfix

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"sync"
	"time"

	"github.com/vmware/go-ipfix/pkg/entities"
	ipfixexporter "github.com/vmware/go-ipfix/pkg/exporter"
	"github.com/vmware/go-ipfix/pkg/registry"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

// Enterprise numbers of the template's elements.
const (
	IANA        = registry.IANAEnterpriseID
	IANAReverse = registry.IANAReversedEnterpriseID
	Antrea      = registry.AntreaEnterpriseID
)

// Element is one information element of the template.
type Element struct {
	Name       string
	Enterprise uint32
	value      func(r *connection.Record) any
}

func ip4(a interface{ AsSlice() []byte }) net.IP { return net.IP(a.AsSlice()) }

// Elements is the template, in order. Values are uint8/16/32/64,
// string, or net.IP; a zero value is sent as zero (an empty string, the
// address 0.0.0.0) when unknown.
var Elements = []Element{
	{"flowStartSeconds", IANA, func(r *connection.Record) any { return uint32(r.Start.Unix()) }},
	{"flowEndSeconds", IANA, func(r *connection.Record) any { return uint32(r.End.Unix()) }},
	{"flowEndReason", IANA, func(r *connection.Record) any { return r.EndReason }},
	{"sourceIPv4Address", IANA, func(r *connection.Record) any { return ip4(r.Conn.Orig.Src) }},
	// The destination is the endpoint (after a Service's DNAT).
	{"destinationIPv4Address", IANA, func(r *connection.Record) any { return ip4(r.Conn.Reply.Src) }},
	{"sourceTransportPort", IANA, func(r *connection.Record) any { return r.Conn.Orig.SrcPort }},
	{"destinationTransportPort", IANA, func(r *connection.Record) any { return r.Conn.Reply.SrcPort }},
	{"protocolIdentifier", IANA, func(r *connection.Record) any { return r.Conn.Orig.Proto }},
	{"packetTotalCount", IANA, func(r *connection.Record) any { return r.Conn.OrigCounters.Packets }},
	{"octetTotalCount", IANA, func(r *connection.Record) any { return r.Conn.OrigCounters.Bytes }},
	{"packetDeltaCount", IANA, func(r *connection.Record) any { return r.OrigDelta.Packets }},
	{"octetDeltaCount", IANA, func(r *connection.Record) any { return r.OrigDelta.Bytes }},
	{"reversePacketTotalCount", IANAReverse, func(r *connection.Record) any { return r.Conn.ReplyCounters.Packets }},
	{"reverseOctetTotalCount", IANAReverse, func(r *connection.Record) any { return r.Conn.ReplyCounters.Bytes }},
	{"reversePacketDeltaCount", IANAReverse, func(r *connection.Record) any { return r.ReplyDelta.Packets }},
	{"reverseOctetDeltaCount", IANAReverse, func(r *connection.Record) any { return r.ReplyDelta.Bytes }},
	{"sourcePodNamespace", Antrea, func(r *connection.Record) any { return r.Source.Namespace }},
	{"sourcePodName", Antrea, func(r *connection.Record) any { return r.Source.Name }},
	{"sourceNodeName", Antrea, func(r *connection.Record) any { return r.SourceNode }},
	{"destinationPodNamespace", Antrea, func(r *connection.Record) any { return r.Destination.Namespace }},
	{"destinationPodName", Antrea, func(r *connection.Record) any { return r.Destination.Name }},
	{"destinationNodeName", Antrea, func(r *connection.Record) any { return r.DestinationNode }},
	{"destinationClusterIPv4", Antrea, func(r *connection.Record) any {
		if r.Service.IP.Is4() {
			return ip4(r.Service.IP)
		}
		return net.IPv4zero.To4()
	}},
	{"destinationServicePort", Antrea, func(r *connection.Record) any { return r.Service.Port }},
	{"destinationServicePortName", Antrea, func(r *connection.Record) any { return r.Service.PortName }},
	{"ingressNetworkPolicyNamespace", Antrea, func(r *connection.Record) any { return r.IngressPolicy.Namespace }},
	{"ingressNetworkPolicyName", Antrea, func(r *connection.Record) any { return r.IngressPolicy.Name }},
	{"ingressNetworkPolicyUID", Antrea, func(r *connection.Record) any { return r.IngressPolicy.UID }},
	{"ingressNetworkPolicyRuleName", Antrea, func(r *connection.Record) any { return r.IngressPolicy.Rule }},
	{"ingressNetworkPolicyRuleAction", Antrea, func(r *connection.Record) any { return ruleAction(r.IngressPolicy) }},
	{"egressNetworkPolicyNamespace", Antrea, func(r *connection.Record) any { return r.EgressPolicy.Namespace }},
	{"egressNetworkPolicyName", Antrea, func(r *connection.Record) any { return r.EgressPolicy.Name }},
	{"egressNetworkPolicyUID", Antrea, func(r *connection.Record) any { return r.EgressPolicy.UID }},
	{"egressNetworkPolicyRuleName", Antrea, func(r *connection.Record) any { return r.EgressPolicy.Rule }},
	{"egressNetworkPolicyRuleAction", Antrea, func(r *connection.Record) any { return ruleAction(r.EgressPolicy) }},
	{"tcpState", Antrea, func(r *connection.Record) any { return r.Conn.TCPState }},
	{"flowType", Antrea, func(r *connection.Record) any { return r.FlowType }},
}

// ruleAction is Allow for a connection a rule allowed, none otherwise
// (only allowed connections are committed).
func ruleAction(p connection.Policy) uint8 {
	if p.Name == "" {
		return registry.NetworkPolicyRuleActionNoAction
	}
	return registry.NetworkPolicyRuleActionAllow
}

// Config says where to send records.
type Config struct {
	// Address is HOST:PORT, Protocol "tcp" or "udp".
	Address  string
	Protocol string
	// NodeName sets the observation domain id (a hash of it).
	NodeName string
	// PathMTU bounds UDP messages (default 1500).
	PathMTU int
	// TemplateRefresh is how often the template is sent again over UDP
	// (default 10 minutes).
	TemplateRefresh time.Duration
}

// Exporter is a flowexporter.Sink over go-ipfix. It connects at the first
// Export and again after a failed one.
type Exporter struct {
	cfg        Config
	ies        []*entities.InfoElement
	ep         *ipfixexporter.ExportingProcess
	templateID uint16
	buf        bytes.Buffer
}

var loadRegistry sync.Once

// New resolves the template's elements in go-ipfix's registry.
func New(cfg Config) (*Exporter, error) {
	loadRegistry.Do(registry.LoadRegistry)
	if cfg.PathMTU == 0 {
		cfg.PathMTU = 1500
	}
	if cfg.TemplateRefresh == 0 {
		cfg.TemplateRefresh = 10 * time.Minute
	}
	e := &Exporter{cfg: cfg}
	for _, el := range Elements {
		ie, err := registry.GetInfoElement(el.Name, el.Enterprise)
		if err != nil {
			return nil, fmt.Errorf("ipfix template: %w", err)
		}
		e.ies = append(e.ies, ie)
	}
	return e, nil
}

// ObservationDomainID is the id the node's records carry.
func ObservationDomainID(node string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(node))
	return h.Sum32()
}

func (e *Exporter) connect() error {
	ep, err := ipfixexporter.InitExportingProcess(ipfixexporter.ExporterInput{
		CollectorAddress:    e.cfg.Address,
		CollectorProtocol:   e.cfg.Protocol,
		ObservationDomainID: ObservationDomainID(e.cfg.NodeName),
		TempRefTimeout:      uint32(e.cfg.TemplateRefresh / time.Second),
		PathMTU:             e.cfg.PathMTU,
	})
	if err != nil {
		return fmt.Errorf("connect to the IPFIX collector %s/%s: %w", e.cfg.Address, e.cfg.Protocol, err)
	}
	id := ep.NewTemplateID()
	elements := make([]entities.InfoElementWithValue, len(e.ies))
	for i, ie := range e.ies {
		v, err := valueOf(ie, zeroOf(ie))
		if err != nil {
			ep.CloseConnToCollector()
			return err
		}
		elements[i] = v
	}
	set := entities.NewSet(false)
	if err := set.PrepareSet(entities.Template, entities.TemplateSetID); err != nil {
		ep.CloseConnToCollector()
		return err
	}
	template := entities.NewTemplateRecordFromElements(id, elements)
	if err := template.PrepareRecord(); err != nil {
		ep.CloseConnToCollector()
		return err
	}
	if err := set.AddRecordV3(template); err != nil {
		ep.CloseConnToCollector()
		return err
	}
	if _, err := ep.SendSet(set); err != nil {
		ep.CloseConnToCollector()
		return fmt.Errorf("send the IPFIX template to %s: %w", e.cfg.Address, err)
	}
	klog.InfoS("Connected to the IPFIX collector", "address", e.cfg.Address, "protocol", e.cfg.Protocol, "templateID", id)
	e.ep, e.templateID = ep, id
	return nil
}

// Export implements flowexporter.Sink.
func (e *Exporter) Export(_ context.Context, records []connection.Record) error {
	if e.ep == nil {
		if err := e.connect(); err != nil {
			return err
		}
	}
	data := make([]entities.Record, 0, len(records))
	for i := range records {
		r, err := e.dataRecord(&records[i])
		if err != nil {
			return err
		}
		data = append(data, r)
	}
	if _, _, err := e.ep.SendDataRecords(e.templateID, data, &e.buf); err != nil {
		e.Close()
		return fmt.Errorf("send records to the IPFIX collector %s: %w", e.cfg.Address, err)
	}
	return nil
}

// Close closes the connection to the collector (the next Export opens
// another).
func (e *Exporter) Close() {
	if e.ep != nil {
		e.ep.CloseConnToCollector()
		e.ep = nil
	}
}

func (e *Exporter) dataRecord(r *connection.Record) (entities.Record, error) {
	elements := make([]entities.InfoElementWithValue, len(e.ies))
	for i, ie := range e.ies {
		v, err := valueOf(ie, Elements[i].value(r))
		if err != nil {
			return nil, err
		}
		elements[i] = v
	}
	return entities.NewDataRecordFromElements(e.templateID, elements), nil
}

func zeroOf(ie *entities.InfoElement) any {
	switch ie.DataType {
	case entities.String:
		return ""
	case entities.Ipv4Address:
		return net.IPv4zero.To4()
	case entities.Unsigned8:
		return uint8(0)
	case entities.Unsigned16:
		return uint16(0)
	case entities.Unsigned32, entities.DateTimeSeconds:
		return uint32(0)
	}
	return uint64(0)
}

// valueOf wraps v in the element's value type.
func valueOf(ie *entities.InfoElement, v any) (entities.InfoElementWithValue, error) {
	switch ie.DataType {
	case entities.String:
		if s, ok := v.(string); ok {
			return entities.NewStringInfoElement(ie, s), nil
		}
	case entities.Ipv4Address:
		if a, ok := v.(net.IP); ok {
			return entities.NewIPAddressInfoElement(ie, a), nil
		}
	case entities.Unsigned8:
		if n, ok := v.(uint8); ok {
			return entities.NewUnsigned8InfoElement(ie, n), nil
		}
	case entities.Unsigned16:
		if n, ok := v.(uint16); ok {
			return entities.NewUnsigned16InfoElement(ie, n), nil
		}
	case entities.Unsigned32:
		if n, ok := v.(uint32); ok {
			return entities.NewUnsigned32InfoElement(ie, n), nil
		}
	case entities.DateTimeSeconds:
		if n, ok := v.(uint32); ok {
			return entities.NewDateTimeSecondsInfoElement(ie, n), nil
		}
	case entities.Unsigned64:
		if n, ok := v.(uint64); ok {
			return entities.NewUnsigned64InfoElement(ie, n), nil
		}
	}
	return nil, fmt.Errorf("ipfix element %s: value %T does not fit its type %d", ie.Name, v, ie.DataType)
}
