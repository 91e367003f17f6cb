package openflowtest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

func flow(table uint8, prio uint16, port uint32, cookie uint64, actions ...openflow.Action) openflow.Flow {
	return openflow.Flow{Table: table, Priority: prio, Cookie: cookie, Match: []openflow.MatchField{openflow.MatchInPort(port)}, Actions: actions}
}

func TestFake(t *testing.T) {
	ctx := context.Background()
	a := flow(0, 10, 1, 0x1, openflow.Output{Port: 2})
	b := flow(0, 10, 2, 0x2, openflow.Group{ID: 5})
	c := flow(1, 20, 3, 0x1, openflow.Resubmit{Table: 2})
	group := openflow.GroupEntry{ID: 5, Type: openflow.GroupSelect, Buckets: []openflow.Bucket{{Weight: 1, Actions: []openflow.Action{openflow.Output{Port: 9}}}}}

	tests := []struct {
		name    string
		apply   func(f *Fake) error
		wantErr bool
		want    string
	}{
		{
			name: "flow using a missing group is rejected",
			apply: func(f *Fake) error {
				return f.Bundle(ctx, []openflow.Flow{a, b}, nil)
			},
			wantErr: true,
		},
		{
			name: "flows and groups",
			apply: func(f *Fake) error {
				return f.Apply(ctx, openflow.Change{AddGroups: []openflow.GroupEntry{group}, AddFlows: []openflow.Flow{a, b, c}})
			},
			want: "cookie=0x1,table=0,priority=10,in_port=1 actions=output:2\n" +
				"cookie=0x1,table=1,priority=20,in_port=3 actions=resubmit(,2)\n" +
				"cookie=0x2,table=0,priority=10,in_port=2 actions=group:5\n",
		},
		{
			name: "delete, replace and modify",
			apply: func(f *Fake) error {
				require.NoError(t, f.Apply(ctx, openflow.Change{AddGroups: []openflow.GroupEntry{group}, AddFlows: []openflow.Flow{a, b, c}}))
				a2 := a
				a2.Actions = []openflow.Action{openflow.Output{Port: 7}}
				c2 := c
				c2.Cookie = 0x9 // modify keeps the cookie
				c2.Actions = nil
				return f.Apply(ctx, openflow.Change{DelFlows: []openflow.Flow{b}, AddFlows: []openflow.Flow{a2}, ModFlows: []openflow.Flow{c2}})
			},
			want: "cookie=0x1,table=0,priority=10,in_port=1 actions=output:7\n" +
				"cookie=0x1,table=1,priority=20,in_port=3 actions=drop\n",
		},
		{
			name: "deleting a group deletes its flows",
			apply: func(f *Fake) error {
				require.NoError(t, f.Apply(ctx, openflow.Change{AddGroups: []openflow.GroupEntry{group}, AddFlows: []openflow.Flow{a, b}}))
				return f.Apply(ctx, openflow.Change{DelGroups: []uint32{5}})
			},
			want: "cookie=0x1,table=0,priority=10,in_port=1 actions=output:2\n",
		},
		{
			name: "delete by cookie",
			apply: func(f *Fake) error {
				require.NoError(t, f.Apply(ctx, openflow.Change{AddGroups: []openflow.GroupEntry{group}, AddFlows: []openflow.Flow{a, b, c}}))
				return f.DeleteByCookie(ctx, 0x1, 0xf)
			},
			want: "cookie=0x2,table=0,priority=10,in_port=2 actions=group:5\n",
		},
		{
			name: "injected failure changes nothing, then clears",
			apply: func(f *Fake) error {
				require.NoError(t, f.Bundle(ctx, []openflow.Flow{a}, nil))
				f.FailNext(nil)
				err := f.Bundle(ctx, []openflow.Flow{c}, []openflow.Flow{a})
				require.ErrorIs(t, err, ErrInjected)
				return f.Bundle(ctx, []openflow.Flow{c}, nil)
			},
			want: "cookie=0x1,table=0,priority=10,in_port=1 actions=output:2\n" +
				"cookie=0x1,table=1,priority=20,in_port=3 actions=resubmit(,2)\n",
		},
		{
			name: "disconnected",
			apply: func(f *Fake) error {
				f.SetConnected(false)
				return f.Bundle(ctx, []openflow.Flow{a}, nil)
			},
			wantErr: true,
		},
		{
			name: "invalid flow",
			apply: func(f *Fake) error {
				return f.Bundle(ctx, []openflow.Flow{flow(0, 1, 1, 0, openflow.OutputReg{Reg: 20, End: 15})}, nil)
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake()
			err := tt.apply(f)
			if tt.wantErr {
				assert.Error(t, err)
				assert.Empty(t, f.Dump())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.Dump())
		})
	}
}

func TestFakeDumpFlowsAndReset(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	require.NoError(t, f.Bundle(ctx, []openflow.Flow{flow(0, 10, 1, 0), flow(3, 10, 1, 0), flow(3, 20, 2, 0)}, nil))
	stats, err := f.DumpFlows(ctx, 3)
	require.NoError(t, err)
	require.Len(t, stats, 2)
	all, err := f.DumpFlows(ctx, -1)
	require.NoError(t, err)
	assert.Len(t, all, 3)
	fl := f.Flows()
	assert.Equal(t, uint16(20), fl[1].Priority, "higher priority first within a table")
	_, ok := f.Flow(fl[0].Key())
	assert.True(t, ok)
	assert.Equal(t, 1, f.Applies())

	f.Reset()
	assert.Empty(t, f.Dump())
	f.FailNext(errors.New("boom"))
	assert.EqualError(t, f.DeleteByCookie(ctx, 0, 0), "boom")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.Error(t, f.Bundle(cctx, []openflow.Flow{flow(0, 1, 1, 0)}, nil))
}
