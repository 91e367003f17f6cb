package networkpolicy

import (
	"iter"
	"slices"
)

// smallSetMax is the size up to which a smallSet is a slice.
const smallSetMax = 16

// smallSet is a set that is a slice while it is small and a map once it
// grows: most sets of the controller (the members of a group, the pods of
// a label, the policies of a group) hold a handful of items, for which a
// map costs several times the memory of a slice.
type smallSet[T comparable] struct {
	list []T
	m    map[T]struct{}
}

func (s *smallSet[T]) len() int {
	if s.m != nil {
		return len(s.m)
	}
	return len(s.list)
}

func (s *smallSet[T]) has(v T) bool {
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	return slices.Contains(s.list, v)
}

// add adds v and reports whether it was not there.
func (s *smallSet[T]) add(v T) bool {
	if s.m != nil {
		if _, ok := s.m[v]; ok {
			return false
		}
		s.m[v] = struct{}{}
		return true
	}
	if slices.Contains(s.list, v) {
		return false
	}
	if len(s.list) < smallSetMax {
		s.list = appendSmall(s.list, v)
		return true
	}
	s.m = make(map[T]struct{}, 2*smallSetMax)
	for _, x := range s.list {
		s.m[x] = struct{}{}
	}
	s.list = nil
	s.m[v] = struct{}{}
	return true
}

// remove removes v and reports whether it was there.
func (s *smallSet[T]) remove(v T) bool {
	if s.m != nil {
		if _, ok := s.m[v]; !ok {
			return false
		}
		delete(s.m, v)
		if len(s.m) == 0 {
			s.m = nil
		}
		return true
	}
	i := slices.Index(s.list, v)
	if i < 0 {
		return false
	}
	last := len(s.list) - 1
	s.list[i] = s.list[last]
	var zero T
	s.list[last] = zero
	s.list = s.list[:last]
	if last == 0 {
		s.list = nil
	}
	return true
}

// all iterates over the items; the set must not change meanwhile.
func (s *smallSet[T]) all() iter.Seq[T] {
	return func(yield func(T) bool) {
		if s.m != nil {
			for v := range s.m {
				if !yield(v) {
					return
				}
			}
			return
		}
		for _, v := range s.list {
			if !yield(v) {
				return
			}
		}
	}
}

// appendSmall appends to a small slice, growing it from 1 to 4 items,
// then doubling: sets of one item are common, then of a few.
func appendSmall[T any](s []T, v T) []T {
	if len(s) == cap(s) && len(s) > 0 && len(s) < 4 {
		s = append(make([]T, 0, 4), s...)
	}
	return append(s, v)
}

// groupRefs counts references to AppliedToGroups: for an AddressGroup, how
// many of the policies using it apply to each AppliedToGroup. A slice
// while small, a map once large.
type groupRefs struct {
	list []groupRef
	m    map[*group]int
}

type groupRef struct {
	g *group
	n int
}

func (r *groupRefs) len() int {
	if r.m != nil {
		return len(r.m)
	}
	return len(r.list)
}

// inc takes a reference on g and reports whether it is the first.
func (r *groupRefs) inc(g *group) bool {
	if r.m != nil {
		r.m[g]++
		return r.m[g] == 1
	}
	for i := range r.list {
		if r.list[i].g == g {
			r.list[i].n++
			return false
		}
	}
	if len(r.list) < smallSetMax {
		r.list = appendSmall(r.list, groupRef{g, 1})
		return true
	}
	r.m = make(map[*group]int, 2*smallSetMax)
	for _, x := range r.list {
		r.m[x.g] = x.n
	}
	r.list = nil
	r.m[g] = 1
	return true
}

// dec drops a reference on g and reports whether it was the last.
func (r *groupRefs) dec(g *group) bool {
	if r.m != nil {
		n, ok := r.m[g]
		if !ok {
			return false
		}
		if n > 1 {
			r.m[g] = n - 1
			return false
		}
		delete(r.m, g)
		return true
	}
	for i := range r.list {
		if r.list[i].g != g {
			continue
		}
		if r.list[i].n > 1 {
			r.list[i].n--
			return false
		}
		last := len(r.list) - 1
		r.list[i] = r.list[last]
		r.list[last] = groupRef{}
		r.list = r.list[:last]
		return true
	}
	return false
}

// all iterates over the referenced groups.
func (r *groupRefs) all() iter.Seq[*group] {
	return func(yield func(*group) bool) {
		if r.m != nil {
			for g := range r.m {
				if !yield(g) {
					return
				}
			}
			return
		}
		for _, x := range r.list {
			if !yield(x.g) {
				return
			}
		}
	}
}
