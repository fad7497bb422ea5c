package vclock

import (
	"bytes"
	"cmp"
	"slices"
)

// Value is what one write stored.
type Value struct {
	// Data is the value's bytes. This package never modifies it and shares it
	// between the sets it returns; callers must not modify it either.
	Data []byte
	// ContentType is the client's media type, at most MaxContentTypeLen bytes.
	ContentType string
	// Deleted marks a tombstone: a delete is a write of a tombstone, so that
	// the delete supersedes exactly what its context covered and no more.
	Deleted bool
	// Timestamp is the coordinator's wall clock at the write, in Unix
	// nanoseconds. It is for display and ResolveLWW only; causality never
	// reads it.
	Timestamp int64
}

// Equal reports whether v and o are the same value (nil Data equals empty).
func (v Value) Equal(o Value) bool {
	return v.ContentType == o.ContentType && v.Deleted == o.Deleted &&
		v.Timestamp == o.Timestamp && bytes.Equal(v.Data, o.Data)
}

// Sibling is one live value of a key and the dot of the write that stored it.
type Sibling struct {
	Dot   Dot
	Value Value
}

// Set is a dotted version vector set: the siblings of one key (values written
// concurrently) plus the causal history the set has seen. Every sibling's dot
// is covered by Context; siblings are sorted by dot, with distinct dots. The
// zero Set is a key never written.
//
// Functions take and return Sets by value and never modify their arguments;
// results share Value.Data with their inputs but no slice a later append could
// corrupt.
type Set struct {
	// Context is everything this set has seen, siblings included.
	Context Vector
	// Siblings are the values no write in Context has superseded.
	Siblings []Sibling
}

// Update applies a write at a coordinator: it mints a new dot for actor a,
// drops exactly the siblings of s that the client's context ctx covers (nil
// ctx: a blind write, concurrent with everything present) and adds v as a
// sibling. It returns the new set and the new dot; s is not modified.
//
// The caller must pass an actor all of whose earlier dots for this key are in
// s.Context (see the package doc); otherwise the new dot may already be seen
// elsewhere and the write would be silently discarded. An invalid actor or a
// counter past MaxCounter (reachable only through a forged context) yields a
// set that MarshalBinary refuses.
func Update(s Set, ctx Vector, a Actor, v Value) (Set, Dot) {
	dot := Dot{Actor: a, Counter: max(s.Context.Get(a), ctx.Get(a)) + 1}

	out := Set{Context: mergeInto(make(Vector, 0, len(s.Context)+len(ctx)+1), s.Context, ctx)}
	if i, ok := out.Context.find(a); ok {
		out.Context[i].Counter = dot.Counter
	} else {
		out.Context = slices.Insert(out.Context, i, Entry{Actor: a, Counter: dot.Counter})
	}

	out.Siblings = make([]Sibling, 0, len(s.Siblings)+1)
	added := false
	for _, sib := range s.Siblings {
		if ctx.Covers(sib.Dot) {
			continue
		}
		// The new dot's counter exceeds every counter of a in s, so it sorts
		// after a's siblings and before the next actor's.
		if !added && compareDots(dot, sib.Dot) < 0 {
			out.Siblings = append(out.Siblings, Sibling{Dot: dot, Value: v})
			added = true
		}
		out.Siblings = append(out.Siblings, sib)
	}
	if !added {
		out.Siblings = append(out.Siblings, Sibling{Dot: dot, Value: v})
	}
	return out, dot
}

// Sync merges two replicas' sets of the same key, as replicas exchange them.
// A sibling survives if the other set holds it too or has not seen its dot;
// the context is the pointwise maximum. Sync is commutative, associative and
// idempotent on sets made by this package, and returns a new canonical set.
func Sync(a, b Set) Set {
	out := Set{Context: a.Context.Merge(b.Context)}
	if n := len(a.Siblings) + len(b.Siblings); n > 0 {
		out.Siblings = make([]Sibling, 0, n)
	}
	i, j := 0, 0
	for i < len(a.Siblings) || j < len(b.Siblings) {
		var c int
		switch {
		case i == len(a.Siblings):
			c = 1
		case j == len(b.Siblings):
			c = -1
		default:
			c = compareDots(a.Siblings[i].Dot, b.Siblings[j].Dot)
		}
		switch {
		case c == 0:
			// Both hold the dot; a dot names one write, so the values are
			// the same. Take a's.
			out.Siblings = append(out.Siblings, a.Siblings[i])
			i++
			j++
		case c < 0:
			if !b.Context.Covers(a.Siblings[i].Dot) {
				out.Siblings = append(out.Siblings, a.Siblings[i])
			}
			i++
		default:
			if !a.Context.Covers(b.Siblings[j].Dot) {
				out.Siblings = append(out.Siblings, b.Siblings[j])
			}
			j++
		}
	}
	if len(out.Siblings) == 0 {
		out.Siblings = nil
	}
	return out
}

// Live returns the siblings that are not tombstones, in dot order, as a new
// slice (nil if none).
func (s Set) Live() []Sibling {
	var live []Sibling
	for _, sib := range s.Siblings {
		if !sib.Value.Deleted {
			live = append(live, sib)
		}
	}
	return live
}

// IsDeleted reports whether the key reads as not found: no sibling is live.
// True for the zero Set.
func (s Set) IsDeleted() bool {
	for _, sib := range s.Siblings {
		if !sib.Value.Deleted {
			return false
		}
	}
	return true
}

// Find returns the value of the sibling with dot d, if s holds it.
func (s Set) Find(d Dot) (Value, bool) {
	i, ok := slices.BinarySearchFunc(s.Siblings, d, func(sib Sibling, d Dot) int { return compareDots(sib.Dot, d) })
	if !ok {
		return Value{}, false
	}
	return s.Siblings[i].Value, true
}

// Equal reports whether s and o hold the same context and siblings.
func (s Set) Equal(o Set) bool {
	return s.Context.Equal(o.Context) && slices.EqualFunc(s.Siblings, o.Siblings, func(a, b Sibling) bool {
		return a.Dot == b.Dot && a.Value.Equal(b.Value)
	})
}

// Clone returns a deep copy of s, Data included.
func (s Set) Clone() Set {
	out := Set{Context: slices.Clone(s.Context), Siblings: slices.Clone(s.Siblings)}
	for i := range out.Siblings {
		out.Siblings[i].Value.Data = bytes.Clone(out.Siblings[i].Value.Data)
	}
	return out
}

// Validate reports whether s is canonical and within the limits: ErrMalformed
// for a broken invariant (unsorted or duplicate entries or dots, a zero
// counter, an invalid actor, a sibling its context does not cover), ErrTooLarge
// past a limit. Sets made by this package from valid inputs always pass.
func (s Set) Validate() error {
	if err := s.Context.validate(); err != nil {
		return err
	}
	if len(s.Siblings) > MaxSiblings {
		return ErrTooLarge
	}
	for i, sib := range s.Siblings {
		if len(sib.Value.ContentType) > MaxContentTypeLen || uint64(len(sib.Value.Data)) > maxBinLen {
			return ErrTooLarge
		}
		if !sib.Dot.valid() || !s.Context.Covers(sib.Dot) {
			return ErrMalformed
		}
		if i > 0 && compareDots(s.Siblings[i-1].Dot, sib.Dot) >= 0 {
			return ErrMalformed
		}
	}
	return nil
}

// ResolveLWW picks the sibling with the greatest Timestamp, ties broken by the
// greater dot, so every replica picks the same one. The winner may be a
// tombstone. It returns false if s has no siblings.
//
// Last-write-wins silently discards concurrent writes and trusts wall clocks;
// it is an explicit opt-in for clients that ask for it, never the default. To
// apply it, write the winner's value with s.Context as the context.
func ResolveLWW(s Set) (Sibling, bool) {
	if len(s.Siblings) == 0 {
		return Sibling{}, false
	}
	return slices.MaxFunc(s.Siblings, func(a, b Sibling) int {
		if c := cmp.Compare(a.Value.Timestamp, b.Value.Timestamp); c != 0 {
			return c
		}
		return compareDots(a.Dot, b.Dot)
	}), true
}
