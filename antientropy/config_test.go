package antientropy

import (
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/validtest"
)

func TestTreeConfigValidate(t *testing.T) {
	tests := []validtest.Case[TreeConfig]{
		{"default", func(c *TreeConfig) {}, true},
		{"one partition", func(c *TreeConfig) { c.PartitionBits, c.Partition = 0, 0 }, true},
		{"last partition", func(c *TreeConfig) { c.Partition = 255 }, true},
		{"partition past Q", func(c *TreeConfig) { c.Partition = 256 }, false},
		{"partition with no partition bits", func(c *TreeConfig) { c.PartitionBits, c.Partition = 0, 1 }, false},
		{"32 partition bits", func(c *TreeConfig) { c.PartitionBits, c.Partition = 32, 1<<32-1 }, true},
		{"33 partition bits", func(c *TreeConfig) { c.PartitionBits = 33 }, false},
		{"negative partition bits", func(c *TreeConfig) { c.PartitionBits = -1 }, false},
		{"zero leaf bits", func(c *TreeConfig) { c.LeafBits = 0 }, false},
		{"max leaf bits", func(c *TreeConfig) { c.LeafBits = MaxLeafBits }, true},
		{"too many leaf bits", func(c *TreeConfig) { c.LeafBits = MaxLeafBits + 1 }, false},
		{"zero fanout bits", func(c *TreeConfig) { c.FanoutBits = 0 }, false},
		{"max fanout bits", func(c *TreeConfig) { c.FanoutBits = MaxFanoutBits }, true},
		{"too many fanout bits", func(c *TreeConfig) { c.FanoutBits = MaxFanoutBits + 1 }, false},
	}
	validtest.Table[TreeConfig]{
		Base:    DefaultTreeConfig,
		Invalid: ErrInvalidConfig,
		Same:    validtest.Equal[TreeConfig],
		Then: func(t *testing.T, c TreeConfig, valid bool) {
			if _, err := NewTree(c); (err == nil) != valid {
				t.Errorf("NewTree error %v, want valid=%v", err, valid)
			}
		},
		Cases: tests,
	}.Run(t)
}

func TestConfigValidate(t *testing.T) {
	tests := []validtest.Case[Config]{
		{"default", func(c *Config) {}, true},
		{"local", func(c *Config) { *c = DefaultLocalConfig() }, true},
		{"no leaves", func(c *Config) { c.LeafBits = 0 }, false},
		{"too many leaves", func(c *Config) { c.LeafBits = MaxLeafBits + 1 }, false},
		{"zero interval: no schedule", func(c *Config) { c.Interval = 0 }, true},
		{"negative interval", func(c *Config) { c.Interval = -time.Second }, false},
		{"negative backoff", func(c *Config) { c.RetryBackoff = -time.Second }, false},
		{"zero repair rate: no cap", func(c *Config) { c.KeysPerSecond, c.MinKeysPerSecond = 0, 0 }, true},
		{"negative floor", func(c *Config) { c.MinKeysPerSecond = -1 }, false},
		{"max downtime below grace", func(c *Config) { c.MaxDowntime = c.TombstoneGrace - 1 }, false},
		{"reaping off ignores max downtime", func(c *Config) { c.TombstoneGrace, c.MaxDowntime = 0, 0 }, true},
	}
	validtest.Table[Config]{
		Base:    DefaultConfig,
		Invalid: ErrInvalidConfig,
		Same:    validtest.Equal[Config],
		Cases:   tests,
	}.Run(t)
}

// The schedule a Config gives the Scheduler: Interval, or never when it
// is 0; RetryBackoff, or an eighth of the interval within 200ms..30s.
func TestConfigSchedule(t *testing.T) {
	tests := []struct {
		interval, backoff, wantInterval, wantBackoff time.Duration
	}{
		{time.Minute, 0, time.Minute, 7500 * time.Millisecond},
		{5 * time.Second, 0, 5 * time.Second, 625 * time.Millisecond},
		{time.Second, 0, time.Second, 200 * time.Millisecond},
		{time.Hour, 0, time.Hour, 30 * time.Second},
		{0, 0, neverInterval, 200 * time.Millisecond},
		{time.Minute, time.Second, time.Minute, time.Second},
	}
	for _, tc := range tests {
		c := Config{Interval: tc.interval, RetryBackoff: tc.backoff}
		if got := c.scheduleInterval(); got != tc.wantInterval {
			t.Errorf("interval %v: schedule interval %v, want %v", tc.interval, got, tc.wantInterval)
		}
		if got := c.retryBackoff(); got != tc.wantBackoff {
			t.Errorf("interval %v backoff %v: retry backoff %v, want %v", tc.interval, tc.backoff, got, tc.wantBackoff)
		}
	}
}

func TestTreeGeometry(t *testing.T) {
	tests := []struct {
		name   string
		cfg    TreeConfig
		depth  int
		widths []uint32 // per level, root first
	}{
		{"default", DefaultTreeConfig(), 4, []uint32{1, 16, 256, 4096, 16384}},
		{"even split", TreeConfig{LeafBits: 12, FanoutBits: 4}, 3, []uint32{1, 16, 256, 4096}},
		{"binary", TreeConfig{LeafBits: 3, FanoutBits: 1}, 3, []uint32{1, 2, 4, 8}},
		{"one level", TreeConfig{LeafBits: 5, FanoutBits: 8}, 1, []uint32{1, 32}},
		{"remainder at the bottom", TreeConfig{LeafBits: 14, FanoutBits: 5}, 3, []uint32{1, 32, 1024, 16384}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Depth(); got != tc.depth {
				t.Fatalf("Depth = %d, want %d", got, tc.depth)
			}
			for l, w := range tc.widths {
				if got := tc.cfg.LevelWidth(l); got != w {
					t.Errorf("LevelWidth(%d) = %d, want %d", l, got, w)
				}
			}
			if tc.cfg.LevelWidth(-1) != 0 || tc.cfg.LevelWidth(tc.depth+1) != 0 {
				t.Errorf("LevelWidth outside the tree is not 0")
			}
			// The children of a level's nodes tile the next level exactly.
			for l := 0; l < tc.depth; l++ {
				next := uint32(0)
				for i := range tc.cfg.LevelWidth(l) {
					first, n := tc.cfg.Children(l, i)
					if first != next || n == 0 {
						t.Fatalf("Children(%d, %d) = (%d, %d), want first %d", l, i, first, n, next)
					}
					next += n
				}
				if next != tc.cfg.LevelWidth(l+1) {
					t.Errorf("children of level %d cover %d nodes, want %d", l, next, tc.cfg.LevelWidth(l+1))
				}
			}
			if _, n := tc.cfg.Children(tc.depth, 0); n != 0 {
				t.Errorf("a leaf has %d children", n)
			}
			if _, n := tc.cfg.Children(0, 1); n != 0 {
				t.Errorf("a missing node has %d children", n)
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	cfg := TreeConfig{PartitionBits: 8, Partition: 0xab, LeafBits: 4, FanoutBits: 2}
	tests := []struct {
		name     string
		hash     uint64
		contains bool
		bucket   uint32
	}{
		{"partition start", 0xab00_0000_0000_0000, true, 0},
		{"partition end", 0xabff_ffff_ffff_ffff, true, 15},
		{"bucket 5 start", 0xab50_0000_0000_0000, true, 5},
		{"bucket 5 end", 0xab5f_ffff_ffff_ffff, true, 5},
		{"previous partition", 0xaaff_ffff_ffff_ffff, false, 15},
		{"next partition", 0xac00_0000_0000_0000, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cfg.Contains(tc.hash); got != tc.contains {
				t.Errorf("Contains(%#x) = %v, want %v", tc.hash, got, tc.contains)
			}
			if got := cfg.Bucket(tc.hash); got != tc.bucket {
				t.Errorf("Bucket(%#x) = %d, want %d", tc.hash, got, tc.bucket)
			}
			if tc.contains {
				lo, hi := cfg.BucketRange(tc.bucket)
				if tc.hash < lo || tc.hash > hi {
					t.Errorf("BucketRange(%d) = [%#x, %#x] misses %#x", tc.bucket, lo, hi, tc.hash)
				}
			}
		})
	}
	lo, hi := cfg.BucketRange(5)
	if lo != 0xab50_0000_0000_0000 || hi != 0xab5f_ffff_ffff_ffff {
		t.Errorf("BucketRange(5) = [%#x, %#x]", lo, hi)
	}
	if lo, hi := cfg.BucketRange(16); lo <= hi {
		t.Errorf("BucketRange past the last bucket = [%#x, %#x], want empty", lo, hi)
	}
	whole := TreeConfig{LeafBits: 1, FanoutBits: 1}
	if lo, hi := whole.BucketRange(1); lo != 1<<63 || hi != 1<<64-1 {
		t.Errorf("one partition, bucket 1 = [%#x, %#x]", lo, hi)
	}
	if !whole.Contains(0) || !whole.Contains(1<<64-1) {
		t.Errorf("a single partition must contain every hash")
	}
}
