package netpol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTableHelpers(t *testing.T) {
	m := NewModel(Env{Prefix: "np-"})
	xa, xb, ya, zc := m.Pod("x", "a"), m.Pod("x", "b"), m.Pod("y", "a"), m.Pod("z", "c")

	tests := []struct {
		name    string
		table   *Table
		allowed map[[2]PodID]bool
	}{
		{
			name:    "all allowed",
			table:   m.NewTable(true),
			allowed: map[[2]PodID]bool{{xa, xa}: true, {zc, xa}: true},
		},
		{
			name:    "expect to pod then reopen one cell",
			table:   m.NewTable(true).ExpectTo(xa, false).Set(xb, xa, true),
			allowed: map[[2]PodID]bool{{xa, xa}: false, {ya, xa}: false, {xb, xa}: true, {xa, xb}: true},
		},
		{
			name:    "expect from namespace",
			table:   m.NewTable(true).ExpectFromNamespace(m.NS("x"), false),
			allowed: map[[2]PodID]bool{{xa, zc}: false, {xb, xa}: false, {ya, xa}: true},
		},
		{
			name:    "expect to namespace",
			table:   m.NewTable(true).ExpectToNamespace(m.NS("y"), false),
			allowed: map[[2]PodID]bool{{xa, ya}: false, {ya, ya}: false, {ya, xa}: true},
		},
		{
			name:    "expect from pod",
			table:   m.NewTable(false).ExpectFrom(zc, true),
			allowed: map[[2]PodID]bool{{zc, xa}: true, {xa, zc}: false},
		},
		{
			name:    "peer by pod name across namespaces",
			table:   m.NewTable(true).ExpectPeer(Peer{Pod: "a"}, Peer{Namespace: m.NS("z")}, false),
			allowed: map[[2]PodID]bool{{xa, zc}: false, {ya, zc}: false, {xb, zc}: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for cell, want := range tt.allowed {
				assert.Equal(t, want, tt.table.Allowed(cell[0], cell[1]), "%s -> %s", cell[0], cell[1])
			}
		})
	}
}

func TestTableParseAndPrint(t *testing.T) {
	m := NewModel(Env{})
	rows := []string{
		"X.. ... ...",
		"... X.. ...",
		"... ... X..",
		"... ... ...",
		"... ... ...",
		"... ... ...",
		"... ... ...",
		"... ... ...",
		"... ... ..?",
	}
	tbl, err := ParseTable(m.PodIDs(), rows...)
	require.NoError(t, err)
	assert.Equal(t, Blocked, tbl.Get(m.Pod("x", "a"), m.Pod("x", "a")))
	assert.Equal(t, Blocked, tbl.Get(m.Pod("x", "b"), m.Pod("y", "a")))
	assert.Equal(t, Unknown, tbl.Get(m.Pod("z", "c"), m.Pod("z", "c")))

	out := tbl.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 10)
	assert.Equal(t, "-    x/a  x/b  x/c  y/a  y/b  y/c  z/a  z/b  z/c", lines[0])
	assert.Equal(t, "x/a  X    .    .    .    .    .    .    .    .", lines[1])
	assert.Equal(t, "z/c  .    .    .    .    .    .    .    .    ?", lines[9])

	// The printed marks parse back to the same table.
	var again []string
	for _, l := range lines[1:] {
		again = append(again, strings.Join(strings.Fields(l)[1:], ""))
	}
	back, err := ParseTable(m.PodIDs(), again...)
	require.NoError(t, err)
	assert.Equal(t, tbl, back)

	_, err = ParseTable(m.PodIDs(), rows[:8]...)
	assert.Error(t, err)
	_, err = ParseTable(m.PodIDs(), append(rows[:8:8], "... ... .")...)
	assert.Error(t, err)
	_, err = ParseTable(m.PodIDs(), append(rows[:8:8], "... ... ..-")...)
	assert.Error(t, err)
}

func TestTableDiff(t *testing.T) {
	m := NewModel(Env{})
	xa, xb := m.Pod("x", "a"), m.Pod("x", "b")
	want := m.NewTable(true).ExpectTo(xa, false)
	got := want.Clone().Set(xb, xa, true).Set(xa, xa, true)
	got.setVerdict(xb, xb, Unknown)

	all, err := want.Diff(got, false)
	require.NoError(t, err)
	assert.Equal(t, []Mismatch{
		{From: xa, To: xa, Want: Blocked, Got: Allowed},
		{From: xb, To: xa, Want: Blocked, Got: Allowed},
		{From: xb, To: xb, Want: Allowed, Got: Unknown},
	}, all)

	noSelf, err := want.Diff(got, true)
	require.NoError(t, err)
	assert.Equal(t, []Mismatch{{From: xb, To: xa, Want: Blocked, Got: Allowed}}, noSelf)
	assert.Equal(t, "x/b -> x/a: want blocked, got allowed", noSelf[0].String())

	printed := FormatDiff(got, noSelf)
	assert.Contains(t, printed, "x/b  *.*")
	assert.Equal(t, 1, strings.Count(printed, "*")/2)

	_, err = want.Diff(NewTable(m.PodIDs()[:3], true), false)
	assert.Error(t, err)
}
