package networkpolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
)

// groupKind tells AppliedToGroups from AddressGroups; it is part of the
// hashed name so the two kinds never share a name.
type groupKind uint8

const (
	appliedToKind groupKind = iota
	addressKind
)

func (k groupKind) String() string {
	if k == appliedToKind {
		return "appliedTo"
	}
	return "address"
}

// groupSelector is the normalized selection of a group: the pods matching
// podSel either in one namespace (cluster false) or in every namespace
// that nsSel matches. It refers to the selectors of the policy it comes
// from: it is compiled once, when the first group of its key is created.
type groupSelector struct {
	namespace string
	cluster   bool
	nsSel     *metav1.LabelSelector
	podSel    *metav1.LabelSelector
	// key is the normalized text of the selection; equal keys select the
	// same pods, and the group name is a hash of it. nsKey and podKey are
	// the normalized texts of its selectors, within it.
	key, nsKey, podKey string
}

// nothingKey is the normalized text of a selector that matches nothing
// (an invalid one, or an empty peer).
const nothingKey = "<nothing>"

// namespacedSelector selects the pods matching sel in namespace ns.
func namespacedSelector(ns string, sel *metav1.LabelSelector) groupSelector {
	var buf [128]byte
	key := append(buf[:0], "ns:"...)
	key = append(key, ns...)
	key = append(key, "|pods:"...)
	pods := len(key)
	key = appendSelectorKey(key, sel)
	k := string(key)
	return groupSelector{namespace: ns, podSel: sel, key: k, podKey: k[pods:]}
}

// clusterSelector selects the pods matching podSel in the namespaces that
// nsSel matches; a nil podSel selects all their pods.
func clusterSelector(nsSel, podSel *metav1.LabelSelector) groupSelector {
	if podSel == nil {
		podSel = &metav1.LabelSelector{}
	}
	var buf [128]byte
	key := append(buf[:0], "nsSel:"...)
	key = appendSelectorKey(key, nsSel)
	nsEnd := len(key)
	key = append(key, "|pods:"...)
	pods := len(key)
	key = appendSelectorKey(key, podSel)
	k := string(key)
	return groupSelector{cluster: true, nsSel: nsSel, podSel: podSel, key: k, nsKey: k[len("nsSel:"):nsEnd], podKey: k[pods:]}
}

// nothingSelector selects no pod.
func nothingSelector() groupSelector {
	return groupSelector{key: nothingKey}
}

// asSelector converts a LabelSelector; a nil or invalid one matches
// nothing.
func asSelector(ls *metav1.LabelSelector) labels.Selector {
	if ls == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// groupName is the deterministic name of the group of that kind and
// selection.
func groupName(kind groupKind, s groupSelector) string {
	return groupNameOfKey(kind, s.key)
}

func groupNameOfKey(kind groupKind, key string) string {
	h := sha256.New()
	h.Write([]byte(kind.String()))
	h.Write([]byte{0})
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// appendSelectorKey appends the canonical text of a selector (see
// normalizeSelector) to buf. Selectors of matchLabels alone, by far the
// most common, take a path that builds no labels.Selector.
func appendSelectorKey(buf []byte, ls *metav1.LabelSelector) []byte {
	if ls == nil || len(ls.MatchExpressions) > 0 || len(ls.MatchLabels) > 8 {
		_, key := normalizeSelector(ls)
		return append(buf, key...)
	}
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k, v := range ls.MatchLabels {
		if !validLabel(k, v) {
			return append(buf, nothingKey...)
		}
		keys = append(keys, k)
	}
	// The canonical order is that of the "key=value" texts.
	slices.SortFunc(keys, func(a, b string) int {
		return compareLabels(a, ls.MatchLabels[a], b, ls.MatchLabels[b])
	})
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, k...)
		buf = append(buf, '=')
		buf = append(buf, ls.MatchLabels[k]...)
	}
	return buf
}

// validLabel reports whether a label key and value are valid, as
// labels.NewRequirement checks them. Plain names, by far the most common,
// are checked here without the regular expressions of the validation
// package.
func validLabel(k, v string) bool {
	if !plainName(k) && len(validation.IsQualifiedName(k)) != 0 {
		return false
	}
	return v == "" || plainName(v) || len(validation.IsValidLabelValue(v)) == 0
}

// plainName reports whether s is a name without a prefix, as the
// validation package defines it: 1 to 63 characters, alphanumeric at both
// ends, with '-', '_' and '.' inside.
func plainName(s string) bool {
	if len(s) == 0 || len(s) > validation.LabelValueMaxLength {
		return false
	}
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// compareLabels compares the texts "ka=va" and "kb=vb" without building
// them.
func compareLabels(ka, va, kb, vb string) int {
	at := func(k, v string, i int) (byte, bool) {
		switch {
		case i < len(k):
			return k[i], true
		case i == len(k):
			return '=', true
		case i-len(k)-1 < len(v):
			return v[i-len(k)-1], true
		}
		return 0, false
	}
	for i := 0; ; i++ {
		a, okA := at(ka, va, i)
		b, okB := at(kb, vb, i)
		switch {
		case !okA && !okB:
			return 0
		case !okA:
			return -1
		case !okB:
			return 1
		case a != b:
			return int(a) - int(b)
		}
	}
}

// normalizeSelector converts a LabelSelector and returns it with a
// canonical text: requirements sorted and deduplicated, a single-valued
// "in" written as "=". A nil selector is treated as empty by the callers
// that allow it; an invalid one matches nothing.
func normalizeSelector(ls *metav1.LabelSelector) (labels.Selector, string) {
	if ls == nil {
		return labels.Nothing(), nothingKey
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return labels.Nothing(), nothingKey
	}
	reqs, _ := sel.Requirements()
	parts := make([]string, 0, len(reqs))
	for _, r := range reqs {
		if (r.Operator() == selection.In || r.Operator() == selection.DoubleEquals) && r.Values().Len() == 1 {
			parts = append(parts, r.Key()+"="+r.Values().UnsortedList()[0])
			continue
		}
		parts = append(parts, r.String())
	}
	slices.Sort(parts)
	return sel, strings.Join(slices.Compact(parts), ",")
}

// labelKV is one label, key=value.
type labelKV struct{ key, value string }

// indexTerms returns the labels of which an object must carry one to
// match sel: the values of its most selective equality ("=", "in")
// requirement. ok is false when sel has no such requirement, so that any
// object may match it.
func indexTerms(sel labels.Selector) (terms []labelKV, ok bool) {
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		if ok && r.Values().Len() >= len(terms) {
			continue
		}
		terms = terms[:0]
		for _, v := range r.Values().UnsortedList() {
			terms = append(terms, labelKV{r.Key(), v})
		}
		ok = true
	}
	return terms, ok
}

// labeled is an object with a name and labels (a pod, a Namespace).
type labeled interface {
	comparable
	GetName() string
	GetLabels() map[string]string
}

// labelIndexAt is the number of objects above which a labelIndex indexes
// them by label; below it, scanning them is cheaper than the index.
const labelIndexAt = 16

// labelIndex holds objects by name and, once there are more than indexAt,
// by label, so that the objects a selector matches are found without
// scanning all of them. An object must not change its labels while
// indexed: remove it first.
type labelIndex[V labeled] struct {
	items   map[string]V
	byKV    map[labelKV]smallSet[V]
	indexAt int
}

func newLabelIndex[V labeled]() *labelIndex[V] {
	return &labelIndex[V]{indexAt: labelIndexAt}
}

func (x *labelIndex[V]) get(name string) (V, bool) {
	v, ok := x.items[name]
	return v, ok
}

func (x *labelIndex[V]) len() int { return len(x.items) }

// set adds or replaces the object of that name.
func (x *labelIndex[V]) set(name string, v V) {
	x.remove(name)
	if x.items == nil {
		x.items = map[string]V{}
	}
	x.items[name] = v
	switch {
	case x.byKV != nil:
		x.indexLabels(v)
	case len(x.items) > x.indexAt:
		x.byKV = map[labelKV]smallSet[V]{}
		for _, v := range x.items {
			x.indexLabels(v)
		}
	}
}

func (x *labelIndex[V]) indexLabels(v V) {
	for k, val := range v.GetLabels() {
		kv := labelKV{k, val}
		s := x.byKV[kv]
		s.add(v)
		x.byKV[kv] = s
	}
}

// remove forgets the object of that name.
func (x *labelIndex[V]) remove(name string) {
	old, ok := x.items[name]
	if !ok {
		return
	}
	delete(x.items, name)
	if x.byKV == nil {
		return
	}
	for k, val := range old.GetLabels() {
		kv := labelKV{k, val}
		if s, ok := x.byKV[kv]; ok {
			s.remove(old)
			if s.len() == 0 {
				delete(x.byKV, kv)
			} else {
				x.byKV[kv] = s
			}
		}
	}
	if len(x.items) == 0 {
		x.byKV = nil
	}
}

// match calls fn for each object that sel matches. It walks the smallest
// set of candidates that the selector's equality requirements allow.
func (x *labelIndex[V]) match(sel labels.Selector, fn func(name string, v V)) {
	if _, selectable := sel.Requirements(); !selectable {
		return // labels.Nothing()
	}
	var terms []labelKV
	ok := false
	if x.byKV != nil {
		terms, ok = indexTerms(sel)
	}
	if !ok {
		for name, v := range x.items {
			if sel.Matches(labels.Set(v.GetLabels())) {
				fn(name, v)
			}
		}
		return
	}
	for _, t := range terms {
		s := x.byKV[t]
		for v := range s.all() {
			if sel.Matches(labels.Set(v.GetLabels())) {
				fn(v.GetName(), v)
			}
		}
	}
}

// selectorIndexAt is the number of selectors above which a selectorIndex
// indexes them by label.
const selectorIndexAt = 8

// selectorIndex holds selectors (of groups) so that the selectors that may
// match an object are found from its labels: a list while there are few,
// then by the labels an object must carry to match them, so that they are
// found without scanning all of them.
type selectorIndex[T comparable] struct {
	list      []selectorEntry[T]
	byKV      map[labelKV]smallSet[T]
	unindexed smallSet[T]
	n         int
}

type selectorEntry[T comparable] struct {
	v   T
	sel labels.Selector
}

func newSelectorIndex[T comparable]() *selectorIndex[T] { return &selectorIndex[T]{} }

func (x *selectorIndex[T]) empty() bool { return x.n == 0 }

func (x *selectorIndex[T]) add(v T, sel labels.Selector) {
	x.n++
	if x.byKV == nil {
		if len(x.list) < selectorIndexAt {
			x.list = appendSmall(x.list, selectorEntry[T]{v, sel})
			return
		}
		x.byKV = map[labelKV]smallSet[T]{}
		for _, e := range x.list {
			x.index(e.v, e.sel)
		}
		x.list = nil
	}
	x.index(v, sel)
}

func (x *selectorIndex[T]) index(v T, sel labels.Selector) {
	terms, ok := indexTerms(sel)
	if !ok {
		x.unindexed.add(v)
		return
	}
	for _, t := range terms {
		s := x.byKV[t]
		s.add(v)
		x.byKV[t] = s
	}
}

func (x *selectorIndex[T]) remove(v T, sel labels.Selector) {
	if x.byKV == nil {
		i := slices.IndexFunc(x.list, func(e selectorEntry[T]) bool { return e.v == v })
		if i >= 0 {
			x.list = slices.Delete(x.list, i, i+1)
			x.n--
		}
		return
	}
	terms, ok := indexTerms(sel)
	if !ok {
		if x.unindexed.remove(v) {
			x.n--
		}
		return
	}
	removed := false
	for _, t := range terms {
		if s, found := x.byKV[t]; found && s.remove(v) {
			removed = true
			if s.len() == 0 {
				delete(x.byKV, t)
			} else {
				x.byKV[t] = s
			}
		}
	}
	if removed {
		x.n--
	}
	if x.n == 0 {
		*x = selectorIndex[T]{}
	}
}

// candidates calls fn, once each, for the selectors that may match an
// object with these labels; the caller still evaluates them.
func (x *selectorIndex[T]) candidates(lbls map[string]string, fn func(T)) {
	if x.byKV == nil {
		for _, e := range x.list {
			fn(e.v)
		}
		return
	}
	for v := range x.unindexed.all() {
		fn(v)
	}
	// A selector is indexed under the values of a single key, and an
	// object has one value per key, so no selector is seen twice.
	for k, val := range lbls {
		s := x.byKV[labelKV{k, val}]
		for v := range s.all() {
			fn(v)
		}
	}
}
