package replica

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
	// versions successive overwrites of a key by coordinator n1, encoded.
	a := vclock.Actor{Node: "n1", Epoch: 1}
	data := make([]byte, 100)
	encs := make([][]byte, versions)
	var cur vclock.Set
	for v := range encs {
		cur, _ = vclock.Update(cur, cur.Context, a, vclock.Value{Data: data, Timestamp: int64(v + 1)})
		var err error
		if encs[v], err = cur.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(25) // 50 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) - 1)
			k := keys[i%nkeys]
			s, err := vclock.DecodeSet(encs[(i/nkeys)%versions])
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := r.MergeSet(ctx, "", k, s, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
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
