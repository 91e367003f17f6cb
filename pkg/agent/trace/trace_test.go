package trace

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A trace of OVS 3.1 through the pipeline with a conntrack recirculation,
// to a pod of the same node, dropped by the destination's isolation.
const dropped = `Flow: tcp,in_port=3,vlan_tci=0x0000,dl_src=aa:61:32:87:a5:65,dl_dst=0e:00:0a:0a:00:01,nw_src=10.10.0.2,nw_dst=10.10.0.3,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=40000,tp_dst=80,tcp_flags=syn

bridge("br-int")
----------------
 0. in_port=3, priority 190, cookie 0x1020000000000
    load:0x2->NXM_NX_REG0[0..15]
    resubmit(,10)
10. ip,in_port=3,dl_src=aa:61:32:87:a5:65,nw_src=10.10.0.2, priority 200, cookie 0x1020000000000
    resubmit(,29)
29. priority 0, cookie 0x1010000000000
    resubmit(,30)
30. ip, priority 200, cookie 0x1010000000000
    ct(table=31,zone=65520,nat)
    nat
     -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table 31.
     -> Sets the packet to an untracked state, and clears all the conntrack fields.

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=3,dl_src=aa:61:32:87:a5:65,nw_src=10.10.0.2,nw_frag=no
Datapath actions: ct(zone=65520,nat),recirc(0x1)

===============================================================================
recirc(0x1) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
===============================================================================

Flow: recirc_id=0x1,ct_state=new|trk,ct_zone=65520,eth,tcp,in_port=3,nw_src=10.10.0.2,nw_dst=10.10.0.3,tp_dst=80

bridge("br-int")
----------------
    thaw
        Resuming from table 31
31. priority 0, cookie 0x1010000000000
    resubmit(,40)
90. No match.
    drop
100. ip,reg1=0x4, priority 100, cookie 0x1040000000000
    drop

Final flow: unchanged
Megaflow: recirc_id=0x1,ct_state=+new-est+trk,eth,tcp,in_port=3,nw_frag=no
Datapath actions: drop
`

func TestParseDropped(t *testing.T) {
	r := Parse(dropped)
	var tables []uint8
	for _, s := range r.Steps {
		tables = append(tables, s.Table)
	}
	assert.Equal(t, []uint8{0, 10, 29, 30, 31, 90, 100}, tables)
	assert.True(t, r.Dropped)
	assert.Equal(t, "drop", r.DatapathActions)
	last := r.Steps[len(r.Steps)-1]
	assert.Equal(t, "ip,reg1=0x4", last.Match)
	assert.Equal(t, 100, last.Priority)
	assert.Equal(t, 4, Category(last.Cookie), "a NetworkPolicy flow")
	assert.Equal(t, []string{"drop"}, last.Actions)
	assert.True(t, r.Steps[5].NoMatch)
	require.Len(t, r.Steps[0].Actions, 2)
	assert.Equal(t, "resubmit(,10)", r.Steps[0].Actions[1])
	assert.Empty(t, r.OutputPorts)
}

func TestParseForwarded(t *testing.T) {
	out := ` 70. ip,dl_dst=0e:00:0a:0a:00:01,nw_dst=10.10.1.0/24, priority 200, cookie 0x1030000000000
    set_field:172.18.0.12->tun_dst
    resubmit(,80)
110. ip,reg0=0x10000/0x10000, priority 200, cookie 0x1010000000000
    output:NXM_NX_REG1[]
     -> output port is 1

Final flow: unchanged
Datapath actions: set(tunnel(tun_id=0x0,dst=172.18.0.12,ttl=64,tp_dst=4789,flags(df|key))),2
`
	r := Parse(out)
	assert.False(t, r.Dropped)
	assert.Equal(t, []int{1}, r.OutputPorts)
	assert.Equal(t, "172.18.0.12", r.TunnelDst)
	assert.Equal(t, 3, Category(r.Steps[0].Cookie))
}
