package ring

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// unit is 1/16 of the ring: partition p of Q=4 covers [4p, 4p+4) units.
const unit = uint64(1) << 60

// handTokens places each member's tokens by hand, in units (1/16 of the ring):
//
//	units: 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
//	part:  |--- p0 ---|--- p1 ---|--- p2 ---|--- p3 ---|
//	a         a                    a
//	b                  b                 b
//	c                        c                          c
//	d            d                                d
//
// x and y share a token (ties go to the smaller id); e and f sit on the
// edges: e on the last hash of partition 0, f on the first and last hash of
// the whole ring.
var handTokens = map[NodeID][]uint64{
	"a": {1 * unit, 9 * unit},
	"b": {4 * unit, 11 * unit},
	"c": {6 * unit, 15 * unit},
	"d": {2 * unit, 14 * unit},
	"x": {5 * unit, 5 * unit},
	"y": {5 * unit, 7 * unit},
	"e": {4*unit - 1, 12 * unit},
	"f": {0, ^uint64(0)},
}

// handHash is a hash computed by hand (the groupcache consistenthash_test
// style): token inputs of handTokens members hash to their listed unit, and
// any other input is read as a hexadecimal ring position ("4000000000000000"
// is the start of partition 1 of 4).
func handHash(b []byte) uint64 {
	if len(b) > 4 {
		id, idx := NodeID(b[:len(b)-4]), int(b[len(b)-1])
		if ts, ok := handTokens[id]; ok && string(b) == string(tokenInput(nil, id, idx)) && idx < len(ts) {
			return ts[idx]
		}
	}
	h, err := strconv.ParseUint(string(b), 16, 64)
	if err != nil {
		panic("handHash: unexpected input " + strconv.Quote(string(b)))
	}
	return h
}

func handRing(t *testing.T, q int, ids ...NodeID) *Ring {
	t.Helper()
	ms := make([]Member, len(ids))
	for i, id := range ids {
		ms[i] = Member{ID: id}
	}
	return mustNew(t, Config{Partitions: q, Tokens: 2, Hash: handHash}, ms)
}

func ids(s string) []NodeID {
	if s == "" {
		return nil
	}
	var out []NodeID
	for _, f := range strings.Fields(s) {
		out = append(out, NodeID(f))
	}
	return out
}

// Dynamo paper §4.2 (partitioning): a key's partition is the top log2(Q) bits
// of its hash, whatever the members.
func TestPaper4_2_PartitionOf(t *testing.T) {
	tests := []struct {
		name string
		q    int
		key  string
		want uint32
	}{
		{"zero", 4, "0", 0},
		{"last of p0", 4, "3fffffffffffffff", 0},
		{"start of p1", 4, "4000000000000000", 1},
		{"middle of p2", 4, "9000000000000000", 2},
		{"top of ring", 4, "ffffffffffffffff", 3},
		{"single partition", 1, "ffffffffffffffff", 0},
		{"Q=2 upper half", 2, "8000000000000000", 1},
		{"Q=65536", MaxPartitions, "abcd000000000000", 0xabcd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handRing(t, tc.q, "a", "b")
			if got := r.PartitionOf([]byte(tc.key)); got != tc.want {
				t.Errorf("PartitionOf(%s) = %d, want %d", tc.key, got, tc.want)
			}
			if r.Hash([]byte(tc.key)) != handHash([]byte(tc.key)) {
				t.Errorf("Hash does not use the configured hash")
			}
			if got := r.PartitionOfHash(handHash([]byte(tc.key))); got != tc.want {
				t.Errorf("PartitionOfHash = %d, want %d", got, tc.want)
			}
			k := r.KeyOf([]byte(tc.key))
			if k.Partition != tc.want || k.Hash != handHash([]byte(tc.key)) || string(k.Key) != tc.key {
				t.Errorf("KeyOf = %+v, want partition %d, hash %x", k, tc.want, handHash([]byte(tc.key)))
			}
			if c, err := r.CheckKey(k.Partition, k.Hash, k.Key, len(k.Key)); err != nil || c.Partition != k.Partition {
				t.Errorf("CheckKey of KeyOf's own address: %+v, %v", c, err)
			}
			if _, err := r.CheckKey(k.Partition+1, k.Hash, k.Key, 100); err == nil {
				t.Errorf("CheckKey accepted another partition")
			}
			if _, err := r.CheckKey(k.Partition, k.Hash^1, k.Key, 100); err == nil {
				t.Errorf("CheckKey accepted another hash")
			}
			if _, err := r.CheckKey(k.Partition, k.Hash, k.Key, len(k.Key)-1); err == nil {
				t.Errorf("CheckKey accepted a key over the limit")
			}
		})
	}
}

// Dynamo paper §4.3 (replication): walking clockwise from the partition's
// start, each member is listed once, at its first token met.
func TestPaper4_3_Preference(t *testing.T) {
	tests := []struct {
		name    string
		q       int
		members []NodeID
		want    []string // per partition
	}{
		{"four members", 4, ids("a b c d"), []string{
			"a d b c", // tokens met: a1 d2 b4 c6
			"b c a d", // b4 (a token on the start counts) c6 a9 b11 d14
			"a b d c", // a9 b11 d14 c15
			"d c a b", // d14 c15, wrap, a1 d2 b4
		}},
		{"order of input does not matter", 4, ids("d b c a"), []string{
			"a d b c", "b c a d", "a b d c", "d c a b",
		}},
		{"one member", 4, ids("c"), []string{"c", "c", "c", "c"}},
		{"single partition", 1, ids("a b c d"), []string{"a d b c"}},
		{"tie broken by id", 2, ids("y x a"), []string{
			"a x y", // a1, then x5 and y5 tie: x < y
			"a x y", // start 8: a9, wrap: a1 x5 y5
		}},
		{"tokens on partition edges", 4, ids("a b e f"), []string{
			"f a e b", // f0 a1 e(4U-1) b4
			"b a e f", // b4 a9 b11 e12 f(2^64-1)
			"a b e f", // a9 b11 e12 f(2^64-1)
			"e f a b", // e12 f(2^64-1), wrap: f0 a1 e(4U-1) b4
		}},
		{"no members", 4, nil, []string{"", "", "", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handRing(t, tc.q, tc.members...)
			for p, w := range tc.want {
				if got := r.Preference(uint32(p)); !slices.Equal(got, ids(w)) {
					t.Errorf("Preference(%d) = %v, want %v", p, got, ids(w))
				}
			}
			if got := r.Preference(uint32(tc.q)); got != nil {
				t.Errorf("Preference(Q) = %v, want nil", got)
			}
		})
	}
}

func TestPrimaries(t *testing.T) {
	r := handRing(t, 4, "a", "b", "c", "d")
	tests := []struct {
		p    uint32
		n    int
		want string
	}{
		{0, 3, "a d b"},
		{3, 3, "d c a"},
		{2, 1, "a"},
		{1, 4, "b c a d"},
		{1, 10, "b c a d"}, // n > Len: every member
		{1, 0, ""},
		{1, -1, ""},
		{4, 3, ""}, // no such partition
	}
	for _, tc := range tests {
		got := r.Primaries(tc.p, tc.n)
		if !slices.Equal(got, ids(tc.want)) {
			t.Errorf("Primaries(%d, %d) = %v, want %v", tc.p, tc.n, got, ids(tc.want))
		}
		for _, id := range ids("a b c d e") {
			if r.IsPrimary(tc.p, tc.n, id) != slices.Contains(got, id) {
				t.Errorf("IsPrimary(%d, %d, %s) disagrees with Primaries", tc.p, tc.n, id)
			}
		}
	}
	// The shared slice has clipped capacity: append must not write into
	// the next partition's row.
	pl := r.Primaries(0, 2)
	_ = append(pl, "zzz")
	if got := r.Preference(0); got[2] != "b" {
		t.Errorf("append to Primaries changed Preference: %v", got)
	}
	_ = append(r.Preference(0), "zzz")
	if got := r.Preference(1); got[0] != "b" {
		t.Errorf("append to Preference(0) changed Preference(1): %v", got)
	}
}

// Dynamo paper §4.6 (hinted handoff): dead primaries are replaced by the next
// live members past the primaries, each carrying a hint for one of them.
func TestPaper4_6_Targets(t *testing.T) {
	r := handRing(t, 4, "a", "b", "c", "d") // partition 2: a b d c
	tests := []struct {
		name string
		n    int
		dead string
		want string // node or node(hintfor)
	}{
		{"all alive", 3, "", "a b d"},
		{"middle primary dead", 3, "b", "a d c(b)"},
		{"two dead, one stand-in left", 3, "a d", "b c(a)"},
		{"fallback dead too", 3, "b c", "a d"},
		{"all dead", 3, "a b c d", ""},
		{"n=2, first dead", 2, "a", "b d(a)"},
		{"n=2, both dead", 2, "a b", "d(a) c(b)"},
		{"n above ring size", 9, "", "a b d c"},
		{"n above ring size, one dead", 9, "b", "a d c"},
		{"n=0", 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dead := ids(tc.dead)
			alive := func(id NodeID) bool { return !slices.Contains(dead, id) }
			var got []string
			for _, tg := range r.Targets(2, tc.n, alive) {
				s := string(tg.Node)
				if tg.HintFor != "" {
					s += "(" + string(tg.HintFor) + ")"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("Targets = %q, want %q", g, tc.want)
			}
		})
	}
	if got := r.Targets(2, 3, nil); len(got) != 3 || got[2].Node != "d" {
		t.Errorf("Targets with nil alive = %v, want all primaries", got)
	}
	if got := handRing(t, 4).Targets(0, 3, nil); got != nil {
		t.Errorf("Targets on empty ring = %v, want nil", got)
	}
}

func TestAppendTargetsNoAlloc(t *testing.T) {
	r := mustNew(t, LegacyConfig(), names(10))
	dead := r.Preference(7)[1]
	alive := func(id NodeID) bool { return id != dead }
	buf := make([]Target, 0, 3)
	allocs := testing.AllocsPerRun(100, func() {
		buf = r.AppendTargets(buf[:0], 7, 3, alive)
	})
	if allocs != 0 {
		t.Errorf("AppendTargets allocated %.1f times per run", allocs)
	}
	if len(buf) != 3 || buf[2].HintFor != dead {
		t.Errorf("AppendTargets = %v, want a stand-in for %s last", buf, dead)
	}
}

func TestDiffByHand(t *testing.T) {
	full := handRing(t, 4, "a", "b", "c", "d")
	noD := handRing(t, 4, "a", "b", "c")
	// Primaries for n=2. full: p0 a d, p1 b c, p2 a b, p3 d c.
	// without d:                p0 a b, p1 b c, p2 a b, p3 c a.
	want := []Move{
		{Partition: 0, Gained: ids("b"), Lost: ids("d")},
		{Partition: 3, Gained: ids("a"), Lost: ids("d")},
	}
	if got := Diff(full, noD, 2); !movesEqual(got, want) {
		t.Errorf("Diff(full, noD) = %v, want %v", got, want)
	}
	back := []Move{
		{Partition: 0, Gained: ids("d"), Lost: ids("b")},
		{Partition: 3, Gained: ids("d"), Lost: ids("a")},
	}
	if got := Diff(noD, full, 2); !movesEqual(got, back) {
		t.Errorf("Diff(noD, full) = %v, want %v", got, back)
	}
	if got := Diff(full, full, 2); got != nil {
		t.Errorf("Diff(r, r) = %v, want nil", got)
	}
	// Order changes within the primaries are not moves: with n=4 every
	// member is a primary of every partition in both orders.
	if got := Diff(full, handRing(t, 4, "d", "c", "b", "a"), 4); got != nil {
		t.Errorf("Diff with n=Len = %v, want nil", got)
	}
	boot := Diff(nil, noD, 2)
	if len(boot) != 4 || !slices.Equal(boot[3].Gained, ids("c a")) || boot[3].Lost != nil {
		t.Errorf("Diff(nil, r) = %v, want every partition gained", boot)
	}
	gone := Diff(noD, nil, 1)
	if len(gone) != 4 || !slices.Equal(gone[1].Lost, ids("b")) || gone[1].Gained != nil {
		t.Errorf("Diff(r, nil) = %v, want every partition lost", gone)
	}
	if got := Diff(nil, nil, 3); got != nil {
		t.Errorf("Diff(nil, nil) = %v", got)
	}
}

func TestDiffPanicsOnPartitionMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Diff of rings with different Q did not panic")
		}
	}()
	Diff(handRing(t, 4, "a"), handRing(t, 2, "a"), 1)
}

func movesEqual(a, b []Move) bool {
	return slices.EqualFunc(a, b, func(x, y Move) bool {
		return x.Partition == y.Partition && slices.Equal(x.Gained, y.Gained) && slices.Equal(x.Lost, y.Lost)
	})
}

func TestNewErrors(t *testing.T) {
	long := NodeID(strings.Repeat("x", MaxIDLen+1))
	tests := []struct {
		name    string
		cfg     Config
		members []Member
		want    error
	}{
		{"bad partitions", Config{Partitions: 3}, nil, ErrInvalidConfig},
		{"empty id", Config{}, []Member{{ID: "a"}, {ID: ""}}, ErrInvalidMember},
		{"long id", Config{}, []Member{{ID: long}}, ErrInvalidMember},
		{"negative weight", Config{}, []Member{{ID: "a", Weight: -1}}, ErrInvalidMember},
		{"weight above max", Config{}, []Member{{ID: "a", Weight: MaxWeight + 1}}, ErrInvalidMember},
		{"duplicate", Config{}, []Member{{ID: "a"}, {ID: "b"}, {ID: "a", Weight: 2}}, ErrDuplicateMember},
		{"too many tokens", Config{Tokens: MaxTokens}, []Member{{ID: "a", Weight: MaxWeight}, {ID: "b", Weight: 1}}, ErrTooLarge},
		{"too many placements", Config{Partitions: MaxPartitions, Tokens: 1}, names(MaxPlacements/MaxPartitions + 1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.cfg, tc.members)
			if !errors.Is(err, tc.want) || r != nil {
				t.Errorf("New = %v, %v; want nil, %v", r, err, tc.want)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	r := mustNew(t, Config{Tokens: 8}, []Member{{ID: "c"}, {ID: "a", Weight: 3}, {ID: "b", Weight: 0}})
	if got, want := r.Members(), ids("a b c"); !slices.Equal(got, want) {
		t.Errorf("Members = %v, want %v", got, want)
	}
	r.Members()[0] = "mutated"
	if r.Members()[0] != "a" {
		t.Error("Members returned a shared slice")
	}
	if r.Len() != 3 || !r.Has("b") || r.Has("d") {
		t.Errorf("Len = %d, Has(b) = %v, Has(d) = %v", r.Len(), r.Has("b"), r.Has("d"))
	}
	for id, want := range map[NodeID]int{"a": 3, "b": 1, "c": 1, "d": 0} {
		if got := r.Weight(id); got != want {
			t.Errorf("Weight(%s) = %d, want %d", id, got, want)
		}
	}
	cfg := r.Config()
	if cfg.Partitions != DefaultPartitions || cfg.Tokens != 8 || cfg.Hash != nil || r.Partitions() != DefaultPartitions {
		t.Errorf("Config = %+v, want defaults filled and Tokens 8", cfg)
	}
	if got := r.PartitionStart(3); got != 3<<(64-10) { // Q=1024
		t.Errorf("PartitionStart(3) = %#x", got)
	}
	sum := 0
	for _, v := range r.Load(2) {
		sum += v
	}
	if sum != 2*DefaultPartitions {
		t.Errorf("Load(2) sums to %d, want %d", sum, 2*DefaultPartitions)
	}

	empty := mustNew(t, LegacyConfig(), nil)
	if empty.Len() != 0 || empty.Preference(0) != nil || empty.Primaries(0, 3) != nil ||
		empty.Has("a") || len(empty.Load(3)) != 0 || empty.PartitionOf([]byte("k")) >= DefaultPartitions {
		t.Error("empty ring lookups are not empty")
	}
}

func TestEqual(t *testing.T) {
	a := mustNew(t, LegacyConfig(), names(5))
	b := mustNew(t, LegacyConfig(), reversed(names(5)))
	tests := []struct {
		name string
		x, y *Ring
		want bool
	}{
		{"same members, other order", a, b, true},
		{"self", a, a, true},
		{"nil nil", nil, nil, true},
		{"nil vs ring", nil, a, false},
		{"ring vs nil", a, nil, false},
		{"one more member", a, mustNew(t, LegacyConfig(), names(6)), false},
		{"other weight", a, mustNew(t, LegacyConfig(), append(names(4), Member{ID: "node-05", Weight: 2})), false},
		{"explicit weight 1 is weight 0", a, mustNew(t, LegacyConfig(), append(names(4), Member{ID: "node-05", Weight: 1})), true},
		{"other tokens", a, mustNew(t, Config{Partitions: LegacyPartitions, Tokens: 32}, names(5)), false},
		{"other partitions", a, mustNew(t, Config{Partitions: 128}, names(5)), false},
		{"other hash", a, mustNew(t, Config{Partitions: LegacyPartitions, Hash: func(b []byte) uint64 { return ^xxhash.Sum64(b) }}, names(5)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.x.Equal(tc.y); got != tc.want {
				t.Errorf("Equal = %v, want %v", got, tc.want)
			}
		})
	}
}
