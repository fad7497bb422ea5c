package store

import (
	"context"
	"sync"
	"testing"
)

// BenchmarkWriteKinds: what a write costs by kind, the kinds whose cost
// the key index changes: creating a record (one index entry more in the
// transaction), overwriting one (unchanged: no index write), deleting one
// (one index delete more). 8 writers of distinct keys, no sync. It uses
// only Update, so the same file runs against a store without the index
// (docs/BENCHMARKS.md, "key index").
func BenchmarkWriteKinds(b *testing.B) {
	val := make([]byte, benchValueLen)
	set := func([]byte, bool) ([]byte, error) { return val, nil }
	remove := func([]byte, bool) ([]byte, error) { return nil, nil }
	const loaded = 200_000
	for _, kind := range []string{"create", "overwrite", "delete"} {
		b.Run(kind, func(b *testing.B) {
			s := openBench(b, benchOptions(b, false))
			if kind != "create" {
				loadByUpdates(b, s, loaded, set)
			}
			fn := set
			if kind == "delete" {
				fn = remove
			}
			n := runWriters(b, 8, func(i int) error {
				k := benchKeyIn(0, i%loaded)
				if kind == "create" {
					k = benchKeyIn(0, i)
				}
				_, _, err := s.Update(context.Background(), k, false, fn)
				return err
			})
			if kind == "delete" && n > loaded {
				b.Logf("%d deletes of %d records: the later ones deleted nothing", n, loaded)
			}
		})
	}
}

// loadByUpdates writes benchKeyIn(0, 0..n-1) with Update from 64
// goroutines: through the write path, so whatever a write maintains
// besides the record (the key index) is there too.
func loadByUpdates(b *testing.B, s *Store, n int, fn UpdateFunc) {
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				if _, _, err := s.Update(context.Background(), benchKeyIn(0, i), false, fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
