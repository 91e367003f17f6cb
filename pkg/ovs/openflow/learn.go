package openflow

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Learn adds a flow to Table built from the packet being processed, or
// refreshes it when a flow with the same match and priority is there
// (NXAST_LEARN). The learned flow's match and actions are Specs.
type Learn struct {
	Table       uint8
	Priority    uint16
	IdleTimeout uint16
	HardTimeout uint16
	Cookie      uint64
	Specs       []LearnSpec
}

// LearnSpec is one element of a learned flow: a match on Dst (Load false)
// or a load into Dst (Load true), of NBits bits taken from the packet's
// field Src (from SrcOfs) or, when Src is empty, from Value.
type LearnSpec struct {
	Load   bool
	Dst    Field
	DstOfs int
	NBits  int
	Src    Field
	SrcOfs int
	Value  uint64
}

// LearnMatchField makes the learned flow match field f with the packet's
// value of it.
func LearnMatchField(f Field) LearnSpec { return LearnSpec{Dst: f, Src: f, NBits: -1} }

// LearnMatchValue makes the learned flow match field f == v.
func LearnMatchValue(f Field, v uint64) LearnSpec { return LearnSpec{Dst: f, Value: v, NBits: -1} }

// LearnLoadField makes the learned flow copy the packet's bits
// [start..end] of src into the same bits of dst.
func LearnLoadField(src, dst Field, start, end int) LearnSpec {
	return LearnSpec{Load: true, Src: src, SrcOfs: start, Dst: dst, DstOfs: start, NBits: end - start + 1}
}

// LearnLoadValue makes the learned flow load v into bits [start..end] of
// dst.
func LearnLoadValue(dst Field, start, end int, v uint64) LearnSpec {
	return LearnSpec{Load: true, Dst: dst, DstOfs: start, NBits: end - start + 1, Value: v}
}

func (a Learn) String() string {
	parts := []string{fmt.Sprintf("table=%d", a.Table)}
	if a.IdleTimeout != 0 {
		parts = append(parts, fmt.Sprintf("idle_timeout=%d", a.IdleTimeout))
	}
	if a.HardTimeout != 0 {
		parts = append(parts, fmt.Sprintf("hard_timeout=%d", a.HardTimeout))
	}
	parts = append(parts, fmt.Sprintf("priority=%d", a.Priority))
	if a.Cookie != 0 {
		parts = append(parts, fmt.Sprintf("cookie=%#x", a.Cookie))
	}
	for _, s := range a.Specs {
		parts = append(parts, s.String())
	}
	return "learn(" + strings.Join(parts, ",") + ")"
}

func (s LearnSpec) String() string {
	bits := func(f Field, ofs, n int) string {
		if n < 0 && ofs == 0 || ofs == 0 && n == fieldBits(f) {
			return nxmName(f) + "[]"
		}
		return fmt.Sprintf("%s[%d..%d]", nxmName(f), ofs, ofs+n-1)
	}
	switch {
	case !s.Load && s.Src != "" && s.Src == s.Dst && s.SrcOfs == s.DstOfs:
		return bits(s.Dst, s.DstOfs, s.NBits)
	case !s.Load && s.Src != "":
		return bits(s.Dst, s.DstOfs, s.NBits) + "=" + bits(s.Src, s.SrcOfs, s.NBits)
	case !s.Load && s.NBits < 0 && s.Dst == FieldEthType:
		return fmt.Sprintf("eth_type=%#x", s.Value)
	case !s.Load && s.NBits < 0 && s.Dst == FieldIPProto:
		return fmt.Sprintf("nw_proto=%d", s.Value)
	case !s.Load:
		return fmt.Sprintf("%s=%#x", bits(s.Dst, s.DstOfs, s.NBits), s.Value)
	case s.Src != "":
		return "load:" + bits(s.Src, s.SrcOfs, s.NBits) + "->" + bits(s.Dst, s.DstOfs, s.NBits)
	}
	return fmt.Sprintf("load:%#x->%s", s.Value, bits(s.Dst, s.DstOfs, s.NBits))
}

// fieldBits is f's width in bits (0 if unknown).
func fieldBits(f Field) int {
	_, w, err := nxmHeaderOf(f)
	if err != nil {
		return 0
	}
	return w
}

const (
	nxastLearn        uint16 = 16
	learnSrcImmediate uint16 = 1 << 13
	learnDstLoad      uint16 = 1 << 11
)

// appendLearn encodes nx_action_learn: the fixed 32-byte part, then the
// flow_mod_spec elements, zero-padded to a multiple of 8.
func appendLearn(b []byte, a Learn) ([]byte, error) {
	start := len(b)
	b = nxHeader(b, 0, nxastLearn)
	b = binary.BigEndian.AppendUint16(b, a.IdleTimeout)
	b = binary.BigEndian.AppendUint16(b, a.HardTimeout)
	b = binary.BigEndian.AppendUint16(b, a.Priority)
	b = binary.BigEndian.AppendUint64(b, a.Cookie)
	b = binary.BigEndian.AppendUint16(b, 0) // flags
	b = append(b, a.Table, 0)
	b = binary.BigEndian.AppendUint16(b, 0) // fin_idle_timeout
	b = binary.BigEndian.AppendUint16(b, 0) // fin_hard_timeout
	if len(a.Specs) == 0 {
		return b[:start], fmt.Errorf("openflow: learn without specs")
	}
	for _, s := range a.Specs {
		var err error
		if b, err = appendLearnSpec(b, s); err != nil {
			return b[:start], fmt.Errorf("learn spec %s: %w", s, err)
		}
	}
	b = pad8(b, start)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

func appendLearnSpec(b []byte, s LearnSpec) ([]byte, error) {
	dh, dw, err := nxmHeaderOf(s.Dst)
	if err != nil {
		return b, err
	}
	n := s.NBits
	if n < 0 {
		n = dw - s.DstOfs
	}
	if n <= 0 || s.DstOfs < 0 || s.DstOfs+n > dw {
		return b, fmt.Errorf("openflow: %d bits from bit %d do not fit the %d-bit field %s", n, s.DstOfs, dw, s.Dst)
	}
	header := uint16(n)
	if s.Src == "" {
		header |= learnSrcImmediate
	}
	if s.Load {
		header |= learnDstLoad
	}
	b = binary.BigEndian.AppendUint16(b, header)
	if s.Src != "" {
		sh, sw, err := nxmHeaderOf(s.Src)
		if err != nil {
			return b, err
		}
		if s.SrcOfs < 0 || s.SrcOfs+n > sw {
			return b, fmt.Errorf("openflow: %d bits from bit %d do not fit the %d-bit field %s", n, s.SrcOfs, sw, s.Src)
		}
		b = binary.BigEndian.AppendUint32(b, sh)
		b = binary.BigEndian.AppendUint16(b, uint16(s.SrcOfs))
	} else {
		if n < 64 && s.Value>>n != 0 {
			return b, fmt.Errorf("openflow: value %#x does not fit in %d bits", s.Value, n)
		}
		// The immediate value takes whole 16-bit units, big-endian.
		size := 2 * ((n + 15) / 16)
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, s.Value)
		if size > 8 {
			b = append(b, make([]byte, size-8)...)
			size = 8
		}
		b = append(b, v[8-size:]...)
	}
	b = binary.BigEndian.AppendUint32(b, dh)
	return binary.BigEndian.AppendUint16(b, uint16(s.DstOfs)), nil
}
