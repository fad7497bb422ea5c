package multikey

import (
	"context"
	"strconv"
	"testing"

	"github.com/quorumkv/quorumkv/membudget"
)

// BenchmarkSizesSmallGet is the budget bookkeeping of one GET of a small
// key (RESP and HTTP's readOne): Reserve, Charge, then the reply's bytes
// kept, from many goroutines at once as 50 clients would.
func BenchmarkSizesSmallGet(b *testing.B) {
	budget, err := membudget.New(membudget.Config{Limit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	var s Sizes
	keys := make([][]byte, 100_000)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(i))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		hold := budget.NewHold()
		i := 0
		for pb.Next() {
			i = (i + 7919) % len(keys)
			rd, err := s.Reserve(ctx, &hold, keys[i])
			if err != nil {
				b.Fatal(err)
			}
			if err := rd.Charge(ctx, &hold, keys[i], 200, 400); err != nil {
				b.Fatal(err)
			}
			rd.End()
			hold.ForceResize(0)
		}
	})
}
