package vclock

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// The expiry model: replicas with skewed clocks take writes with and
// without deadlines, deletes, clock advances, delayed deliveries (hints and
// read repairs: a set encoded at one moment and merged much later), pairwise
// anti-entropy, the expiry conversion a replica makes on its own (Expire
// with the margin, as package replica does on every write and the reaper on
// its pass), reaping of confirmed tombstones and replicas that go down and
// rejoin with their old copy. The deadline of every write is remembered
// apart from the sets, by dot. It must hold at every step:
//
//   - no read at any replica shows a value later than its deadline plus
//     the skew S (true time), whatever it merged, however old the copy;
//   - no replica turns a value into its tombstone before its deadline in
//     true time (the margin M >= S/2 covers a clock ahead by S/2);
//   - after everyone is up and has synced, the replicas are equal.
//
// True time is t; replica i's clock reads t + off[i], |off[i]| <= S/2, so
// two clocks differ by at most S.

const (
	expSkew   = 10 // S
	expMargin = 5  // M, the conversion margin: S/2 is enough
)

type expReplica struct {
	actor Actor
	off   int64
	set   Set
	down  bool
}

type expSim struct {
	t         *rapid.T
	now       int64
	reps      []*expReplica
	deadlines map[Dot]int64 // every write's deadline (0: none), by dot
	inflight  [][]byte      // encoded sets not yet delivered (hints, repairs)
	inflTo    []int
}

func (s *expSim) clock(i int) int64 { return s.now + s.reps[i].off }

// store is what a replica does on every write of its copy: it converts
// what expired before its clock minus the margin.
func (s *expSim) store(i int, next Set) {
	next, _ = Expire(next, s.clock(i)-expMargin)
	s.reps[i].set = next
}

func (s *expSim) check(what string) {
	for i, r := range s.reps {
		if r.down {
			continue
		}
		for _, sib := range r.set.LiveAt(s.clock(i)) {
			if d := s.deadlines[sib.Dot]; d != 0 && s.now >= d+expSkew {
				s.t.Fatalf("%s: replica %d (clock %d, true time %d) shows %v live past its deadline %d plus skew %d",
					what, i, s.clock(i), s.now, sib.Dot, d, expSkew)
			}
		}
		for _, sib := range r.set.Siblings {
			if v := sib.Value; v.Deleted && v.Expires != 0 {
				if d := s.deadlines[sib.Dot]; d != v.Expires {
					s.t.Fatalf("%s: %v carries deadline %d, written with %d", what, sib.Dot, v.Expires, d)
				}
				if s.now < v.Expires {
					s.t.Fatalf("%s: replica %d turned %v into a tombstone at true time %d, before its deadline %d",
						what, i, sib.Dot, s.now, v.Expires)
				}
			}
		}
	}
}

func (s *expSim) up() []int {
	var out []int
	for i, r := range s.reps {
		if !r.down {
			out = append(out, i)
		}
	}
	return out
}

func (s *expSim) step(t *rapid.T) {
	up := s.up()
	pick := func(label string) int { return rapid.SampledFrom(up).Draw(t, label) }
	switch op := rapid.IntRange(0, 8).Draw(t, "op"); op {
	case 0, 1: // a write at a coordinator, with its clock's deadline
		i := pick("coord")
		r := s.reps[i]
		var ctx Vector
		if rapid.Bool().Draw(t, "causal") {
			ctx = r.set.Context
		}
		v := Value{Data: []byte(fmt.Sprint(s.now)), Timestamp: s.clock(i)}
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			v = Value{Deleted: true, Timestamp: s.clock(i)}
		case 1:
		default:
			v.Expires = s.clock(i) + rapid.Int64Range(1, 40).Draw(t, "ttl")
		}
		next, dot := Update(r.set, ctx, r.actor, v)
		s.deadlines[dot] = v.Expires
		s.store(i, next)
		for _, j := range up { // replicate, or leave a hint for later
			if j != i {
				s.send(i, j, t)
			}
		}
	case 2: // time passes
		s.now += rapid.Int64Range(1, 30).Draw(t, "advance")
	case 3: // deliver a delayed set (hint or read repair), however old
		if len(s.inflight) == 0 {
			return
		}
		k := rapid.IntRange(0, len(s.inflight)-1).Draw(t, "msg")
		to := s.inflTo[k]
		if s.reps[to].down {
			return
		}
		in, err := DecodeSet(s.inflight[k])
		if err != nil {
			t.Fatal(err)
		}
		s.inflight = append(s.inflight[:k], s.inflight[k+1:]...)
		s.inflTo = append(s.inflTo[:k], s.inflTo[k+1:]...)
		s.store(to, Sync(s.reps[to].set, in))
	case 4: // anti-entropy between two replicas that are up
		i, j := pick("i"), pick("j")
		m := Sync(s.reps[i].set, s.reps[j].set)
		s.store(i, m)
		s.store(j, m)
	case 5: // the reaper's conversion pass on one replica
		i := pick("reaper")
		s.store(i, s.reps[i].set)
	case 6: // reap: a replica whose copy is all tombstones, held alike by
		// every other replica or by none (tombAck), deletes it
		i := pick("reap")
		cur := s.reps[i].set
		if len(cur.Siblings) == 0 || !cur.IsDeleted() {
			return
		}
		for j, r := range s.reps {
			if j != i && (r.down || len(r.set.Siblings) > 0 && !r.set.Equal(cur)) {
				return
			}
		}
		s.reps[i].set = Set{}
		// The KV679 rule (package doc): with its copy gone, the replica's
		// next write must be under a fresh epoch, or it would mint a dot
		// the others may have seen (package replica does this).
		s.reps[i].actor.Epoch++
	case 7: // a replica goes down, keeping its copy
		if len(up) > 1 {
			s.reps[pick("down")].down = true
		}
	case 8: // a replica comes back with its old copy and syncs with one peer
		var down []int
		for i, r := range s.reps {
			if r.down {
				down = append(down, i)
			}
		}
		if len(down) == 0 {
			return
		}
		i := rapid.SampledFrom(down).Draw(t, "rejoin")
		s.reps[i].down = false
		j := pick("peer")
		m := Sync(s.reps[i].set, s.reps[j].set)
		s.store(i, m)
		s.store(j, m)
	}
}

func (s *expSim) send(from, to int, t *rapid.T) {
	if rapid.Bool().Draw(t, "delay") {
		b, err := s.reps[from].set.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		s.inflight = append(s.inflight, b)
		s.inflTo = append(s.inflTo, to)
		return
	}
	s.store(to, Sync(s.reps[to].set, s.reps[from].set))
}

func TestExpiryModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := &expSim{t: t, now: 1000, deadlines: map[Dot]int64{}}
		for i := range 3 {
			s.reps = append(s.reps, &expReplica{actor: act(fmt.Sprintf("n%d", i), 1),
				off: rapid.Int64Range(-expSkew/2, expSkew/2).Draw(t, "off")})
		}
		steps := rapid.IntRange(1, 80).Draw(t, "steps")
		for k := range steps {
			s.step(t)
			s.check(fmt.Sprintf("step %d", k))
		}
		// Everyone back, every hint delivered, anti-entropy all round.
		for _, r := range s.reps {
			r.down = false
		}
		for k, b := range s.inflight {
			in, err := DecodeSet(b)
			if err != nil {
				t.Fatal(err)
			}
			to := s.inflTo[k]
			s.store(to, Sync(s.reps[to].set, in))
		}
		for range 2 {
			for i := range s.reps {
				for j := range s.reps {
					m := Sync(s.reps[i].set, s.reps[j].set)
					s.store(i, m)
					s.store(j, m)
				}
			}
		}
		s.check("converged")
		// Long after every deadline, every replica reads only values that
		// never expire, and the copies agree once each converted.
		s.now += 1000
		var first Set
		for i, r := range s.reps {
			s.store(i, r.set)
			for _, sib := range r.set.LiveAt(s.clock(i)) {
				if s.deadlines[sib.Dot] != 0 {
					t.Fatalf("replica %d still shows %v long after its deadline", i, sib.Dot)
				}
			}
			if i == 0 {
				first = r.set
			} else if !r.set.Equal(first) {
				t.Fatalf("replicas differ after syncing:\n%+v\n%+v", first, r.set)
			}
		}
	})
}
