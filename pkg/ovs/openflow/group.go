package openflow

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// GroupType is an OpenFlow group type.
type GroupType uint8

// Group types the pipeline uses.
const (
	GroupAll    GroupType = 0 // every bucket gets a copy (flooding)
	GroupSelect GroupType = 1 // one bucket per flow, by weight (load balancing)
)

func (t GroupType) String() string {
	switch t {
	case GroupAll:
		return "all"
	case GroupSelect:
		return "select"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Bucket is one bucket of a group. Weight only applies to select groups,
// where a bucket of weight 0 is never chosen.
type Bucket struct {
	Weight  uint16
	Actions []Action
}

// GroupEntry is one OpenFlow group. Installing it replaces any group with
// the same ID, buckets and all.
type GroupEntry struct {
	ID      uint32
	Type    GroupType
	Buckets []Bucket
}

// String prints the group like `ovs-ofctl add-group` takes it.
func (g GroupEntry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group_id=%d,type=%s", g.ID, g.Type)
	for _, bk := range g.Buckets {
		b.WriteString(",bucket=")
		if g.Type == GroupSelect {
			fmt.Fprintf(&b, "weight:%d,", bk.Weight)
		}
		b.WriteString("actions=")
		b.WriteString(ActionsString(bk.Actions))
	}
	return b.String()
}

// Group mod commands (OpenFlow 1.5, plus OVS's add-or-modify).
const (
	groupCmdDelete       uint16 = 2
	groupCmdInsertBucket uint16 = 3
	groupCmdAddOrMod     uint16 = 0x8000
	bucketLast           uint32 = 0xfffffffd // OFPG15_BUCKET_LAST
	bucketAll            uint32 = 0xffffffff // OFPG15_BUCKET_ALL
	groupModLen                 = headerLen + 16
	bucketPropWeight     uint16 = 0 // OFPGBPT15_WEIGHT
)

// encodeBucket encodes one ofp15_bucket.
func encodeBucket(id uint32, t GroupType, bk Bucket) ([]byte, error) {
	b := make([]byte, 8, 64)
	b, err := appendActions(b, bk.Actions)
	if err != nil {
		return nil, err
	}
	actionsLen := len(b) - 8
	if t == GroupSelect {
		b = binary.BigEndian.AppendUint16(b, bucketPropWeight)
		b = binary.BigEndian.AppendUint16(b, 8)
		b = binary.BigEndian.AppendUint16(b, bk.Weight)
		b = append(b, 0, 0)
	}
	binary.BigEndian.PutUint16(b[0:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[2:], uint16(actionsLen))
	binary.BigEndian.PutUint32(b[4:], id)
	return b, nil
}

// groupModBody is an encoded group mod without its ofp_header, so that
// callers can give it the xid they need.
type groupModBody []byte

func newGroupMod(cmd uint16, t GroupType, id, cmdBucket uint32) groupModBody {
	b := make([]byte, 16, 256)
	binary.BigEndian.PutUint16(b[0:], cmd)
	b[2] = uint8(t)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[12:], cmdBucket)
	return b
}

// encodeGroupMods turns installing g into group mod bodies: one
// add-or-modify carrying the buckets that fit in a message, then as many
// insert-bucket (at the end) messages as the rest need. Applied in one
// bundle, they replace the group atomically.
func encodeGroupMods(g *GroupEntry) ([]groupModBody, error) {
	var out []groupModBody
	cur := newGroupMod(groupCmdAddOrMod, g.Type, g.ID, bucketAll)
	for i, bk := range g.Buckets {
		enc, err := encodeBucket(uint32(i), g.Type, bk)
		if err != nil {
			return nil, fmt.Errorf("group %d bucket %d: %w", g.ID, i, err)
		}
		if groupModLen+len(enc) > maxInnerLen {
			return nil, fmt.Errorf("group %d bucket %d: %d bytes is too large for a message", g.ID, i, len(enc))
		}
		if headerLen+len(cur)+len(enc) > maxInnerLen {
			out = append(out, cur.withBucketLen())
			cur = newGroupMod(groupCmdInsertBucket, g.Type, g.ID, bucketLast)
		}
		cur = append(cur, enc...)
	}
	return append(out, cur.withBucketLen()), nil
}

// encodeGroupDelete is the group mod that deletes group id.
func encodeGroupDelete(id uint32) groupModBody {
	return newGroupMod(groupCmdDelete, GroupAll, id, bucketAll).withBucketLen()
}

func (g groupModBody) withBucketLen() groupModBody {
	binary.BigEndian.PutUint16(g[8:], uint16(len(g)-16))
	return g
}

// appendGroupMod appends g as a complete OFPT_GROUP_MOD message.
func appendGroupMod(b []byte, xid uint32, g groupModBody) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, typeGroupMod, xid)
	b = append(b, g...)
	return finish(b, start)
}

// Validate reports whether g can be encoded.
func (g *GroupEntry) Validate() error {
	_, err := encodeGroupMods(g)
	return err
}
