package proxy

import (
	"fmt"
	"sort"

	"github.com/ovs-cni/antrea/pkg/agent/idalloc"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// The batch compiler of the golden, integration and benchmark tests:
// every port of a list compiled at once, group ids kept across compiles
// as the controller keeps them.

// Result is what a compile produces.
type Result struct {
	// Flows are the flows by owner, one owner per service port.
	Flows map[string][]of.Flow
	// Groups are the select groups of the service ports that have
	// endpoints, by ascending id.
	Groups []of.GroupEntry
	// GroupIDs is the group id of every valid service port, by Key (a port
	// without endpoints keeps its id, with no group installed).
	GroupIDs map[string]uint32
	// Invalid lists the service ports and endpoints that were skipped, and
	// why.
	Invalid []string
}

// Compiler compiles service ports, keeping group ids stable across
// compiles.
type Compiler struct{ ids *idalloc.Allocator }

// NewCompiler returns a compiler that allocates group ids from FirstGroupID.
func NewCompiler() *Compiler { return &Compiler{ids: idalloc.New(FirstGroupID)} }

// Compile returns the flows and groups of ports.
func (c *Compiler) Compile(ports []ServicePort) Result {
	c.ids.Begin()
	res := Result{Flows: map[string][]of.Flow{}, GroupIDs: map[string]uint32{}}
	sorted := make([]*ServicePort, 0, len(ports))
	for i := range ports {
		sorted = append(sorted, &ports[i])
	}
	// Deterministic ids: allocate in key order.
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	for _, sp := range sorted {
		key := sp.Key()
		if _, dup := res.GroupIDs[key]; dup {
			res.Invalid = append(res.Invalid, fmt.Sprintf("%s (%s): duplicate service port", key, sp.Name))
			continue
		}
		pr, err := CompilePort(sp, c.ids.Get)
		res.Invalid = append(res.Invalid, pr.Invalid...)
		if err != nil {
			continue
		}
		for k, id := range pr.GroupIDs {
			res.GroupIDs[k] = id
		}
		res.Groups = append(res.Groups, pr.Groups...)
		res.Flows[pr.Owner] = pr.Flows
	}
	sort.Slice(res.Groups, func(i, j int) bool { return res.Groups[i].ID < res.Groups[j].ID })
	return res
}

// ReleaseUnused frees the group ids of the service ports that the last
// compile did not have, and returns them: their groups are to be deleted
// (deleting a group that was never installed is not an error).
func (c *Compiler) ReleaseUnused() []uint32 { return c.ids.ReleaseUnused() }

// Compile compiles ports with a fresh compiler.
func Compile(ports []ServicePort) Result { return NewCompiler().Compile(ports) }
