package membudget_test

import (
	"testing"

	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/store"
)

// The store sizes of every plan, from the smallest limit to a large one,
// are options the store accepts (with the node's value cap, 12.5 MiB).
func TestPlanStoreSizesAreValidStoreOptions(t *testing.T) {
	for _, limit := range []int64{membudget.MinMemoryLimit, 512 << 20, 4 << 30, 64 << 30} {
		p, err := membudget.PlanFor(limit, membudget.Machine{})
		if err != nil {
			t.Fatal(err)
		}
		o := store.DefaultOptions(t.TempDir())
		s := p.Store
		o.MemTableSize, o.NumMemtables, o.BlockCacheSize, o.CacheSize = s.MemTableSize, s.NumMemtables, s.BlockCacheSize, s.CacheSize
		o.MaxValueSize = 12<<20 + 512<<10
		if err := o.Validate(); err != nil {
			t.Errorf("limit %d MiB: store sizes %+v: %v", limit>>20, s, err)
		}
	}
}
