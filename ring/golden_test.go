package ring

import (
	"slices"
	"testing"
)

// The values below were computed once, with the default config, and are
// hard-coded on purpose. They pin what every peer of every cluster must agree
// on, across processes and versions: which partition a key is in (xxhash64,
// top 8 bits) and where a member's tokens land (the tokenInput layout).
// Changing any of them breaks compatibility with data already stored: do it
// only with a migration, never to make this test pass.

func TestGoldenPartitionOf(t *testing.T) {
	golden := []struct {
		key  string
		hash uint64
		p    uint32
	}{
		{"", 0xef46db3751d8e999, 239},
		{"a", 0xd24ec4f1a98c6e5b, 210},
		{"user:42", 0xdc1fea7da8d2d1c2, 220},
		{"quorumkv", 0x1a97a03286ec7b45, 26},
		{"hello world", 0x45ab6734b21e6968, 69},
		{"\x00\xff", 0xe0d97d9a03131d7d, 224},
	}
	r := mustNew(t, LegacyConfig(), nil)
	for _, g := range golden {
		if got := r.PartitionOf([]byte(g.key)); got != g.p {
			t.Errorf("PartitionOf(%q) = %d, want %d", g.key, got, g.p)
		}
		if got := r.PartitionOfHash(g.hash); got != g.p {
			t.Errorf("PartitionOfHash(%#x) = %d, want %d", g.hash, got, g.p)
		}
	}
}

func TestGoldenTokens(t *testing.T) {
	if got, want := string(tokenInput(nil, "node-01", 63)), "node-01\x00\x00\x00?"; got != want {
		t.Errorf("tokenInput = %q, want %q", got, want)
	}
	r := mustNew(t, LegacyConfig(), names(5))
	golden := map[uint32][]NodeID{
		0:   {"node-02", "node-03", "node-05", "node-04", "node-01"},
		1:   {"node-05", "node-04", "node-01", "node-02", "node-03"},
		77:  {"node-03", "node-05", "node-02", "node-04", "node-01"},
		128: {"node-05", "node-02", "node-01", "node-03", "node-04"},
		255: {"node-02", "node-03", "node-05", "node-04", "node-01"},
	}
	for p, want := range golden {
		if got := r.Preference(p); !slices.Equal(got, want) {
			t.Errorf("Preference(%d) = %q, want %q", p, got, want)
		}
	}
}
