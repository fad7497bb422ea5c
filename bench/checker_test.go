package bench

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench/oracle"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// ck drives a Checker through a synthetic history: writes by name, reads
// by the names of the writes they returned.
type ck struct {
	t    *testing.T
	c    *Checker
	ops  map[string]oracle.Op
	vals map[string][]byte
	ctxs map[string]oracle.Context // the context of each named read
}

func newCk(t *testing.T, cfg CheckerConfig) *ck {
	t.Helper()
	c, err := NewChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &ck{t: t, c: c, ops: map[string]oracle.Op{}, vals: map[string][]byte{}, ctxs: map[string]oracle.Context{}}
}

// write sends write name to key through coord at time at, carrying the
// context of read ctxOf ("" for blind), and acknowledges it at ack (or
// fails it when ack < 0). The answer shows the value just written.
func (h *ck) write(name, key, ctxOf string, coord int, at, ack time.Duration) {
	op := h.c.Invoke(key, h.ctxs[ctxOf], coord, at)
	h.ops[name] = op
	h.vals[name] = append(h.c.AppendTag(nil, op), "-value"...)
	if ack < 0 {
		h.c.Failed(op, oracle.Unknown)
		return
	}
	h.ctxs[name] = h.c.Acked(op, ack, [][]byte{h.vals[name]})
}

func (h *ck) values(names []string) [][]byte {
	var vs [][]byte
	for _, n := range names {
		vs = append(vs, h.vals[n])
	}
	return vs
}

// read records a read named name and returns its k-staleness.
func (h *ck) read(name, key string, coord int, at time.Duration, returned ...string) int {
	ctx, k := h.c.Read(ReadEvent{Key: key, Coord: coord, Invoke: at, Done: at + ms(1), Values: h.values(returned)})
	h.ctxs[name] = ctx
	return k
}

// TestCheckerSyntheticHistory is the checker's acceptance test: a history
// with known stale reads, k-staleness, t-visibility and one lost write
// must produce exactly those figures.
func TestCheckerSyntheticHistory(t *testing.T) {
	h := newCk(t, CheckerConfig{History: 8, Deltas: []time.Duration{0, ms(10), ms(100)}})
	kWant := func(got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("k = %d, want %d", got, want)
		}
	}
	h.write("w1", "a", "", 0, ms(8), ms(10))
	// before any write was acknowledged: not stale, not scored
	kWant(h.read("r0", "a", 1, ms(5)), 0)
	// misses w1, 5ms after it, other coordinator: stale (k=1), t-vis bucket 0 unseen
	kWant(h.read("r1", "a", 1, ms(15)), 1)
	// w2 is blind: a sibling of w1
	h.write("w2", "a", "", 1, ms(18), ms(20))
	// sees w1 and w2, 5ms after w2: fresh, bucket 0 seen
	kWant(h.read("r2", "a", 2, ms(25), "w1", "w2"), 0)
	// w3 saw both (r2's context): it supersedes them
	h.write("w3", "a", "r2", 0, ms(28), ms(30))
	// begins exactly at w3's ack: w3 is not prior; latest prior w2 went
	// through coordinator 1 like the read: not scored for t-vis
	kWant(h.read("r3", "a", 1, ms(30), "w1", "w2"), 0)
	// 15ms after w3, misses it: stale k=1, bucket 1 unseen
	kWant(h.read("r4", "a", 2, ms(45), "w1", "w2"), 1)
	// misses w2 and w3: k=2; latest w3 via coordinator 0, as the read: not scored
	kWant(h.read("r5", "a", 0, ms(50), "w1"), 2)
	// 170ms after w3, sees it (and so everything it superseded): bucket 2 seen
	kWant(h.read("r6", "a", 2, ms(200), "w3"), 0)
	// a key never written
	kWant(h.read("r7", "b", 0, ms(210)), 0)
	// w4 is blind, concurrent with w3; the final R=N read lost it
	h.write("w4", "a", "", 1, ms(220), ms(230))
	h.c.Final("a", h.values([]string{"w3"}))
	h.c.Final("b", nil) // unknown key: ignored

	got := h.c.Result(true)
	want := Consistency{
		History:         8,
		Reads:           8,
		ReadsAfterWrite: 6,
		StaleReads:      3,
		StaleFraction:   3.0 / 8,
		KStaleness:      []int64{3, 2, 1, 0, 0, 0, 0, 0, 0},
		MeanK:           4.0 / 3,
		MaxK:            2,
		SameCoordinator: 2,
		TVisibility: []TVisPoint{
			{Delta: 0, Pairs: 2, Observed: 1, P: 0.5},
			{Delta: ms(10), Pairs: 1, Observed: 0, P: 0},
			{Delta: ms(100), Pairs: 1, Observed: 1, P: 1},
		},
		Siblings:    SiblingStats{Mean: 1, Max: 2, Distribution: []int64{3, 2, 3}},
		AckedWrites: 4,
		LostChecked: true,
		LostWrites:  1,
		Lost:        []LostWrite{{Key: "a", ID: h.ops["w4"].ID(), Coord: 1, Invoke: ms(220), Ack: ms(230)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result mismatch\n got %+v\nwant %+v", got, want)
	}
}

// TestCheckerTrustsOnlyWhatTheClientSaw: the planted merge bug keeps the
// newest of two concurrent writes and merges their clocks. A checker that
// asked the store's context would excuse the dropped one; this one counts
// it lost, and the read that missed it stale.
func TestCheckerTrustsOnlyWhatTheClientSaw(t *testing.T) {
	h := newCk(t, CheckerConfig{})
	h.write("a", "k", "", 0, ms(1), ms(2))
	h.write("b", "k", "", 1, ms(1), ms(3))
	if k := h.read("r", "k", 2, ms(5), "b"); k != 1 {
		t.Errorf("read of b alone: k = %d, want 1", k)
	}
	h.c.Final("k", h.values([]string{"b"}))
	r := h.c.Result(true)
	if r.LostWrites != 1 || r.Lost[0].ID != h.ops["a"].ID() || r.StaleReads != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestCheckerIndeterminateAndResurrected(t *testing.T) {
	h := newCk(t, CheckerConfig{})
	h.write("a", "k", "", 0, ms(1), ms(2))
	h.read("ra", "k", 1, ms(3), "a")
	h.write("b", "k", "ra", 0, ms(4), -1) // timed out
	h.read("rb", "k", 1, ms(6), "b")      // yet it landed
	h.write("c", "k", "rb", 2, ms(7), ms(8))
	h.read("back", "k", 1, ms(9), "a", "c") // a came back next to c
	h.c.Final("k", h.values([]string{"c"}))
	r := h.c.Result(true)
	if r.IndeterminateWrites != 1 || r.UnknownWrites != 1 || r.ResurrectedWrites != 1 || r.LostWrites != 0 {
		t.Fatalf("%+v", r)
	}
	if r.Resurrected[0].ID != h.ops["a"].ID() || r.Resurrected[0].By != h.ops["c"].ID() {
		t.Fatalf("resurrection %+v", r.Resurrected[0])
	}
}

func TestCheckerUnverifiedAndLimits(t *testing.T) {
	h := newCk(t, CheckerConfig{MaxLost: 1})
	for i, key := range []string{"a", "a", "b", "c", "c"} {
		h.write(string(rune('p'+i)), key, "", 0, ms(i), ms(i))
	}
	h.c.FinalFailed("a")
	h.c.Final("a", nil) // ignored: a was already finalized
	h.c.Final("b", nil) // lost: 1
	// c never finalized: unverified when the check ran
	got := h.c.Result(true)
	if got.LostWrites != 1 || len(got.Lost) != 1 || got.UnverifiedWrites != 4 {
		t.Errorf("lost %d (%d listed), unverified %d; want 1 (1), 4", got.LostWrites, len(got.Lost), got.UnverifiedWrites)
	}
	if keys := h.c.Keys(); !reflect.DeepEqual(keys, []string{"a", "b", "c"}) {
		t.Errorf("keys = %v", keys)
	}
	// Not checked: nothing about lost writes is claimed.
	got = h.c.Result(false)
	if got.LostChecked || got.LostWrites != 0 || got.Lost != nil || got.UnverifiedWrites != 0 {
		t.Errorf("unchecked result claims lost writes: %+v", got)
	}
	// MaxLost < 0 lists none but counts all.
	h2 := newCk(t, CheckerConfig{MaxLost: -1})
	h2.write("x", "x", "", 0, 0, ms(1))
	h2.c.Final("x", nil)
	if r := h2.c.Result(true); r.LostWrites != 1 || len(r.Lost) != 0 {
		t.Errorf("MaxLost -1: %d lost, %d listed", r.LostWrites, len(r.Lost))
	}
}

func TestCheckerTVisibilityBuckets(t *testing.T) {
	deltas := []time.Duration{ms(5), ms(10)}
	tests := []struct {
		name    string
		elapsed time.Duration
		bucket  int // -1: not scored
	}{
		{"below first bound", ms(4), -1},
		{"on first bound", ms(5), 0},
		{"inside first", ms(9), 0},
		{"on second bound", ms(10), 1},
		{"far past last", time.Hour, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newCk(t, CheckerConfig{Deltas: deltas})
			h.write("w", "k", "", 0, ms(99), ms(100))
			h.read("r", "k", 1, ms(100)+tc.elapsed, "w")
			got := h.c.Result(false).TVisibility
			for i, p := range got {
				want := int64(0)
				if i == tc.bucket {
					want = 1
				}
				if p.Pairs != want || p.Observed != want {
					t.Errorf("bucket %d: pairs %d observed %d, want %d", i, p.Pairs, p.Observed, want)
				}
			}
		})
	}
}

func TestCheckerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  CheckerConfig
		ok   bool
	}{
		{"zero is defaults", CheckerConfig{}, true},
		{"negative history", CheckerConfig{History: -1}, false},
		{"huge history", CheckerConfig{History: MaxHistory + 1}, false},
		{"unsorted deltas", CheckerConfig{Deltas: []time.Duration{ms(2), ms(1)}}, false},
		{"duplicate deltas", CheckerConfig{Deltas: []time.Duration{ms(1), ms(1)}}, false},
		{"negative delta", CheckerConfig{Deltas: []time.Duration{-1}}, false},
		{"too many deltas", CheckerConfig{Deltas: make([]time.Duration, MaxDeltas+1)}, false},
		{"huge max lost", CheckerConfig{MaxLost: MaxLostLimit + 1}, false},
		{"valid", CheckerConfig{History: 3, Deltas: []time.Duration{0, ms(1)}, MaxLost: 5}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if _, err := NewChecker(tc.cfg); (err == nil) != tc.ok {
				t.Errorf("NewChecker error %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
