package store

import (
	"fmt"
	"testing"
)

// BenchmarkListWalk: records per second walked in one partition of n
// records: in byte order over the key index (ScanKeys, what a listing page
// reads) and in hash order over the records (Scan, what it read before).
func BenchmarkListWalk(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		s := openBench(b, benchOptions(b, false))
		load(b, s, 7, n)
		if err := s.buildIndex(); err != nil { // load writes records only
			b.Fatal(err)
		}
		for _, walk := range []string{"ScanKeys", "Scan"} {
			b.Run(fmt.Sprintf("records=%d/%s", n, walk), func(b *testing.B) {
				b.ReportAllocs()
				seen := 0
				count := func(Key, []byte) error { seen++; return nil }
				for b.Loop() {
					var err error
					if walk == "ScanKeys" {
						err = s.ScanKeys(7, nil, count)
					} else {
						err = s.Scan(7, 0, ^uint64(0), count)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if seen != n*b.N {
					b.Fatalf("walked %d records in %d walks of %d", seen, b.N, n)
				}
				b.ReportMetric(float64(seen)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
