package store_test

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/storetest"
)

// modelKey is a record address in the naive model.
type modelKey struct {
	p    uint32
	hash uint64
	key  string
}

func cmpKey(a, b modelKey) int {
	return cmp.Or(cmp.Compare(a.p, b.p), cmp.Compare(a.hash, b.hash), cmp.Compare(a.key, b.key))
}

// TestMatchesModel runs random operations against the store and against
// a map, and compares every read. Each check gets partitions and a hint
// target of its own in one shared store, so no state leaks between checks.
func TestMatchesModel(t *testing.T) {
	// A clock that ticks once per call: UpdateHint reads it exactly once,
	// so the model knows each hint's creation time.
	var ticks atomic.Int64
	o := storetest.Options(t)
	o.InMemory = true
	o.Now = func() time.Time { return time.Unix(0, ticks.Add(1)) }
	s, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		base := uint32(check * 4)
		target := fmt.Sprintf("t%d", check)
		records := map[modelKey]string{}
		hints := map[modelKey]string{}
		created := map[modelKey]int64{}

		genKey := func(rt *rapid.T) modelKey {
			return modelKey{
				p:    base + rapid.Uint32Range(0, 3).Draw(rt, "p"),
				hash: rapid.SampledFrom([]uint64{0, 1, 2, 1 << 40, math.MaxUint64}).Draw(rt, "hash"),
				key:  rapid.SampledFrom([]string{"", "a", "b", "ab"}).Draw(rt, "key"),
			}
		}
		sk := func(k modelKey) store.Key { return store.Key{Partition: k.p, Hash: k.hash, Key: []byte(k.key)} }

		rt.Repeat(map[string]func(*rapid.T){
			"update": func(rt *rapid.T) {
				k := genKey(rt)
				action := rapid.IntRange(0, 2).Draw(rt, "action") // 0 set, 1 delete, 2 no change
				val := rapid.StringN(0, 8, -1).Draw(rt, "val")
				prev, had := records[k]
				old, nv, err := s.Update(rt.Context(), sk(k), rapid.Bool().Draw(rt, "durable"), func(o []byte, found bool) ([]byte, error) {
					if found != had || string(o) != prev {
						rt.Fatalf("fn saw %q,%v; model has %q,%v", o, found, prev, had)
					}
					switch action {
					case 0:
						return []byte(val), nil
					case 1:
						return nil, nil
					}
					return nil, store.ErrNoChange
				})
				if err != nil {
					rt.Fatal(err)
				}
				if (old != nil) != had || string(old) != prev {
					rt.Fatalf("old = %q, model %q,%v", old, prev, had)
				}
				switch action {
				case 0:
					records[k] = val
					if string(nv) != val {
						rt.Fatalf("new = %q, want %q", nv, val)
					}
				case 1:
					delete(records, k)
					if nv != nil {
						rt.Fatalf("new = %q after delete", nv)
					}
				}
			},
			"get": func(rt *rapid.T) {
				k := genKey(rt)
				got, err := s.Get(sk(k))
				want, ok := records[k]
				if ok != (err == nil) || (err != nil && !errors.Is(err, store.ErrNotFound)) || string(got) != want {
					rt.Fatalf("get %+v = %q, %v; model %q,%v", k, got, err, want, ok)
				}
			},
			"scan": func(rt *rapid.T) {
				p := base + rapid.Uint32Range(0, 3).Draw(rt, "p")
				from := rapid.SampledFrom([]uint64{0, 1, 2, 3, 1 << 40, math.MaxUint64}).Draw(rt, "from")
				to := rapid.SampledFrom([]uint64{0, 1, 2, 3, 1 << 40, math.MaxUint64}).Draw(rt, "to")
				var want []modelKey
				for _, k := range slices.SortedFunc(maps.Keys(records), cmpKey) {
					if k.p == p && k.hash >= from && k.hash <= to {
						want = append(want, k)
					}
				}
				var got []modelKey
				err := s.Scan(p, from, to, func(k store.Key, v []byte) error {
					mk := modelKey{k.Partition, k.Hash, string(k.Key)}
					if records[mk] != string(v) {
						rt.Fatalf("scan value of %+v = %q, model %q", mk, v, records[mk])
					}
					got = append(got, mk)
					return nil
				})
				if err != nil || !slices.Equal(got, want) {
					rt.Fatalf("scan(%d, %d, %d) = %v, %v; model %v", p, from, to, got, err, want)
				}
			},
			"count": func(rt *rapid.T) {
				p := base + rapid.Uint32Range(0, 3).Draw(rt, "p")
				want := 0
				for k := range records {
					if k.p == p {
						want++
					}
				}
				if got, err := s.Count(p); err != nil || got != want {
					rt.Fatalf("count(%d) = %d, %v; model %d", p, got, err, want)
				}
			},
			"partitions": func(rt *rapid.T) {
				var want []uint32
				for k := range records {
					want = append(want, k.p)
				}
				slices.Sort(want)
				want = slices.Compact(want)
				all, err := s.Partitions()
				var got []uint32
				for _, p := range all {
					if p >= base && p < base+4 {
						got = append(got, p)
					}
				}
				if err != nil || !slices.Equal(got, want) {
					rt.Fatalf("partitions = %v, %v; model %v", got, err, want)
				}
			},
			"drop": func(rt *rapid.T) {
				if rapid.IntRange(0, 9).Draw(rt, "rarely") != 0 {
					rt.Skip("drops are slow; keep them rare")
				}
				p := base + rapid.Uint32Range(0, 3).Draw(rt, "p")
				if err := s.DropPartition(p); err != nil {
					rt.Fatal(err)
				}
				for k := range records {
					if k.p == p {
						delete(records, k)
					}
				}
			},
			"hint": func(rt *rapid.T) {
				k := genKey(rt)
				val := rapid.StringN(0, 8, -1).Draw(rt, "val")
				del := rapid.IntRange(0, 3).Draw(rt, "del") == 0
				_, _, err := s.UpdateHint(rt.Context(), target, sk(k), false, func(o []byte, found bool) ([]byte, error) {
					if prev, ok := hints[k]; ok != found || prev != string(o) {
						rt.Fatalf("hint fn saw %q,%v; model %q,%v", o, found, prev, ok)
					}
					if del {
						return nil, nil
					}
					return append(append([]byte{}, o...), val...), nil // never nil: nil deletes
				})
				if err != nil {
					rt.Fatal(err)
				}
				if del {
					delete(hints, k)
					delete(created, k)
				} else {
					if _, ok := hints[k]; !ok {
						created[k] = ticks.Load()
					}
					hints[k] += val
				}
			},
			"deleteHintIf": func(rt *rapid.T) {
				k := genKey(rt)
				expect := hints[k]
				if rapid.Bool().Draw(rt, "stale") {
					expect += "x"
				}
				ok, err := s.DeleteHintIf(rt.Context(), target, sk(k), []byte(expect))
				cur, had := hints[k]
				if wantOK := had && cur == expect; err != nil || ok != wantOK {
					rt.Fatalf("DeleteHintIf = %v, %v; want %v", ok, err, wantOK)
				}
				if ok {
					delete(hints, k)
					delete(created, k)
				}
			},
			"hints": func(rt *rapid.T) {
				got := map[modelKey]string{}
				var order []modelKey
				err := s.ScanHints(target, func(k store.Key, v []byte) error {
					mk := modelKey{k.Partition, k.Hash, string(k.Key)}
					got[mk] = string(v)
					order = append(order, mk)
					return nil
				})
				if err != nil || !maps.Equal(got, hints) || !slices.IsSortedFunc(order, cmpKey) {
					rt.Fatalf("ScanHints = %v (order %v), %v; model %v", got, order, err, hints)
				}
				// Bytes: badger key ('h', length, target, 12, key) plus value
				// (9-byte header, hint bytes).
				var bytes int64
				oldest := int64(math.MaxInt64)
				for k, v := range hints {
					bytes += int64(2+len(target)+12+len(k.key)) + int64(9+len(v))
					oldest = min(oldest, created[k])
				}
				st := s.HintStats(target)
				if st.Count != len(hints) || st.Bytes != bytes || (len(hints) > 0 && st.Oldest.UnixNano() != oldest) {
					rt.Fatalf("HintStats = %+v (oldest %d); model count %d, bytes %d, oldest %d", st, st.Oldest.UnixNano(), len(hints), bytes, oldest)
				}
			},
		})
	})
}
