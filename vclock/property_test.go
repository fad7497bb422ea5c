package vclock

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The model: writes are numbered; each replica knows the set of writes it has
// seen, and each write knows the set of writes its client's context had seen
// (obs). Nothing in the model uses vectors or dots. The truth it predicts for
// any replica: a write is a sibling exactly when the replica has seen it and
// has seen no write whose obs contains it. DVVSets must match this at every
// step, while holding one counter per actor instead of the sets.

type ids map[int]bool

func union(a, b ids) ids {
	out := maps.Clone(a)
	if out == nil {
		out = ids{}
	}
	maps.Copy(out, b)
	return out
}

type simWrite struct {
	dot Dot
	val Value
	obs ids // writes the client's context had seen
}

type simReplica struct {
	actor Actor
	set   Set
	seen  ids
}

type simMsg struct {
	to   int
	enc  []byte // sets travel encoded, so the codec is in every delivery
	seen ids
}

type simRead struct {
	ctx  Vector
	seen ids
}

type sim struct {
	t      *rapid.T
	reps   []*simReplica
	writes []simWrite
	byDot  map[Dot]int
	reads  []simRead
	msgs   []simMsg
	pool   []Set // every state seen, for the merge-algebra checks
}

func newSim(t *rapid.T, replicas int) *sim {
	s := &sim{t: t, byDot: map[Dot]int{}}
	for i := range replicas {
		s.reps = append(s.reps, &simReplica{actor: act(fmt.Sprintf("n%d", i), 1), seen: ids{}})
	}
	return s
}

// truth returns the writes that must be siblings given seen.
func (s *sim) truth(seen ids) ids {
	superseded := ids{}
	for w := range seen {
		maps.Copy(superseded, s.writes[w].obs)
	}
	live := ids{}
	for w := range seen {
		if !superseded[w] {
			live[w] = true
		}
	}
	return live
}

// check compares a set with the model's view of it.
func (s *sim) check(what string, set Set, seen ids) {
	t := s.t
	t.Helper()
	if err := set.Validate(); err != nil {
		t.Fatalf("%s: invalid set: %v", what, err)
	}
	for w, wr := range s.writes {
		if set.Context.Covers(wr.dot) != seen[w] {
			t.Fatalf("%s: context %v covers write %d (%v) = %v, model says %v", what, set.Context, w, wr.dot, !seen[w], seen[w])
		}
	}
	want := s.truth(seen)
	got := ids{}
	for _, sib := range set.Siblings {
		w, ok := s.byDot[sib.Dot]
		if !ok {
			t.Fatalf("%s: sibling with unknown dot %v", what, sib.Dot)
		}
		if !sib.Value.Equal(s.writes[w].val) {
			t.Fatalf("%s: sibling %v holds the value of another write", what, sib.Dot)
		}
		got[w] = true
	}
	if !maps.Equal(got, want) {
		t.Fatalf("%s: siblings are writes %v, model says %v", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	// Siblings never outnumber the writes that are pairwise concurrent.
	for _, a := range set.Siblings {
		for _, b := range set.Siblings {
			if s.writes[s.byDot[a.Dot]].obs[s.byDot[b.Dot]] {
				t.Fatalf("%s: sibling %v causally follows sibling %v", what, a.Dot, b.Dot)
			}
		}
	}
}

func (s *sim) checkAll() {
	for i, r := range s.reps {
		s.check(fmt.Sprintf("replica %d", i), r.set, r.seen)
	}
}

func (s *sim) send(from *simReplica, to int) {
	enc, err := from.set.MarshalBinary()
	if err != nil {
		s.t.Fatalf("encode: %v", err)
	}
	s.msgs = append(s.msgs, simMsg{to: to, enc: enc, seen: maps.Clone(from.seen)})
}

func (s *sim) receive(m simMsg) {
	in, err := DecodeSet(m.enc)
	if err != nil {
		s.t.Fatalf("decode: %v", err)
	}
	r := s.reps[m.to]
	r.set = Sync(r.set, in)
	r.seen = union(r.seen, m.seen)
	s.pool = append(s.pool, in, r.set)
}

// write runs one client write through replica i with ctx (nil: blind).
func (s *sim) write(i int, rd simRead, blind bool) {
	t := s.t
	r := s.reps[i]
	id := len(s.writes)
	v := Value{Data: fmt.Appendf(nil, "w%d", id), ContentType: "text/plain", Timestamp: int64(id % 7)}
	if rapid.IntRange(0, 9).Draw(t, "tombstone") == 0 {
		v = Value{Deleted: true, Timestamp: int64(id)}
	}
	ctx := rd.ctx
	if blind {
		ctx, rd.seen = nil, nil
	}
	next, dot := Update(r.set, ctx, r.actor, v)

	// A dot names one write: it was never minted before and no replica,
	// message or client has seen it (KV679 is the failure of this).
	if _, dup := s.byDot[dot]; dup {
		t.Fatalf("dot %v minted twice", dot)
	}
	for j, o := range s.reps {
		if o.set.Context.Covers(dot) {
			t.Fatalf("new dot %v already seen by replica %d", dot, j)
		}
	}
	for _, old := range s.reads {
		if old.ctx.Covers(dot) {
			t.Fatalf("new dot %v already seen by a client context", dot)
		}
	}
	if blind {
		if len(next.Siblings) != len(r.set.Siblings)+1 {
			t.Fatalf("blind write dropped a sibling: %d -> %d", len(r.set.Siblings), len(next.Siblings))
		}
	}

	s.writes = append(s.writes, simWrite{dot: dot, val: v, obs: maps.Clone(rd.seen)})
	s.byDot[dot] = id
	r.set = next
	r.seen = union(r.seen, rd.seen)
	r.seen[id] = true
	s.pool = append(s.pool, next)
	for j := range s.reps {
		if j != i && rapid.Bool().Draw(t, "replicate") {
			s.send(r, j)
		}
	}
}

// read merges the sets of the replicas in mask, as a coordinator merges R
// answers, and hands out the context.
func (s *sim) read(mask int) simRead {
	var set Set
	seen := ids{}
	for i, r := range s.reps {
		if mask&(1<<i) != 0 {
			set = Sync(set, r.set)
			seen = union(seen, r.seen)
		}
	}
	s.check("read", set, seen)
	ctx, err := DecodeContext(EncodeContext(set.Context))
	if err != nil || !ctx.Equal(set.Context) {
		s.t.Fatalf("context round trip: %v", err)
	}
	return simRead{ctx: ctx, seen: seen}
}

func (s *sim) step(t *rapid.T) {
	n := len(s.reps)
	switch rapid.IntRange(0, 9).Draw(t, "action") {
	case 0, 1, 2: // write with the context of some earlier read, or none
		i := rapid.IntRange(0, n-1).Draw(t, "coordinator")
		if len(s.reads) == 0 || rapid.IntRange(0, 3).Draw(t, "blind") == 0 {
			s.write(i, simRead{}, true)
			return
		}
		s.write(i, s.reads[rapid.IntRange(0, len(s.reads)-1).Draw(t, "read")], false)
	case 3: // read-modify-write through one replica: the result is one value
		i := rapid.IntRange(0, n-1).Draw(t, "coordinator")
		s.write(i, s.read(1<<i), false)
		if got := len(s.reps[i].set.Siblings); got != 1 {
			t.Fatalf("a write with a fresh read's context left %d siblings", got)
		}
	case 4:
		mask := rapid.IntRange(1, 1<<n-1).Draw(t, "replicas")
		s.reads = append(s.reads, s.read(mask))
	case 5, 6: // deliver a message, in any order, maybe more than once
		if len(s.msgs) == 0 {
			return
		}
		k := rapid.IntRange(0, len(s.msgs)-1).Draw(t, "message")
		m := s.msgs[k]
		if !rapid.Bool().Draw(t, "duplicate") {
			s.msgs = slices.Delete(s.msgs, k, k+1)
		}
		s.receive(m)
	case 7: // lose a message
		if len(s.msgs) > 0 {
			k := rapid.IntRange(0, len(s.msgs)-1).Draw(t, "drop")
			s.msgs = slices.Delete(s.msgs, k, k+1)
		}
	case 8: // anti-entropy: one replica pulls another's set
		i := rapid.IntRange(0, n-1).Draw(t, "from")
		j := rapid.IntRange(0, n-1).Draw(t, "to")
		s.send(s.reps[i], j)
		s.receive(s.msgs[len(s.msgs)-1])
		s.msgs = s.msgs[:len(s.msgs)-1]
	case 9:
		if rapid.IntRange(0, 3).Draw(t, "wipe") == 0 {
			// A replica loses its disk and comes back under a new epoch.
			r := s.reps[rapid.IntRange(0, n-1).Draw(t, "wiped")]
			r.set, r.seen, r.actor = Set{}, ids{}, r.actor.NextEpoch()
			return
		}
		s.checkAlgebra(t)
	}
}

// checkAlgebra checks the merge laws on sets drawn from every state seen.
func (s *sim) checkAlgebra(t *rapid.T) {
	if len(s.pool) == 0 {
		return
	}
	pick := func(label string) Set { return s.pool[rapid.IntRange(0, len(s.pool)-1).Draw(t, label)] }
	a, b, c := pick("a"), pick("b"), pick("c")
	ab, ba := Sync(a, b), Sync(b, a)
	if !ab.Equal(ba) {
		t.Fatalf("Sync not commutative:\n%v\n%v", ab, ba)
	}
	e1, _ := ab.MarshalBinary()
	e2, _ := ba.MarshalBinary()
	if !bytes.Equal(e1, e2) || ab.Digest() != ba.Digest() {
		t.Fatalf("equal sets encode differently")
	}
	if l, r := Sync(a, Sync(b, c)), Sync(ab, c); !l.Equal(r) {
		t.Fatalf("Sync not associative:\n%v\n%v", l, r)
	}
	if !Sync(a, a).Equal(a) || !Sync(a, Set{}).Equal(a) || !Sync(Set{}, a).Equal(a) {
		t.Fatalf("Sync not idempotent or zero not its identity")
	}
	if !Sync(ab, b).Equal(ab) {
		t.Fatalf("merging in a part again changed the result")
	}
	// Supersedes decides from a's encoding alone what Sync would make of
	// b over a: when it says b replaces a outright, Sync gives b.
	ea, _ := a.MarshalBinary()
	if ok, err := Supersedes(b, ea); err != nil {
		t.Fatalf("Supersedes on a valid encoding: %v", err)
	} else if ok && !Sync(a, b).Equal(b) {
		t.Fatalf("Supersedes said %v replaces %v, but Sync gives %v", b, a, Sync(a, b))
	}
	// An overwrite's context-only read answers with exactly the context a
	// full read decodes, and no sibling.
	co, err := AppendContextOnly([]byte("prefix"), ea)
	if err != nil || string(co[:6]) != "prefix" {
		t.Fatalf("AppendContextOnly(%v): %q, %v", a, co, err)
	}
	if got, err := DecodeSet(co[6:]); err != nil || !got.Equal(Set{Context: a.Context}) {
		t.Fatalf("context-only read of %v decodes to %v, %v", a, got, err)
	}
}

// converge delivers everything in flight, then runs full anti-entropy.
func (s *sim) converge() {
	for len(s.msgs) > 0 {
		m := s.msgs[0]
		s.msgs = s.msgs[1:]
		s.receive(m)
	}
	for _, r := range s.reps {
		s.send(r, 0)
		s.receive(s.msgs[0])
		s.msgs = s.msgs[:0]
	}
	for j := 1; j < len(s.reps); j++ {
		s.send(s.reps[0], j)
		s.receive(s.msgs[0])
		s.msgs = s.msgs[:0]
	}
}

// TestDVVSetModel drives random schedules (writes through several
// coordinators with stale, fresh or no contexts; reads merging any replicas;
// lost, duplicated and reordered deliveries; anti-entropy; disk wipes) and
// checks every replica against the model after every step, then checks that
// replicas that exchanged everything are equal and hold exactly the writes no
// other write superseded.
func TestDVVSetModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t, rapid.IntRange(2, 4).Draw(t, "replicas"))
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for range steps {
			s.step(t)
			s.checkAll()
		}
		s.converge()
		s.checkAll()
		for range 5 {
			s.checkAlgebra(t)
		}
		first, _ := s.reps[0].set.MarshalBinary()
		all := ids{}
		for i, r := range s.reps {
			enc, _ := r.set.MarshalBinary()
			if !bytes.Equal(enc, first) || r.set.Digest() != s.reps[0].set.Digest() {
				t.Fatalf("replica %d differs after full exchange:\n%v\n%v", i, r.set, s.reps[0].set)
			}
			all = union(all, r.seen)
		}
		// After a full exchange the survivors are the writes that no write
		// superseded, among those not lost with a wiped disk before they
		// were copied anywhere.
		for w := range s.writes {
			if !all[w] {
				continue
			}
			_, held := s.reps[0].set.Find(s.writes[w].dot)
			superseded := false
			for o, ow := range s.writes {
				superseded = superseded || all[o] && ow.obs[w]
			}
			if held == superseded {
				t.Fatalf("write %d: held %v, superseded %v", w, held, superseded)
			}
		}
	})
}
