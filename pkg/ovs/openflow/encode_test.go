package openflow

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// h decodes hex written with spaces and "|" between fields for
// readability.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

// The expected bytes below are laid out from the OpenFlow 1.5.1 spec
// (ofp_action_*, ofp_instruction_*, ofp_match/OXM) and OVS's
// nicira-ext.h (nx_action_*), one struct field per group.
func TestAppendAction(t *testing.T) {
	tbl := uint8(22)
	tests := []struct {
		name   string
		action Action
		want   string
	}{
		{"output", Output{Port: 5}, "0000 0010 | 00000005 | 0000 | 000000000000"},
		{"output controller no buffer", Output{Port: PortController}, "0000 0010 | fffffffd | ffff | 000000000000"},
		{"output in_port", Output{Port: PortInPort}, "0000 0010 | fffffff8 | 0000 | 000000000000"},
		// nx_action_output_reg: ofs_nbits = 0<<6 | 15, src = NXM_NX_REG1.
		{"output reg", OutputReg{Reg: 1, Start: 0, End: 15}, "ffff 0018 00002320 000f | 000f | 00010204 | 0000 | 000000000000"},
		// nx_action_resubmit: in_port OFPP_IN_PORT (0xfff8), table.
		{"resubmit", Resubmit{Table: 50}, "ffff 0010 00002320 000e | fff8 | 32 | 000000"},
		// set_field with OXM eth_src (class 0x8000, field 4, len 6).
		{"set_field eth_src", SetField{Field: FieldEthSrc, Value: mac("aa:bb:cc:dd:ee:ff")}, "0019 0010 | 80000806 aabbccddeeff | 0000"},
		{"set_field tun_dst", SetField{Field: FieldTunDst, Value: ip4("192.168.0.9")}, "0019 0010 | 00014004 c0a80009 | 00000000"},
		// LoadReg: masked set_field (hasmask bit, length doubled).
		{"load reg bits", LoadReg{Field: Reg(4), Start: 16, End: 31, Value: 0x1f90}, "0019 0010 | 00010908 1f900000 ffff0000"},
		{"load whole reg", LoadReg{Field: Reg(3), Start: 0, End: 31, Value: 7}, "0019 0010 | 00010604 00000007 | 00000000"},
		{"load ct_mark", LoadReg{Field: FieldCTMark, Start: 0, End: 7, Value: 1}, "0019 0010 | 0001d708 00000001 000000ff"},
		{"load arp_op", LoadReg{Field: FieldARPOp, Start: 0, End: 15, Value: 2}, "0019 0010 | 80002a02 0002 | 0000 0000 0000"},
		// ofp_action_copy_field: n_bits, src_offset, dst_offset, pad, src, dst, pad.
		{"move eth", Move{Src: FieldEthSrc, Dst: FieldEthDst, NBits: 48}, "001c 0018 | 0030 | 0000 | 0000 | 0000 | 00000406 | 00000206 | 00000000"},
		{"move reg to tun_id", Move{Src: Reg(2), Dst: FieldTunID, NBits: 32}, "001c 0018 | 0020 | 0000 | 0000 | 0000 | 00010404 | 00012008 | 00000000"},
		{"dec_ttl", DecTTL{}, "0018 0008 00000000"},
		// nx_action_conjunction: clause is 0-based on the wire.
		{"conjunction", Conjunction{ID: 7, Clause: 1, NClauses: 2}, "ffff 0010 00002320 0022 | 00 | 02 | 00000007"},
		{"conjunction last clause", Conjunction{ID: 0x10203, Clause: 3, NClauses: 3}, "ffff 0010 00002320 0022 | 02 | 03 | 00010203"},
		{"group", Group{ID: 9}, "0016 0008 00000009"},
		// nx_action_conntrack: flags, zone_src, zone, recirc_table, pad, alg.
		{"ct recirc", CT{Zone: 65520, Table: &tbl}, "ffff 0018 00002320 0023 | 0000 | 00000000 | fff0 | 16 | 000000 | 0000"},
		{"ct commit exec", CT{Commit: true, Zone: 1, Exec: []Action{LoadReg{Field: FieldCTMark, Start: 0, End: 7, Value: 1}}},
			"ffff 0028 00002320 0023 | 0001 | 00000000 | 0001 | ff | 000000 | 0000 |" +
				"0019 0010 0001d708 00000001 000000ff"},
		// copy_field of reg5 (nxm1 5) into ct_label (nxm1 108, 16 bytes) bits 32..63.
		{"ct commit exec move", CT{Commit: true, Zone: 1, Exec: []Action{Move{Src: Reg(5), Dst: FieldCTLabel, DstOfs: 32, NBits: 32}}},
			"ffff 0030 00002320 0023 | 0001 | 00000000 | 0001 | ff | 000000 | 0000 |" +
				"001c 0018 | 0020 | 0000 | 0020 | 0000 | 00010a04 | 0001d810 | 00000000"},
		// nx_action_nat: pad, flags, range_present, ranges, padding to 8.
		{"ct nat", CT{Zone: 1, Table: &tbl, NAT: &NAT{}},
			"ffff 0028 00002320 0023 | 0000 | 00000000 | 0001 | 16 | 000000 | 0000 |" +
				"ffff 0010 00002320 0024 | 0000 | 0000 | 0000"},
		{"ct snat range", CT{Commit: true, NAT: &NAT{SNAT: true, IPMin: ip4("10.0.0.1"), IPMax: ip4("10.0.0.2"), PortMin: 1000, PortMax: 2000}},
			"ffff 0038 00002320 0023 | 0001 | 00000000 | 0000 | ff | 000000 | 0000 |" +
				"ffff 0020 00002320 0024 | 0000 | 0001 | 0033 | 0a000001 | 0a000002 | 03e8 | 07d0 | 00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendAction(nil, tt.action)
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(h(tt.want)), hex.EncodeToString(got))
			assert.Zero(t, len(got)%8, "actions are multiples of 8 bytes")
		})
	}
}

func TestAppendActionErrors(t *testing.T) {
	tests := []struct {
		name   string
		action Action
	}{
		{"reg out of range", OutputReg{Reg: 16, Start: 0, End: 15}},
		{"bit range beyond field", OutputReg{Reg: 1, Start: 16, End: 32}},
		{"value too wide", LoadReg{Field: Reg(0), Start: 0, End: 3, Value: 0x10}},
		{"unknown field", SetField{Field: "nonsense", Value: []byte{1}}},
		{"wrong width", SetField{Field: FieldEthSrc, Value: []byte{1, 2}}},
		{"move too wide", Move{Src: Reg(0), Dst: Reg(1), NBits: 33}},
		{"clause zero", Conjunction{ID: 1, Clause: 0, NClauses: 2}},
		{"clause beyond n", Conjunction{ID: 1, Clause: 3, NClauses: 2}},
		{"exec output", CT{Commit: true, Exec: []Action{Output{Port: 1}}}},
		{"exec load of a register", CT{Commit: true, Exec: []Action{LoadReg{Field: Reg(1), Start: 0, End: 7, Value: 1}}}},
		{"exec move into a register", CT{Commit: true, Exec: []Action{Move{Src: FieldCTMark, Dst: Reg(1), NBits: 32}}}},
		{"nat ipv6", CT{NAT: &NAT{DNAT: true, IPMin: make([]byte, 16)}}},
		{"goto inside", GotoTable{Table: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := appendAction(nil, tt.action)
			assert.Error(t, err)
		})
	}
}

func TestAppendMatch(t *testing.T) {
	tests := []struct {
		name  string
		match []MatchField
		want  string
	}{
		{"empty", nil, "0001 0004 00000000"},
		{"in_port", []MatchField{MatchInPort(3)}, "0001 000c | 80000004 00000003 | 00000000"},
		{"ip prefix", []MatchField{MatchEthType(EthTypeIPv4), MatchIPSrc(netip.MustParsePrefix("10.1.2.3/16"))},
			"0001 0016 | 80000a02 0800 | 80001708 0a010000 ffff0000 | 0000"},
		{"ct_state", []MatchField{MatchCTState(CTTrk|CTNew, CTEst)}, "0001 0010 | 0001d308 00000021 00000023"},
		{"reg masked, value cleared outside mask", []MatchField{{Field: Reg(0), Value: be(0x10001, 4), Mask: be(0x10000, 4)}},
			"0001 0010 | 00010108 00010000 00010000"},
		{"conj_id tun_id", []MatchField{MatchConjID(7), {Field: FieldTunID, Value: be(0x64, 8)}},
			"0001 0018 | 00014a04 00000007 | 80004c08 0000000000000064"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendMatch(nil, tt.match)
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(h(tt.want)), hex.EncodeToString(got))
		})
	}
	_, err := appendMatch(nil, []MatchField{MatchInPort(1), MatchInPort(2)})
	assert.ErrorContains(t, err, "twice")
}

func TestDecodeMatchRoundTrip(t *testing.T) {
	flows, _, _ := pipelineFlows()
	for _, f := range flows {
		enc, err := appendMatch(nil, f.Match)
		require.NoError(t, err)
		dec, n, err := decodeMatch(enc)
		require.NoError(t, err)
		assert.Equal(t, len(enc), n)
		g := Flow{Table: f.Table, Priority: f.Priority, Match: dec}
		assert.Equal(t, f.Key(), g.Key())
	}
}

func TestDecodeMatchOVSForms(t *testing.T) {
	// xreg0 (class 0x8001) carrying reg0=0x4/0xffff, reg1 unmatched;
	// xreg1 exact: reg2=1, reg3=2; NXM_OF_IN_PORT (16 bits).
	b := h("0001 002a | 80010110 0000000400000000 0000ffff00000000 | 80010208 0000000100000002 | 00000002 0005 | 000000000000")
	got, n, err := decodeMatch(b)
	require.NoError(t, err)
	assert.Equal(t, len(b), n)
	assert.Equal(t, []MatchField{
		{Field: Reg(0), Value: be(4, 4), Mask: be(0xffff, 4)},
		{Field: Reg(2), Value: be(1, 4)},
		{Field: Reg(3), Value: be(2, 4)},
		MatchInPort(5),
	}, got)
}

func TestFlowMods(t *testing.T) {
	f := Flow{Table: 3, Priority: 0x100, Cookie: 0x1122, IdleTimeout: 5, HardTimeout: 6,
		Match: []MatchField{MatchInPort(1)}, Actions: []Action{Output{Port: 2}, GotoTable{Table: 9}}}
	header := func(length string, xid string) string { return "06 0e " + length + " " + xid }
	add, err := appendAddFlow(nil, 0x42, &f)
	require.NoError(t, err)
	want := header("0060", "00000042") +
		"0000000000001122 | 0000000000000000 | 03 | 00 | 0005 | 0006 | 0100 | ffffffff | ffffffff | ffffffff | 0000 | 0000 |" +
		"0001 000c 80000004 00000001 00000000 |" +
		"0004 0018 00000000 | 0000 0010 00000002 0000 000000000000 |" +
		"0001 0008 09 000000"
	assert.Equal(t, hex.EncodeToString(h(want)), hex.EncodeToString(add))

	mod, err := appendModifyFlow(nil, 0x42, &f)
	require.NoError(t, err)
	assert.Equal(t, byte(flowModifyStrict), mod[headerLen+17])

	del, err := appendDeleteFlow(nil, 0x43, &f)
	require.NoError(t, err)
	want = header("0040", "00000043") +
		"0000000000000000 | 0000000000000000 | 03 | 04 | 0000 | 0000 | 0100 | ffffffff | ffffffff | ffffffff | 0000 | 0000 |" +
		"0001 000c 80000004 00000001 00000000"
	assert.Equal(t, hex.EncodeToString(h(want)), hex.EncodeToString(del))

	byCookie, err := appendDeleteByCookie(nil, 0x44, 0x1000, 0xf000)
	require.NoError(t, err)
	want = header("0038", "00000044") +
		"0000000000001000 | 000000000000f000 | ff | 03 | 0000 | 0000 | 0000 | ffffffff | ffffffff | ffffffff | 0000 | 0000 |" +
		"0001 0004 00000000"
	assert.Equal(t, hex.EncodeToString(h(want)), hex.EncodeToString(byCookie))

	drop, err := appendAddFlow(nil, 1, &Flow{Table: 1})
	require.NoError(t, err)
	assert.Len(t, drop, 56, "a drop flow has no instructions")

	_, err = appendAddFlow(nil, 1, &Flow{Actions: []Action{GotoTable{Table: 2}, Output{Port: 1}}})
	assert.ErrorContains(t, err, "goto_table must be the last")
}

func TestBundleMessages(t *testing.T) {
	assert.Equal(t, h("06 21 0010 00000007 | 00000003 | 0004 | 0003"), bundleControlMsg(7, 3, bundleCommit))
	inner := simpleMsg(typeBarrierReq, 9, nil)
	got, err := appendBundleAdd(nil, 9, 3, inner)
	require.NoError(t, err)
	assert.Equal(t, h("06 22 0018 00000009 | 00000003 | 0000 | 0003 | 06 14 0008 00000009"), got)
	assert.Equal(t, uint16(bundleCommit+1), bundleControlType(h("06 21 0010 00000007 00000003 0005 0003")))
}

func TestGroupMods(t *testing.T) {
	g := GroupEntry{ID: 5, Type: GroupSelect, Buckets: []Bucket{{Weight: 100, Actions: []Action{Output{Port: 2}}}}}
	mods, err := encodeGroupMods(&g)
	require.NoError(t, err)
	require.Len(t, mods, 1)
	msg, err := appendGroupMod(nil, 1, mods[0])
	require.NoError(t, err)
	// ofp_group_mod (1.5): command, type, pad, group_id, bucket_array_len,
	// pad, command_bucket_id; ofp_bucket: len, action_array_len,
	// bucket_id, actions, weight property.
	want := "06 0f 0038 00000001 | 8000 | 01 | 00 | 00000005 | 0020 | 0000 | ffffffff |" +
		"0020 | 0010 | 00000000 | 0000 0010 00000002 0000 000000000000 | 0000 0008 0064 0000"
	assert.Equal(t, hex.EncodeToString(h(want)), hex.EncodeToString(msg))

	msg, err = appendGroupMod(nil, 2, encodeGroupDelete(5))
	require.NoError(t, err)
	assert.Equal(t, h("06 0f 0018 00000002 | 0002 | 00 | 00 | 00000005 | 0000 | 0000 | ffffffff"), msg)

	all := GroupEntry{ID: 6, Type: GroupAll, Buckets: []Bucket{{Actions: []Action{Output{Port: 1}}}}}
	mods, err = encodeGroupMods(&all)
	require.NoError(t, err)
	assert.Len(t, mods[0], 16+8+16, "no weight property in an all group")

	big := GroupEntry{ID: 7, Type: GroupSelect}
	for i := 0; i < 5000; i++ {
		big.Buckets = append(big.Buckets, Bucket{Weight: 1, Actions: []Action{LoadReg{Field: Reg(3), Start: 0, End: 31, Value: uint64(i)}, Resubmit{Table: 4}}})
	}
	mods, err = encodeGroupMods(&big)
	require.NoError(t, err)
	require.Greater(t, len(mods), 1)
	total := 0
	for i, m := range mods {
		assert.LessOrEqual(t, headerLen+len(m), maxInnerLen)
		cmd, bucket := uint16(m[0])<<8|uint16(m[1]), uint32(m[12])<<24|uint32(m[13])<<16|uint32(m[14])<<8|uint32(m[15])
		if i == 0 {
			assert.Equal(t, groupCmdAddOrMod, cmd)
			assert.Equal(t, bucketAll, bucket)
		} else {
			assert.Equal(t, groupCmdInsertBucket, cmd)
			assert.Equal(t, bucketLast, bucket)
		}
		total += (len(m) - 16) / 48
	}
	assert.Equal(t, 5000, total)
	assert.Equal(t, "group_id=5,type=select,bucket=weight:100,actions=output:2", g.String())
}

func TestParseError(t *testing.T) {
	// BAD_MATCH/BAD_PREREQ for a BUNDLE_ADD wrapping a FLOW_MOD.
	msg := h("06 01 0024 0000000c | 0004 | 0009 | 06 22 0058 0000000c 00000003 0000 0003 06 0e 0048 0000000c")
	e := parseError(msg)
	assert.Equal(t, "BAD_MATCH/BAD_PREREQ", e.Name())
	assert.Equal(t, uint32(12), e.FailedXID)
	assert.Equal(t, typeFlowMod, e.FailedType)
	assert.Equal(t, "openflow error BAD_MATCH/BAD_PREREQ (type 4, code 9) for FLOW_MOD xid 12", e.Error())

	e = parseError(h("06 01 0018 00000005 | ffff | 0102 | 00002320 | 06 0e 0008 00000005"))
	assert.Equal(t, uint32(0x2320), e.Experimenter)
	assert.Equal(t, "EXPERIMENTER(0x2320)/258", e.Name())
	assert.Equal(t, "BUNDLE_FAILED/MSG_FAILED", (&Error{Type: 17, Code: 13}).Name())
}

func TestHello(t *testing.T) {
	assert.Equal(t, h("06 00 0010 00000001 | 0001 0008 00000040"), helloMsg(1))
	tests := []struct {
		name string
		msg  string
		want bool
	}{
		{"bitmap with 1.5", "06 00 0010 00000001 0001 0008 00000052", true},
		{"bitmap without 1.5", "06 00 0010 00000001 0001 0008 00000012", false},
		{"no bitmap, 1.5", "06 00 0008 00000001", true},
		{"no bitmap, 1.3", "04 00 0008 00000001", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, helloSupports(h(tt.msg)))
		})
	}
}

func TestDecodeFlowDescs(t *testing.T) {
	// One ofp_flow_desc: length, pad, table, pad, priority, idle, hard,
	// flags, importance, cookie, match (in_port=1), ofp_stats (duration
	// 2.5 s, packets 3, bytes 180), instructions (goto_table 9).
	desc := "0058 0000 | 05 00 | 0064 | 000a | 0000 | 0000 | 0000 | 0000000000000abc |" +
		"0001 000c 80000004 00000001 00000000 |" +
		"0000 0028 | 80020008 00000002 1dcd6500 | 80020808 0000000000000003 | 80020a08 00000000000000b4 |" +
		"0001 0008 09 000000"
	msg := h("06 13 0068 00000001 | 0001 | 0000 | 00000000 |" + desc)
	got, err := decodeFlowDescs(msg)
	require.NoError(t, err)
	require.Len(t, got, 1)
	fs := got[0]
	assert.Equal(t, "table=5,priority=100,in_port=1", fs.Key())
	assert.Equal(t, uint64(0xabc), fs.Cookie)
	assert.Equal(t, uint16(10), fs.IdleTimeout)
	assert.Equal(t, uint64(3), fs.PacketCount)
	assert.Equal(t, uint64(180), fs.ByteCount)
	assert.Equal(t, 2500*time.Millisecond, fs.Duration)
	assert.Equal(t, h("0001 0008 09 000000"), fs.Instructions)
	assert.False(t, multipartHasMore(msg))

	_, err = decodeFlowDescs(msg[:40])
	assert.Error(t, err)
}

func TestFlowStatsRequest(t *testing.T) {
	want := "06 12 0038 00000004 | 0001 | 0000 | 00000000 | 05 000000 | ffffffff | ffffffff | 00000000 |" +
		"0000000000000000 | 0000000000000000 | 0001 0004 00000000"
	assert.Equal(t, hex.EncodeToString(h(want)), hex.EncodeToString(flowStatsRequest(4, 5, 0, 0)))
	byCookie := "06 12 0038 00000004 | 0001 | 0000 | 00000000 | 05 000000 | ffffffff | ffffffff | 00000000 |" +
		"0000000100000000 | 000000ff00000000 | 0001 0004 00000000"
	assert.Equal(t, hex.EncodeToString(h(byCookie)), hex.EncodeToString(flowStatsRequest(4, 5, 1<<32, 0xff<<32)))
}
