package replica

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/cputime"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
)

// BenchmarkMintTTL is the local half of a client write at its coordinator
// (Mint superseding the local copy, as Redis SET does: one sibling per
// key) over 1,000 keys of an in-memory store, with and without a
// deadline: what TTL bookkeeping costs on the write path (the seventh
// sibling field, the format-3 envelope, the expiry check of every write).
func BenchmarkMintTTL(b *testing.B) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		name := "ttl=none"
		if ttl > 0 {
			name = "ttl=1h"
		}
		b.Run(name, func(b *testing.B) {
			r, keys := benchReplica(b, "n1", 1000)
			data := make([]byte, 100)
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v := vclock.Value{Data: data, Timestamp: time.Now().UnixNano()}
				if ttl > 0 {
					v.Expires = v.Timestamp + int64(ttl)
				}
				if _, err := r.MintSupersedingLocal(ctx, ring.Target{Node: "n1"}, keys[i%len(keys)], nil, v, false); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRecordTTL isolates the CPU and allocations of the record a
// write stores, with and without a deadline, from the store: build the set
// (vclock.Update), apply the write path's expiry check (vclock.Expire),
// encode the record (format 2 or 3) and parse its envelope as the reaper
// does.
func BenchmarkRecordTTL(b *testing.B) {
	for _, ttl := range []int64{0, int64(time.Hour)} {
		name := "ttl=none"
		if ttl > 0 {
			name = "ttl=1h"
		}
		b.Run(name, func(b *testing.B) {
			a := vclock.Actor{Node: "n1", Epoch: 7}
			data := make([]byte, 100)
			cur, _ := vclock.Update(vclock.Set{}, nil, a, vclock.Value{Data: data})
			now := time.Now().UnixNano()
			b.ReportAllocs()
			for b.Loop() {
				v := vclock.Value{Data: data, Timestamp: now}
				if ttl > 0 {
					v.Expires = now + ttl
				}
				next, _ := vclock.Update(cur, cur.Context, a, v)
				next, _ = vclock.Expire(next, now-int64(time.Second))
				rec, err := EncodeRecord(7, next)
				if err != nil {
					b.Fatal(err)
				}
				if h, err := ParseHeader(rec); err != nil || (h.DeadAt != 0) != (ttl > 0) {
					b.Fatalf("header %+v, %v", h, err)
				}
			}
		})
	}
}

// BenchmarkMergeSet is the replica half of a replicated write: a merge of
// the coordinator's newer single-sibling set into this replica's copy of
// the key (the steady state of SET overwrites: one sibling per key,
// superseded by the next write), from 50 goroutines over 1,000 keys of an
// in-memory store, so concurrent merges share group commits. The sets are
// made and encoded before the timer starts; each op decodes one as
// node's merge handler does.
func BenchmarkMergeSet(b *testing.B) {
	const nkeys, versions = 1000, 64
	r, keys := benchReplica(b, "n2", nkeys)
	encs := overwrites(b, versions)
	runMerges(b, func(i int) (ring.Key, []byte) { return keys[i%nkeys], encs[(i/nkeys)%versions] },
		func(k ring.Key, enc []byte) error {
			s, err := vclock.DecodeSet(enc)
			if err != nil {
				return err
			}
			_, err = r.MergeSet(b.Context(), "", k, s, false)
			return err
		})
}

// BenchmarkMergeSetOverwrite is a replica's half of a client overwrite
// as serveMerge runs it (wire.MethodMergeCheck), each merge superseding
// what is stored, as a SET's does: merge=decoded decodes the
// coordinator's set, then MergeSetChecked (serveMerge before
// MergeEncoded); merge=bytes checks it (vclock.CheckSet), then
// MergeEncoded. existing: over 1,000 keys the store holds, each op
// bringing a key's next version (b.N must stay below 256,000:
// -benchtime 100000x); new: each op a key the store does not hold yet (a
// fresh key's first write, which reads the store to find nothing).
func BenchmarkMergeSetOverwrite(b *testing.B) {
	const nkeys, versions = 1000, 256
	encs := overwrites(b, versions)
	for _, path := range []string{"decoded", "bytes"} {
		merge := checkedMerge
		if path == "bytes" {
			merge = encodedMerge
		}
		b.Run("keys=existing/merge="+path, func(b *testing.B) {
			if b.N > nkeys*versions {
				b.Fatalf("b.N %d > %d: set -benchtime", b.N, nkeys*versions)
			}
			r, keys := benchReplica(b, "n2", nkeys)
			runMerges(b, func(i int) (ring.Key, []byte) { return keys[i%nkeys], encs[i/nkeys] }, merge(b, r))
		})
		b.Run("keys=new/merge="+path, func(b *testing.B) {
			r, keys := benchReplica(b, "n2", b.N)
			runMerges(b, func(i int) (ring.Key, []byte) { return keys[i], encs[0] }, merge(b, r))
		})
	}
}

// checkedMerge decodes a set and merges it with MergeSetChecked.
func checkedMerge(b *testing.B, r *Replica) func(ring.Key, []byte) error {
	return func(k ring.Key, enc []byte) error {
		s, err := vclock.DecodeSet(enc)
		if err != nil {
			return err
		}
		_, _, err = r.MergeSetChecked(b.Context(), "", k, s, false)
		return err
	}
}

// encodedMerge checks a set and merges it with MergeEncoded, checked.
func encodedMerge(b *testing.B, r *Replica) func(ring.Key, []byte) error {
	return func(k ring.Key, enc []byte) error {
		e, err := vclock.CheckSet(enc)
		if err != nil {
			return err
		}
		_, _, err = r.MergeEncoded(b.Context(), "", k, e, false, true)
		return err
	}
}

// runMerges runs b.N merges from 50 goroutines: op i merges the set pick
// gives (encoded, as node's merge handler gets it) into pick's key.
func runMerges(b *testing.B, pick func(i int) (ring.Key, []byte), merge func(ring.Key, []byte) error) {
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(25) // 50 goroutines on 2 cores
	cpu0 := cputime.Process(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k, enc := pick(int(next.Add(1) - 1))
			if err := merge(k, enc); err != nil {
				b.Error(err)
				return
			}
		}
	})
	// CPU time per merge is steadier than wall time on a shared machine.
	b.ReportMetric(float64((cputime.Process(b)-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// overwrites returns n successive overwrites of a key by coordinator n1
// (100-byte values), encoded.
func overwrites(b *testing.B, n int) [][]byte {
	a := vclock.Actor{Node: "n1", Epoch: 1}
	data := make([]byte, 100)
	encs := make([][]byte, n)
	var cur vclock.Set
	for v := range encs {
		cur, _ = vclock.Update(cur, cur.Context, a, vclock.Value{Data: data, Timestamp: int64(v + 1)})
		var err error
		if encs[v], err = cur.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	return encs
}

// benchReplica returns the replica self on an in-memory store, and nkeys
// keys "user:<i>" spread over 64 partitions.
func benchReplica(b *testing.B, self string, nkeys int) (*Replica, []ring.Key) {
	st := storetest.Open(b)
	dir, err := OpenDir(st, self)
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(Config{Self: self, Store: st, Epochs: dir.Epochs})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]ring.Key, nkeys)
	for i := range keys {
		keys[i] = ring.Key{Partition: uint32(i % 64), Hash: uint64(i), Key: fmt.Appendf(nil, "user:%08d", i)}
	}
	return r, keys
}

// BenchmarkReadForOverwrite is a replica read as an overwrite's read
// makes it, both halves: the replica's ViewSet copying the set into a
// reply, and the coordinator's decode of it, over 1,000 keys holding one
// 100-byte sibling each. full is the plain read (wire.MethodRead), context
// the context-only one (wire.MethodReadContext).
func BenchmarkReadForOverwrite(b *testing.B) {
	r, keys := benchReplica(b, "n2", 1000)
	data := make([]byte, 100)
	for i, k := range keys {
		s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n1", Epoch: 1}, vclock.Value{Data: data, Timestamp: int64(i + 1)})
		if _, err := r.MergeSet(b.Context(), "", k, s, false); err != nil {
			b.Fatal(err)
		}
	}
	for _, ctxOnly := range []bool{false, true} {
		name := map[bool]string{false: "full", true: "context"}[ctxOnly]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var reply []byte
				found, err := r.ViewSet("", keys[i%len(keys)], ctxOnly, func(set []byte) error {
					reply = append([]byte(nil), set...) // the reply's copy (wire.ReadResponse)
					return nil
				})
				if err != nil || !found {
					b.Fatal(found, err)
				}
				s, err := vclock.DecodeSet(reply)
				if err != nil || len(s.Context) != 1 {
					b.Fatal(s, err)
				}
				i++
			}
		})
	}
}

// BenchmarkMergeRecord is what this package does per replicated write
// besides the store, single-threaded: a peer's set (one 100-byte value
// superseding the stored one) checked or decoded as serveMerge does,
// then the record built against the stored one (recordUpdate.AppendTo,
// digests included). merge=decoded: DecodeSet and MergeSetChecked's
// update; merge=bytes: CheckSet and MergeEncoded's.
func BenchmarkMergeRecord(b *testing.B) {
	encs := overwrites(b, 2)
	cur, err := vclock.DecodeSet(encs[0])
	if err != nil {
		b.Fatal(err)
	}
	old, err := EncodeRecord(3, cur)
	if err != nil {
		b.Fatal(err)
	}
	r, _ := benchReplica(b, "n2", 0)
	for _, path := range []string{"decoded", "bytes"} {
		b.Run("merge="+path, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, 512)
			for b.Loop() {
				u := newMerge(r, vclock.Set{}, true)
				if path == "bytes" {
					e, err := vclock.CheckSet(encs[1])
					if err != nil || !e.AsIs() || !r.fits(e) {
						b.Fatal(err)
					}
					u.raw, u.hasRaw = e, true
				} else {
					if u.in, err = vclock.DecodeSet(encs[1]); err != nil {
						b.Fatal(err)
					}
					if len(r.cfg.Siblings.Fit(u.in).Trimmed) == 0 {
						u.merge = &u.in
					}
				}
				u.expireBefore = r.expireBefore()
				if _, err := u.AppendTo(dst[:0], old, true); err != nil || !u.covered {
					b.Fatal(err)
				}
				freeMerge(u)
			}
		})
	}
}
