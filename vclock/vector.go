package vclock

import (
	"slices"
	"strconv"
	"strings"
)

// Entry says that the dots (Actor, 1) .. (Actor, Counter) are all seen.
type Entry struct {
	Actor   Actor
	Counter uint64
}

// Vector is a version vector: a causal history summarised as one contiguous
// counter per actor. It is also the causal context a client reads and sends
// back with its next write.
//
// Methods expect the canonical form (entries sorted by Actor, one entry per
// actor, no zero counter), which every Vector made by this package has; build
// one by hand with NewVector. On a non-canonical Vector the methods return
// unspecified results but never panic. A nil Vector is the empty history.
// Methods never modify their receiver or argument.
type Vector []Entry

// NewVector returns the canonical Vector of entries: sorted, one entry per
// actor holding the largest counter given for it, zero counters dropped. It
// does not modify entries.
func NewVector(entries ...Entry) Vector {
	v := make(Vector, 0, len(entries))
	for _, e := range entries {
		if e.Counter > 0 {
			v = append(v, e)
		}
	}
	slices.SortFunc(v, func(a, b Entry) int { return compareActors(a.Actor, b.Actor) })
	out := v[:0]
	for _, e := range v {
		if n := len(out); n > 0 && out[n-1].Actor == e.Actor {
			out[n-1].Counter = max(out[n-1].Counter, e.Counter)
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// find returns the index of a's entry, or where it would be inserted.
func (v Vector) find(a Actor) (int, bool) {
	return slices.BinarySearchFunc(v, a, func(e Entry, a Actor) int { return compareActors(e.Actor, a) })
}

// Get returns a's counter: every dot of a up to it is seen. Zero if absent.
func (v Vector) Get(a Actor) uint64 {
	if i, ok := v.find(a); ok {
		return v[i].Counter
	}
	return 0
}

// Covers reports whether v has seen the dot d. It is false for a zero counter.
func (v Vector) Covers(d Dot) bool {
	return d.Counter >= 1 && d.Counter <= v.Get(d.Actor)
}

// Merge returns the pointwise maximum of v and o, the history of having seen
// both, as a new slice that aliases neither.
func (v Vector) Merge(o Vector) Vector {
	if len(v)+len(o) == 0 {
		return nil
	}
	return mergeInto(make(Vector, 0, len(v)+len(o)), v, o)
}

// mergeInto appends the pointwise maximum of v and o to dst.
func mergeInto(dst, v, o Vector) Vector {
	i, j := 0, 0
	for i < len(v) && j < len(o) {
		switch c := compareActors(v[i].Actor, o[j].Actor); {
		case c < 0:
			dst = append(dst, v[i])
			i++
		case c > 0:
			dst = append(dst, o[j])
			j++
		default:
			dst = append(dst, Entry{v[i].Actor, max(v[i].Counter, o[j].Counter)})
			i++
			j++
		}
	}
	dst = append(dst, v[i:]...)
	return append(dst, o[j:]...)
}

// mergedLen returns the length of the pointwise maximum of v and o with
// an entry for a added if neither has one: the context Update makes. On
// non-canonical vectors it may be off, which costs Update a reallocation.
func mergedLen(v, o Vector, a Actor) int {
	n := len(v)
	for _, e := range o {
		if _, ok := v.find(e.Actor); !ok {
			n++
		}
	}
	if _, ok := v.find(a); !ok {
		if _, ok := o.find(a); !ok {
			n++
		}
	}
	return n
}

// Order is the causal relation between two histories. The zero Order is
// invalid, so an unset result is never mistaken for Equal.
type Order int

// The four possible relations of two version vectors.
const (
	// Equal: both histories are the same.
	Equal Order = iota + 1
	// Before: the receiver's history is strictly contained in the other.
	Before
	// After: the receiver's history strictly contains the other.
	After
	// Concurrent: each history has seen something the other has not.
	Concurrent
)

// String returns the relation's name, e.g. "concurrent".
func (o Order) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "Order(" + strconv.Itoa(int(o)) + ")"
}

// Compare returns how v's history relates to o's.
func (v Vector) Compare(o Vector) Order {
	less, more := false, false // v lacks something o has; v has something o lacks
	i, j := 0, 0
	for i < len(v) && j < len(o) {
		switch c := compareActors(v[i].Actor, o[j].Actor); {
		case c < 0:
			more = true
			i++
		case c > 0:
			less = true
			j++
		default:
			if v[i].Counter > o[j].Counter {
				more = true
			} else if v[i].Counter < o[j].Counter {
				less = true
			}
			i++
			j++
		}
	}
	more = more || i < len(v)
	less = less || j < len(o)
	switch {
	case less && more:
		return Concurrent
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// Descends reports whether v has seen everything o has (v >= o pointwise).
func (v Vector) Descends(o Vector) bool {
	c := v.Compare(o)
	return c == Equal || c == After
}

// Equal reports whether v and o are the same history. nil equals empty.
func (v Vector) Equal(o Vector) bool { return slices.Equal(v, o) }

// String formats v for display, e.g. "{n1#1:3 n2#4:1}".
func (v Vector) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Dot(e).String())
	}
	b.WriteByte('}')
	return b.String()
}

// validate checks the canonical form and the limits.
func (v Vector) validate() error {
	if len(v) > MaxActors {
		return ErrTooLarge
	}
	for i, e := range v {
		if !e.Actor.valid() || e.Counter == 0 {
			return ErrMalformed
		}
		if e.Counter > MaxCounter {
			return ErrTooLarge
		}
		if i > 0 && compareActors(v[i-1].Actor, e.Actor) >= 0 {
			return ErrMalformed
		}
	}
	return nil
}
