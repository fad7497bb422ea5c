package antientropy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/antientropy"
)

// store is a toy replica: key -> set digest, with its partition tree.
type store struct {
	tree *antientropy.Tree
	sets map[string]uint64
}

func newStore(cfg antientropy.TreeConfig) *store {
	t, err := antientropy.NewTree(cfg)
	if err != nil {
		panic(err) // a constant, valid config
	}
	return &store{tree: t, sets: map[string]uint64{}}
}

func (s *store) put(key string, setDigest uint64) {
	h := xxhash.Sum64String(key)
	old := uint64(0)
	if sd, ok := s.sets[key]; ok {
		old = antientropy.Digest(h, []byte(key), sd)
	}
	_ = s.tree.Update(h, old, antientropy.Digest(h, []byte(key), setDigest)) // one partition: never fails
	s.sets[key] = setDigest
}

// keys lists the keys of some buckets; a real node scans the store over
// each bucket's BucketRange.
func (s *store) keys(buckets []uint32) ([]antientropy.KeyDigest, error) {
	in := map[uint32]bool{}
	for _, b := range buckets {
		in[b] = true
	}
	var out []antientropy.KeyDigest
	for k, sd := range s.sets {
		h := xxhash.Sum64String(k)
		if in[s.tree.Bucket(h)] {
			out = append(out, antientropy.KeyDigest{Key: []byte(k), Hash: h, Digest: antientropy.Digest(h, []byte(k), sd)})
		}
	}
	return out, nil
}

// peer serves another store in process; a real one sends HashesRequest and
// KeysRequest over the transport and the other node answers with
// ServeHashes and ServeKeys.
type peer struct{ s *store }

func (p peer) Hashes(_ context.Context, _ uint32, level int, nodes []uint32) ([]uint64, error) {
	return p.s.tree.Hashes(level, nodes)
}

func (p peer) Keys(_ context.Context, _ uint32, buckets []uint32) ([]antientropy.KeyDigest, error) {
	return p.s.keys(buckets)
}

func ExampleCompare() {
	cfg := antientropy.TreeConfig{LeafBits: 10, FanoutBits: 4} // one partition
	a, b := newStore(cfg), newStore(cfg)
	for i := range 1000 {
		k := fmt.Sprintf("key-%d", i)
		a.put(k, 1)
		b.put(k, 1)
	}
	a.put("key-7", 2)   // a concurrent write b missed
	b.put("key-new", 1) // a key a never saw

	diff, err := antientropy.Compare(context.Background(), 0, a.tree, peer{b}, a.keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range diff.Keys { // sorted by key hash
		// A node fetches both sibling sets, merges them (vclock Sync) and
		// writes the result where it was behind.
		fmt.Printf("%s local=%t remote=%t\n", k.Key, k.Local != 0, k.Remote != 0)
	}
	// Output:
	// key-7 local=true remote=true
	// key-new local=false remote=true
}

func ExampleTree() {
	cfg := antientropy.DefaultTreeConfig() // 256 partitions
	cfg.Partition = 3
	t, _ := antientropy.NewTree(cfg)
	fmt.Println("empty root:", t.Root())

	h := uint64(3)<<56 | 0x1234 // a key hash in partition 3
	d := antientropy.Digest(h, []byte("k"), 42)
	_ = t.Update(h, 0, d) // insert
	fmt.Println("root set:", t.Root() != 0)
	_ = t.Update(h, d, 0) // delete
	fmt.Println("root after delete:", t.Root())

	lo, hi := t.BucketRange(t.Bucket(h))
	fmt.Printf("bucket %d scans hashes %#x..%#x\n", t.Bucket(h), lo, hi)
	fmt.Println(t.Update(uint64(4)<<56, 0, 1))
	// Output:
	// empty root: 0
	// root set: true
	// root after delete: 0
	// bucket 0 scans hashes 0x300000000000000..0x30003ffffffffff
	// antientropy: key hash outside the tree's partition
}

func ExampleScheduler() {
	s, _ := antientropy.NewScheduler[string](time.Minute, 30*time.Second)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.SetPartition(1, []string{"n2", "n3"}, time.Time{})
	s.SetPartition(2, []string{"n2", "n3"}, now)
	s.MarkNeedsRepair(2) // hints for partition 2 were dropped

	for range 2 {
		job, ok := s.Next(now, nil)
		fmt.Println(job, ok)
		s.Done(now, nil) // after Compare and the repairs
	}
	wake, _ := s.NextWake(now)
	fmt.Println("next wake in", wake.Sub(now))
	// Output:
	// {2 n2 true} true
	// {1 n2 false} true
	// next wake in 1m0s
}
