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
	// Expires is the value's deadline in Unix nanoseconds (0: never),
	// stamped by the coordinator of the write and carried with the value
	// to every replica, hint and repair. From the deadline on the value
	// reads as a tombstone (Expired, Expire); causality never reads it.
	// 64 bits of nanoseconds last until the year 2262.
	Expires int64
}

// Equal reports whether v and o are the same value (nil Data equals empty).
func (v Value) Equal(o Value) bool {
	return v.ContentType == o.ContentType && v.Deleted == o.Deleted &&
		v.Timestamp == o.Timestamp && v.Expires == o.Expires && bytes.Equal(v.Data, o.Data)
}

// Expired reports whether v is a live value whose deadline is at or before
// now (Unix nanoseconds).
func (v Value) Expired(now int64) bool {
	return !v.Deleted && v.Expires != 0 && v.Expires <= now
}

// Dead reports whether v reads as deleted at now: a tombstone, or expired.
func (v Value) Dead(now int64) bool { return v.Deleted || v.Expired(now) }

// expiredForm is the tombstone an expired v turns into: same dot, no data,
// Timestamp and Expires kept (so it still says when and why it died).
func (v Value) expiredForm() Value {
	return Value{Deleted: true, Timestamp: v.Timestamp, Expires: v.Expires}
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

	// The result's sizes, exactly, so that a small one takes a single
	// allocation (newSetSlices). Past two stored siblings the count is
	// not worth its second Covers per sibling: such a set takes two.
	nsib := len(s.Siblings) + 1
	if len(s.Siblings) <= 2 {
		nsib = 1
		for _, sib := range s.Siblings {
			if !ctx.Covers(sib.Dot) {
				nsib++
			}
		}
	}
	var out Set
	out.Context, out.Siblings, _ = newSetSlices(mergedLen(s.Context, ctx, a), nsib, 0)
	out.Context = mergeInto(out.Context, s.Context, ctx)
	if i, ok := out.Context.find(a); ok {
		out.Context[i].Counter = dot.Counter
	} else {
		out.Context = slices.Insert(out.Context, i, Entry{Actor: a, Counter: dot.Counter})
	}

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
			// the same, except that one side may have turned the value
			// into its tombstone after its deadline (Expire). The
			// tombstone wins, whichever side holds it, so Sync stays
			// commutative and an expired value never comes back.
			if b.Siblings[j].Value.Deleted && !a.Siblings[i].Value.Deleted {
				out.Siblings = append(out.Siblings, b.Siblings[j])
			} else {
				out.Siblings = append(out.Siblings, a.Siblings[i])
			}
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

// LiveAt returns the siblings that read as live at now (Unix nanoseconds):
// neither tombstones nor expired. A new slice, nil if none.
func (s Set) LiveAt(now int64) []Sibling {
	var live []Sibling
	for _, sib := range s.Siblings {
		if !sib.Value.Dead(now) {
			live = append(live, sib)
		}
	}
	return live
}

// IsDeletedAt reports whether the key reads as not found at now: every
// sibling is a tombstone or expired.
func (s Set) IsDeletedAt(now int64) bool {
	for _, sib := range s.Siblings {
		if !sib.Value.Dead(now) {
			return false
		}
	}
	return true
}

// Expire returns s with every sibling expired at now (Unix nanoseconds)
// turned into its tombstone, under the same dot: what a read answers and
// what a replica stores once the deadline has passed. The context is
// unchanged, so a write with it supersedes the tombstones as it would have
// the values, and Sync with a copy still holding a value keeps the
// tombstone. changed is false, and s is returned as is, when nothing
// expired.
func Expire(s Set, now int64) (out Set, changed bool) {
	for i, sib := range s.Siblings {
		if !sib.Value.Expired(now) {
			continue
		}
		if !changed {
			out = Set{Context: s.Context, Siblings: slices.Clone(s.Siblings)}
			changed = true
		}
		out.Siblings[i].Value = sib.Value.expiredForm()
	}
	if !changed {
		return s, false
	}
	return out, true
}

// DeadAt returns the time (Unix nanoseconds) from which no sibling of s
// reads as live: the latest deadline of its live siblings. ok is false when
// some live sibling never expires, and when none is live (the set is
// already all tombstones).
func (s Set) DeadAt() (at int64, ok bool) {
	for _, sib := range s.Siblings {
		switch {
		case sib.Value.Deleted:
		case sib.Value.Expires == 0:
			return 0, false
		default:
			at = max(at, sib.Value.Expires)
		}
	}
	return at, at != 0
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
		if !sib.Dot.valid() || !s.Context.Covers(sib.Dot) || sib.Value.Expires < 0 {
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
