package openflow

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMatchFieldString(t *testing.T) {
	mac, _ := net.ParseMAC("0a:00:00:00:00:1f")
	label := make([]byte, 16)
	label[0] = 0x80
	tests := []struct {
		name string
		m    MatchField
		want string
	}{
		{"eth type", MatchEthType(EthTypeIPv4), "dl_type=0x800"},
		{"ip /32", MatchIPSrc(netip.MustParsePrefix("10.10.0.5/32")), "nw_src=10.10.0.5"},
		{"ip prefix", MatchIPDst(netip.MustParsePrefix("10.20.0.0/16")), "nw_dst=10.20.0.0/16"},
		{"ip prefix /0", MatchIPDst(netip.MustParsePrefix("0.0.0.0/0")), "nw_dst=0.0.0.0/0"},
		{"ip non-contiguous mask", MatchField{Field: FieldIPSrc, Value: []byte{10, 0, 0, 1}, Mask: []byte{255, 0, 255, 0}}, "nw_src=10.0.0.1/255.0.255.0"},
		{"arp tpa", MatchARPTpa(netip.MustParseAddr("10.10.0.1")), "arp_tpa=10.10.0.1"},
		{"mac", MatchEthDst(mac), "dl_dst=0a:00:00:00:00:1f"},
		{"port decimal", MatchL4Dst(ProtoTCP, 8080, 0xffff), "tcp_dst=8080"},
		{"port masked", MatchL4Dst(ProtoTCP, 8064, 0xfff0), "tcp_dst=8064/65520"},
		{"proto", MatchIPProto(ProtoSCTP), "nw_proto=132"},
		{"ct_state", MatchCTState(CTEst|CTTrk, CTNew|CTEst|CTTrk), "ct_state=-new+est+trk"},
		{"register hex", MatchField{Field: Reg(1), Value: []byte{0, 0, 0, 0x1f}}, "reg1=0x1f"},
		{"register zero", MatchField{Field: Reg(0), Value: []byte{0, 0, 0, 0}, Mask: []byte{0, 0, 0, 1}}, "reg0=0x0/0x1"},
		{"conj_id", MatchConjID(7), "conj_id=0x7"},
		{"ct_label low bits", MatchCTLabelBits(32, 32, 7), "ct_label=0x700000000/0xffffffff00000000"},
		{"ct_label high bit", MatchField{Field: FieldCTLabel, Value: label, Mask: label}, "ct_label=0x80000000000000000000000000000000/0x80000000000000000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.m.String())
		})
	}
}

func TestFlowKeyOrdersFields(t *testing.T) {
	f := Flow{Table: 90, Priority: 100, Match: []MatchField{MatchIPSrc(netip.MustParsePrefix("10.0.0.1/32")), MatchEthType(EthTypeIPv4), MatchField{Field: Reg(1), Value: []byte{0, 0, 0, 3}}}}
	assert.Equal(t, "table=90,priority=100,reg1=0x3,dl_type=0x800,nw_src=10.0.0.1", f.Key())
	assert.Equal(t, f.Key(), string(f.AppendKey([]byte{})))
}

func BenchmarkFlowKey(b *testing.B) {
	f := Flow{Table: 90, Priority: 100, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPSrc(netip.MustParsePrefix("10.20.30.40/32"))}}
	b.ReportAllocs()
	for range b.N {
		_ = f.Key()
	}
}
