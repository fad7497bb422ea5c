package ring

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

var fuzzPartitions = []int{-1, 0, 1, 2, 4, 16, 64, 256, 1024, 3, 100, MaxPartitions + 1}

// decodeFuzzInput turns fuzz bytes into a config and a member list, the way a
// ring gets built from a member list received by gossip:
// byte 0 picks Partitions, byte 1 is Tokens (signed), byte 2 picks the hash
// (bit 0), ModeClaim (bit 1) and Replicas (bits 2-5), then one member per
// line: a weight byte (signed, /16) and the id, with "@zone" after it if any.
func decodeFuzzInput(b []byte) (Config, []Member) {
	var cfg Config
	if len(b) < 3 {
		return cfg, nil
	}
	cfg.Partitions = fuzzPartitions[int(b[0])%len(fuzzPartitions)]
	cfg.Tokens = int(int8(b[1]))
	if b[2]&1 == 1 {
		cfg.Hash = coarseHash
	}
	if b[2]&2 != 0 {
		cfg.Mode = ModeClaim
	}
	cfg.Replicas = int(b[2]>>2) & 0xf
	var ms []Member
	for line := range bytes.SplitSeq(b[3:], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		id, zone, _ := bytes.Cut(line[1:], []byte("@"))
		ms = append(ms, Member{ID: NodeID(id), Weight: int(int8(line[0])) / 16, Zone: string(zone)})
	}
	return cfg, ms
}

// FuzzNew checks that New never panics on a member list from the network,
// fails only with its documented errors, and that every ring it builds keeps
// the invariants: sorted distinct members, every preference list a
// permutation of them, independent of input order, and matching the
// definition when small enough to check by brute force.
func FuzzNew(f *testing.F) {
	f.Add([]byte("\x07\x40\x00\x00a\n\x00b\n\x00c"))
	f.Add([]byte("\x04\x02\x01\x00a\n\x10b\n\x20c\n\x00d"))
	f.Add([]byte("\x02\x01\x01\x00x\n\x00y\n\x00z\n\x00w"))
	f.Add([]byte("\x01\x00\x00\x00a\n\x00a")) // duplicate
	f.Add([]byte("\x01\x00\x00\x00\n\x00a"))  // empty id
	f.Add([]byte("\x09\x40\x00\x00a"))        // Q=3
	f.Add([]byte("\x03\xff\x00\x00a"))        // negative tokens
	f.Add([]byte("\x03\x04\x00\xf0a\n\x00b")) // negative weight
	f.Add([]byte("\x06\x7f\x00\x70a\n\x70b")) // many tokens
	f.Add(append([]byte("\x02\x01\x00\x00"), bytes.Repeat([]byte("x"), MaxIDLen+1)...))
	f.Add([]byte{})
	f.Add([]byte("\x04\x00\x0e\x00a@x\n\x00b@y\n\x20c@z\n\x00d@x\n\x00e")) // claim, N=3, zones
	f.Add([]byte("\x03\x00\x0a\x00a@x\n\x00b@x\n\x00c"))                   // claim, N=2, 2 zones
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, ms := decodeFuzzInput(b)
		r, err := New(cfg, ms)
		if err != nil {
			if r != nil {
				t.Fatalf("New returned a ring and %v", err)
			}
			if !errors.Is(err, ErrInvalidConfig) && !errors.Is(err, ErrInvalidMember) &&
				!errors.Is(err, ErrDuplicateMember) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("New: undocumented error %v", err)
			}
			return
		}
		members := r.Members()
		if len(members) != len(ms) || !slices.IsSorted(members) || len(slices.Compact(slices.Clone(members))) != len(members) {
			t.Fatalf("Members = %q from %d inputs", members, len(ms))
		}
		if p := r.PartitionOf(b); int(p) >= r.Partitions() {
			t.Fatalf("PartitionOf = %d with Q=%d", p, r.Partitions())
		}
		r2, err := New(cfg, reversed(ms))
		if err != nil || !r.Equal(r2) {
			t.Fatalf("reversed input: %v, equal=%v", err, err == nil && r.Equal(r2))
		}
		if n := r.Config().Replicas; r.Mode() == ModeClaim && r.ZoneCount() >= n && r.Len() >= n {
			if st := r.ZoneStatus(n); !st.Held {
				t.Fatalf("claim ring with %d zones for N=%d: %+v", r.ZoneCount(), n, st)
			}
		}
		total := 0
		for _, m := range ms {
			total += r.Config().Tokens * max(m.Weight, 1)
		}
		small := r.Partitions()*total <= 1<<14
		for p := range uint32(r.Partitions()) {
			pl := r.Preference(p)
			if !slices.Equal(slices.Sorted(slices.Values(pl)), members) && len(members) > 0 {
				t.Fatalf("Preference(%d) = %q is not the members", p, pl)
			}
			if small && len(ms) > 0 && r.Mode() == ModeTokens && !slices.Equal(pl, naivePreference(cfg, ms, p)) {
				t.Fatalf("Preference(%d) = %q, definition gives %q", p, pl, naivePreference(cfg, ms, p))
			}
		}
	})
}
