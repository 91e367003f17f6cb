package networkpolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// groupKind tells AppliedToGroups from AddressGroups; it is part of the
// hashed name so the two kinds never share a name.
type groupKind string

const (
	appliedToKind groupKind = "appliedTo"
	addressKind   groupKind = "address"
)

// groupSelector is the normalized selection of a group: the pods matching
// podSelector either in one namespace (namespace set, nsSelector nil) or in
// every namespace that nsSelector matches.
type groupSelector struct {
	namespace   string
	nsSelector  labels.Selector
	podSelector labels.Selector
	// key is the normalized text of the selection; equal keys select the
	// same pods, and the group name is a hash of it.
	key string
}

// nothingKey is the normalized text of a selector that matches nothing
// (an invalid one, or an empty peer).
const nothingKey = "<nothing>"

// namespacedSelector selects the pods matching sel in namespace ns.
func namespacedSelector(ns string, sel *metav1.LabelSelector) groupSelector {
	pods, podKey := normalizeSelector(sel)
	return groupSelector{namespace: ns, podSelector: pods, key: "ns:" + ns + "|pods:" + podKey}
}

// clusterSelector selects the pods matching podSel in the namespaces that
// nsSel matches; a nil podSel selects all their pods.
func clusterSelector(nsSel, podSel *metav1.LabelSelector) groupSelector {
	nss, nsKey := normalizeSelector(nsSel)
	if podSel == nil {
		podSel = &metav1.LabelSelector{}
	}
	pods, podKey := normalizeSelector(podSel)
	return groupSelector{nsSelector: nss, podSelector: pods, key: "nsSel:" + nsKey + "|pods:" + podKey}
}

// nothingSelector selects no pod.
func nothingSelector() groupSelector {
	return groupSelector{podSelector: labels.Nothing(), nsSelector: labels.Nothing(), key: nothingKey}
}

// clusterScoped reports whether the selection spans namespaces.
func (s groupSelector) clusterScoped() bool { return s.nsSelector != nil }

// groupName is the deterministic name of the group of that kind and
// selection.
func groupName(kind groupKind, s groupSelector) string {
	sum := sha256.Sum256([]byte(string(kind) + "\x00" + s.key))
	return hex.EncodeToString(sum[:16])
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

// labeled is an object with labels (a Pod, a Namespace).
type labeled interface {
	comparable
	GetLabels() map[string]string
}

// labelIndex holds objects by name and by label, so that the objects a
// selector matches are found without scanning all of them.
type labelIndex[V labeled] struct {
	items map[string]V
	byKV  map[labelKV]map[string]V
}

func newLabelIndex[V labeled]() *labelIndex[V] {
	return &labelIndex[V]{items: map[string]V{}, byKV: map[labelKV]map[string]V{}}
}

func (x *labelIndex[V]) get(name string) (V, bool) {
	v, ok := x.items[name]
	return v, ok
}

func (x *labelIndex[V]) len() int { return len(x.items) }

// set adds or replaces the object of that name.
func (x *labelIndex[V]) set(name string, v V) {
	x.remove(name)
	x.items[name] = v
	for k, val := range v.GetLabels() {
		kv := labelKV{k, val}
		m := x.byKV[kv]
		if m == nil {
			m = map[string]V{}
			x.byKV[kv] = m
		}
		m[name] = v
	}
}

// remove forgets the object of that name.
func (x *labelIndex[V]) remove(name string) {
	old, ok := x.items[name]
	if !ok {
		return
	}
	delete(x.items, name)
	for k, val := range old.GetLabels() {
		kv := labelKV{k, val}
		if m := x.byKV[kv]; m != nil {
			delete(m, name)
			if len(m) == 0 {
				delete(x.byKV, kv)
			}
		}
	}
}

// match calls fn for each object that sel matches. It walks the smallest
// set of candidates that the selector's equality requirements allow.
func (x *labelIndex[V]) match(sel labels.Selector, fn func(name string, v V)) {
	if _, selectable := sel.Requirements(); !selectable {
		return // labels.Nothing()
	}
	terms, ok := indexTerms(sel)
	if !ok {
		for name, v := range x.items {
			if sel.Matches(labels.Set(v.GetLabels())) {
				fn(name, v)
			}
		}
		return
	}
	for _, t := range terms {
		for name, v := range x.byKV[t] {
			if sel.Matches(labels.Set(v.GetLabels())) {
				fn(name, v)
			}
		}
	}
}

// selectorIndex holds selectors (of groups) by the labels an object must
// carry to match them, so that the selectors that may match an object are
// found from its labels without scanning all of them.
type selectorIndex struct {
	byKV      map[labelKV]map[string]struct{}
	unindexed map[string]struct{}
}

func newSelectorIndex() *selectorIndex {
	return &selectorIndex{byKV: map[labelKV]map[string]struct{}{}, unindexed: map[string]struct{}{}}
}

func (x *selectorIndex) empty() bool { return len(x.byKV) == 0 && len(x.unindexed) == 0 }

func (x *selectorIndex) add(name string, sel labels.Selector) {
	terms, ok := indexTerms(sel)
	if !ok {
		x.unindexed[name] = struct{}{}
		return
	}
	for _, t := range terms {
		m := x.byKV[t]
		if m == nil {
			m = map[string]struct{}{}
			x.byKV[t] = m
		}
		m[name] = struct{}{}
	}
}

func (x *selectorIndex) remove(name string, sel labels.Selector) {
	terms, ok := indexTerms(sel)
	if !ok {
		delete(x.unindexed, name)
		return
	}
	for _, t := range terms {
		if m := x.byKV[t]; m != nil {
			delete(m, name)
			if len(m) == 0 {
				delete(x.byKV, t)
			}
		}
	}
}

// candidates calls fn, once each, for the selectors that may match an
// object with these labels; the caller still evaluates them.
func (x *selectorIndex) candidates(lbls map[string]string, fn func(name string)) {
	for name := range x.unindexed {
		fn(name)
	}
	// A selector is indexed under the values of a single key, and an
	// object has one value per key, so no selector is seen twice.
	for k, v := range lbls {
		for name := range x.byKV[labelKV{k, v}] {
			fn(name)
		}
	}
}
