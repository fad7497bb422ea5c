package replica

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
)

// TestExpiryReplicas is vclock's expiry model (TestExpiryModel) run on
// real replicas: three Replicas on in-memory stores, each with its own
// skewed clock and the expiry margin, taking client writes with and without
// deadlines (Mint), delayed hints and read repairs (MergeSet of a set
// encoded earlier), anti-entropy between two replicas, the reaper's pass
// (Expire, then ConfirmTomb and Reap when every other replica holds the
// same set or nothing: the tombAck rule) and replicas that go down and
// rejoin with their old copy. At every step, a read through any replica up
// (ReadLocal answered as the coordinator answers, vclock.Expire with its
// clock) shows no value past its deadline plus the skew, and no replica
// holds the tombstone of a value whose deadline has not passed.
func TestExpiryReplicas(t *testing.T) {
	const (
		skew   = 10 * time.Second // S: clocks within ±S/2 of true time
		margin = 5 * time.Second  // M >= S/2
	)
	base := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	// The replicas and their stores serve every case (badger stores are
	// slow to open); each case has a key and clock offsets of its own.
	var trueNow atomic.Int64
	type rep struct {
		r    *Replica
		off  atomic.Int64
		down bool
	}
	reps := make([]*rep, 3)
	for i := range reps {
		st := storetest.Open(t)
		dir, err := OpenDir(st, fmt.Sprintf("n%d", i))
		if err != nil {
			t.Fatal(err)
		}
		rp := &rep{}
		rp.r, err = New(Config{Self: fmt.Sprintf("n%d", i), Store: st, Epochs: dir.Epochs, ExpiryMargin: margin,
			Now: func() time.Time { return time.Unix(0, trueNow.Load()+rp.off.Load()) }})
		if err != nil {
			t.Fatal(err)
		}
		reps[i] = rp
	}
	var cases int
	rapid.Check(t, func(rt *rapid.T) {
		cases++
		trueNow.Store(base)
		for _, r := range reps {
			r.off.Store(rapid.Int64Range(-int64(skew/2), int64(skew/2)).Draw(rt, "off"))
			r.down = false
		}
		k := ring.Key{Partition: 1, Hash: uint64(cases), Key: fmt.Appendf(nil, "k%d", cases)}
		ctx := t.Context()
		deadlines := map[vclock.Dot]int64{}
		type hint struct {
			to  int
			set vclock.Set
		}
		var hints []hint
		read := func(i int) vclock.Set {
			s, _, err := reps[i].r.ReadLocal("", k)
			if err != nil {
				rt.Fatal(err)
			}
			return s
		}
		merge := func(i int, s vclock.Set) {
			if _, err := reps[i].r.MergeSet(ctx, "", k, s, false); err != nil {
				rt.Fatal(err)
			}
		}
		up := func() []int {
			var out []int
			for i, r := range reps {
				if !r.down {
					out = append(out, i)
				}
			}
			return out
		}
		check := func(step int) {
			now := trueNow.Load()
			for i, r := range reps {
				if r.down {
					continue
				}
				s := read(i)
				answer, _ := vclock.Expire(s, now+r.off.Load())
				for _, sib := range answer.Live() {
					if d := deadlines[sib.Dot]; d != 0 && now >= d+int64(skew) {
						rt.Fatalf("step %d: replica %d shows %v at true time %d, past its deadline %d plus the skew", step, i, sib.Dot, now, d)
					}
				}
				for _, sib := range s.Siblings {
					if v := sib.Value; v.Deleted && v.Expires != 0 && now < v.Expires {
						rt.Fatalf("step %d: replica %d holds the tombstone of %v before its deadline", step, i, sib.Dot)
					}
				}
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for step := range steps {
			live := up()
			pick := func(label string) int { return rapid.SampledFrom(live).Draw(rt, label) }
			switch rapid.IntRange(0, 7).Draw(rt, "op") {
			case 0, 1: // a client write coordinated by one replica
				i := pick("coord")
				var vctx vclock.Vector
				if rapid.Bool().Draw(rt, "causal") {
					vctx = read(i).Context
				}
				v := vclock.Value{Data: []byte("v")}
				switch rapid.IntRange(0, 2).Draw(rt, "kind") {
				case 0:
					v = vclock.Value{Deleted: true}
				case 1:
				default:
					v.Expires = trueNow.Load() + reps[i].off.Load() + rapid.Int64Range(1, 40).Draw(rt, "ttl")*int64(time.Second)
				}
				m, err := reps[i].r.Mint(ctx, ring.Target{Node: ring.NodeID(fmt.Sprint("n", i))}, k, vctx, v, false)
				if err != nil {
					rt.Fatal(err)
				}
				deadlines[m.Dot] = v.Expires
				for _, j := range live {
					if j == i {
						continue
					}
					if rapid.Bool().Draw(rt, "hint") {
						hints = append(hints, hint{j, m.Set})
					} else {
						merge(j, m.Set)
					}
				}
			case 2:
				trueNow.Add(rapid.Int64Range(1, 30).Draw(rt, "advance") * int64(time.Second))
			case 3: // a hint or read repair, however late
				if len(hints) == 0 {
					continue
				}
				h := rapid.IntRange(0, len(hints)-1).Draw(rt, "hint#")
				if !reps[hints[h].to].down {
					merge(hints[h].to, hints[h].set)
					hints = append(hints[:h], hints[h+1:]...)
				}
			case 4: // anti-entropy between two replicas up
				i, j := pick("i"), pick("j")
				si, sj := read(i), read(j)
				merge(i, sj)
				merge(j, si)
			case 5: // the reaper's pass on one replica
				i := pick("reaper")
				if _, _, err := reps[i].r.Expire(ctx, k); err != nil {
					rt.Fatal(err)
				}
				rec, err := reps[i].r.Record(k)
				if err != nil || !rec.Found || rec.Tomb == TombLive {
					continue
				}
				dig := SetBytesDigest(rec.Set)
				held := true
				for j, o := range reps {
					if j == i {
						continue
					}
					if o.down {
						held = false
						break
					}
					orec, _ := o.r.Record(k)
					held = held && (!orec.Found || SetBytesDigest(orec.Set) == dig)
				}
				if !held {
					continue
				}
				if rec.Confirmed() {
					_, err = reps[i].r.Reap(ctx, k, dig)
				} else {
					_, err = reps[i].r.ConfirmTomb(ctx, k, dig, time.Unix(0, trueNow.Load()))
				}
				if err != nil {
					rt.Fatal(err)
				}
			case 6:
				if len(live) > 1 {
					reps[pick("down")].down = true
				}
			case 7: // a replica rejoins with its old copy and syncs with one
				var down []int
				for i, r := range reps {
					if r.down {
						down = append(down, i)
					}
				}
				if len(down) == 0 {
					continue
				}
				i := rapid.SampledFrom(down).Draw(rt, "rejoin")
				reps[i].down = false
				j := pick("peer")
				si, sj := read(i), read(j)
				merge(i, sj)
				merge(j, si)
			}
			check(step)
		}
	})
}
