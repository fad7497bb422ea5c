package store

import (
	"errors"
	"math"
	"testing"

	"github.com/quorumkv/quorumkv/internal/validtest"
)

func TestValidate(t *testing.T) {
	mem := DefaultOptions("")
	mem.InMemory = true
	tests := []validtest.Case[Options]{
		{"default on disk", func(o *Options) {}, true},
		{"default in memory", func(o *Options) { o.Dir, o.InMemory = "", true }, true},
		{"no dir", func(o *Options) { o.Dir = "" }, false},
		{"dir and in memory", func(o *Options) { o.InMemory = true }, false},
		{"zero MaxBatch", func(o *Options) { o.MaxBatch = 0 }, false},
		{"MaxBatch 1", func(o *Options) { o.MaxBatch = 1 }, true},
		{"small memtable", func(o *Options) { o.MemTableSize = 1<<20 - 1 }, false},
		{"1 MiB memtable, default threshold", func(o *Options) { o.MemTableSize = 1 << 20 }, false},
		{"1 MiB memtable, small threshold", func(o *Options) { o.MemTableSize, o.ValueThreshold = 1<<20, 64<<10 }, true},
		{"zero memtables", func(o *Options) { o.NumMemtables = 0 }, false},
		{"no block cache", func(o *Options) { o.BlockCacheSize = 0 }, true},
		{"negative block cache", func(o *Options) { o.BlockCacheSize = -1 }, false},
		{"zero threshold", func(o *Options) { o.ValueThreshold = 0 }, false},
		{"threshold above badger max", func(o *Options) { o.ValueThreshold = 1<<20 + 1 }, false},
		{"small vlog file", func(o *Options) { o.ValueLogFileSize = 1<<20 - 1 }, false},
		{"2 GiB vlog file", func(o *Options) { o.ValueLogFileSize = 2 << 30 }, false},
		{"one compactor", func(o *Options) { o.NumCompactors = 1 }, false},
		{"zero MaxValueSize", func(o *Options) { o.MaxValueSize = 0 }, false},
		{"value above vlog file", func(o *Options) { o.MaxValueSize, o.ValueLogFileSize = 2<<20, 1<<20 }, false},
		{"negative MinFreeBytes", func(o *Options) { o.MinFreeBytes = -1 }, false},
		{"negative MinFreePercent", func(o *Options) { o.MinFreePercent = -0.5 }, false},
		{"MinFreePercent above 50", func(o *Options) { o.MinFreePercent = 51 }, false},
		{"MinFreePercent NaN", func(o *Options) { o.MinFreePercent = math.NaN() }, false},
		{"zero DiskCheckInterval", func(o *Options) { o.DiskCheckInterval = 0 }, false},
		{"guard off, no interval", func(o *Options) { o.MinFreeBytes, o.MinFreePercent, o.DiskCheckInterval = 0, 0, 0 }, true},
		{"in memory, no interval", func(o *Options) { o.Dir, o.InMemory, o.DiskCheckInterval = "", true, 0 }, true},
	}
	validtest.Table[Options]{
		Base:    func() Options { return DefaultOptions("/tmp/unused") },
		Invalid: ErrInvalidOptions,
		Same: func(a, b Options) bool {
			return a.Dir == b.Dir && a.MaxBatch == b.MaxBatch && a.InMemory == b.InMemory
		},
		Cases: tests,
	}.Run(t)
	if _, err := Open(Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open(zero Options) = %v", err)
	}
}

// TestInMemoryValueLimit: in memory, values stop just below badger's value
// threshold (badger v4.9.6 panics at or above it), whatever MaxValueSize says.
func TestInMemoryValueLimit(t *testing.T) {
	o := DefaultOptions("")
	o.InMemory = true
	if got := o.maxValue(); got >= badgerMaxValueThreshold-hintHeaderLen || got < 1<<19 {
		t.Fatalf("in-memory maxValue = %d", got)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	k := Key{Key: []byte("k")}
	big := make([]byte, s.maxValue)
	for _, n := range []int{s.maxValue, s.maxValue + 1, 2 << 20} {
		_, _, err := s.Update(ctx, k, false, func([]byte, bool) ([]byte, error) { return big[:min(n, len(big))], nil })
		if n > s.maxValue {
			_, _, err = s.Update(ctx, k, false, func([]byte, bool) ([]byte, error) { return make([]byte, n), nil })
			if !errors.Is(err, ErrValueTooLarge) {
				t.Fatalf("value of %d: %v", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("value of %d: %v", n, err)
		}
		// The same size as a hint (header added) also fits.
		if _, _, err := s.UpdateHint(ctx, "n1", k, false, func([]byte, bool) ([]byte, error) { return big, nil }); err != nil {
			t.Fatalf("hint of %d: %v", n, err)
		}
	}
}
