package store_test

import (
	"context"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/store"
)

func keyOf(s string) store.Key {
	h := xxhash.Sum64String(s)
	return store.Key{Partition: uint32(h >> 56), Hash: h, Key: []byte(s)} // 256 partitions
}

// A read-modify-write: the function sees the current value and returns the
// merged one. Concurrent writers of the key are serialized; none is lost.
func ExampleStore_Update() {
	o := store.DefaultOptions("")
	o.InMemory = true
	s, err := store.Open(o)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	k := keyOf("user:42")
	for _, v := range []string{"a", "b"} {
		_, _, err := s.Update(ctx, k, false, func(old []byte, found bool) ([]byte, error) {
			return append(append([]byte{}, old...), v...), nil // a stand-in for a sibling-set merge
		})
		if err != nil {
			panic(err)
		}
	}
	v, _ := s.Get(k)
	fmt.Println(string(v))
	// Output: ab
}

// A Merkle bucket is a contiguous hash range of one partition.
func ExampleStore_Scan() {
	o := store.DefaultOptions("")
	o.InMemory = true
	s, _ := store.Open(o)
	defer s.Close()
	ctx := context.Background()
	for i, h := range []uint64{10, 1 << 62, 3 << 62} {
		k := store.Key{Partition: 1, Hash: h, Key: fmt.Appendf(nil, "k%d", i)}
		s.Update(ctx, k, false, func([]byte, bool) ([]byte, error) { return []byte("v"), nil })
	}
	const buckets = 4
	width := uint64(math.MaxUint64/buckets) + 1
	for b := range uint64(buckets) {
		n := 0
		s.Scan(1, b*width, b*width+width-1, func(store.Key, []byte) error { n++; return nil })
		fmt.Printf("bucket %d: %d\n", b, n)
	}
	// Output:
	// bucket 0: 1
	// bucket 1: 1
	// bucket 2: 0
	// bucket 3: 1
}

// A fallback keeps a hint for a down primary, merges later writes into it,
// and deletes it only if it is unchanged since it was delivered.
func ExampleStore_UpdateHint() {
	o := store.DefaultOptions("")
	o.InMemory = true
	s, _ := store.Open(o)
	defer s.Close()
	ctx := context.Background()
	k := keyOf("user:42")
	merge := func(v string) store.UpdateFunc {
		return func(old []byte, _ bool) ([]byte, error) { return append(append([]byte{}, old...), v...), nil }
	}
	s.UpdateHint(ctx, "node-b", k, false, merge("x"))

	delivered, _ := s.GetHint("node-b", k)
	s.UpdateHint(ctx, "node-b", k, false, merge("y")) // arrives during delivery
	ok, _ := s.DeleteHintIf(ctx, "node-b", k, delivered)
	fmt.Println("deleted after first delivery:", ok, s.HintStats("node-b").Count)

	delivered, _ = s.GetHint("node-b", k)
	ok, _ = s.DeleteHintIf(ctx, "node-b", k, delivered)
	fmt.Println("deleted after second delivery:", ok, s.HintStats("node-b").Count)
	// Output:
	// deleted after first delivery: false 1
	// deleted after second delivery: true 0
}
