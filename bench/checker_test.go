package bench

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// dots is an Observed that covers exactly the listed writes (no version
// vector closure), so tests state precisely what each read saw.
type dots []WriteID

func (d dots) Covers(id WriteID) bool {
	for _, x := range d {
		if x == id {
			return true
		}
	}
	return false
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// step is one event of a synthetic history: a write, a read, or the final
// check of a key (fin), fed in order.
type step struct {
	w    *WriteEvent
	r    *ReadEvent
	fin  string
	obs  Observed // for fin
	fail bool     // for fin: the final read failed
	k    int      // for r: the expected k-staleness
}

func feed(t *testing.T, c *Checker, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch {
		case s.w != nil:
			c.Write(*s.w)
		case s.r != nil:
			if k := c.Read(*s.r); k != s.k {
				t.Errorf("step %d: read of %s at %v: k = %d, want %d", i, s.r.Key, s.r.Invoke, k, s.k)
			}
		case s.fail:
			c.FinalFailed(s.fin)
		default:
			c.Final(s.fin, s.obs)
		}
	}
}

var (
	w1 = WriteID{Node: "n1", Epoch: 1, Counter: 1}
	w2 = WriteID{Node: "n2", Epoch: 1, Counter: 1}
	w3 = WriteID{Node: "n1", Epoch: 1, Counter: 2}
)

// TestCheckerSyntheticHistory is the checker's acceptance test: a history
// with known stale reads, k-staleness, t-visibility and one lost write
// must produce exactly those figures.
func TestCheckerSyntheticHistory(t *testing.T) {
	deltas := []time.Duration{0, ms(10), ms(100)}
	history := []step{
		{w: &WriteEvent{Key: "a", ID: w1, Coord: 0, Invoke: ms(8), Ack: ms(10)}},
		// before any write was acknowledged: not stale, not scored
		{r: &ReadEvent{Key: "a", Coord: 1, Invoke: ms(5), Siblings: 0}},
		// misses w1, 5ms after it, other coordinator: stale (k=1), t-vis bucket 0 unseen
		{r: &ReadEvent{Key: "a", Coord: 1, Invoke: ms(15), Siblings: 1, Found: true, Observed: dots{}}, k: 1},
		{w: &WriteEvent{Key: "a", ID: w2, Coord: 1, Invoke: ms(18), Ack: ms(20)}},
		// sees w1 and w2, 5ms after w2: fresh, bucket 0 seen
		{r: &ReadEvent{Key: "a", Coord: 2, Invoke: ms(25), Siblings: 2, Found: true, Observed: dots{w1, w2}}},
		{w: &WriteEvent{Key: "a", ID: w3, Coord: 0, Invoke: ms(28), Ack: ms(30)}},
		// begins exactly at w3's ack: w3 is not prior; latest prior w2 went
		// through coordinator 1 like the read: not scored for t-vis
		{r: &ReadEvent{Key: "a", Coord: 1, Invoke: ms(30), Siblings: 1, Found: true, Observed: dots{w1, w2}}},
		// 15ms after w3, misses it: stale k=1, bucket 1 unseen
		{r: &ReadEvent{Key: "a", Coord: 1, Invoke: ms(45), Siblings: 1, Found: true, Observed: dots{w1, w2}}, k: 1},
		// misses w2 and w3: k=2; latest w3 via coordinator 0, as the read: not scored
		{r: &ReadEvent{Key: "a", Coord: 0, Invoke: ms(50), Siblings: 1, Found: true, Observed: dots{w1}}, k: 2},
		// 170ms after w3, sees all: bucket 2 seen
		{r: &ReadEvent{Key: "a", Coord: 2, Invoke: ms(200), Siblings: 1, Found: true, Observed: dots{w1, w2, w3}}},
		// a key never written
		{r: &ReadEvent{Key: "b", Coord: 0, Invoke: ms(210), Siblings: 0}},
		// the final R=N read lost w2
		{fin: "a", obs: dots{w1, w3}},
		{fin: "b", obs: dots{}}, // unknown key: ignored
	}
	c, err := NewChecker(CheckerConfig{History: 8, Deltas: deltas})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, c, history)
	got := c.Result(true)
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
		Siblings:    SiblingStats{Mean: 7.0 / 8, Max: 2, Distribution: []int64{2, 5, 1}},
		AckedWrites: 3,
		LostChecked: true,
		LostWrites:  1,
		Lost:        []LostWrite{{Key: "a", ID: w2, Coord: 1, Ack: ms(20)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result mismatch\n got %+v\nwant %+v", got, want)
	}
}

// vvObs builds a version-vector Observed: node -> highest counter covered.
func vvObs(kv ...any) vv {
	v := vv{}
	for i := 0; i < len(kv); i += 2 {
		v[kv[i].(string)] = uint64(kv[i+1].(int))
	}
	return v
}

func TestCheckerBoundedHistory(t *testing.T) {
	// Four writes through n1 to one key, History 2: the ring keeps the
	// last two, the newest evicted dot stands for the older ones.
	writes := func() []step {
		var s []step
		for i := 1; i <= 4; i++ {
			s = append(s, step{w: &WriteEvent{Key: "k", ID: WriteID{Node: "n1", Epoch: 1, Counter: uint64(i)}, Coord: 0, Ack: ms(10 * i)}})
		}
		return s
	}
	lost := func(counters ...int) []LostWrite {
		var l []LostWrite
		for _, c := range counters {
			l = append(l, LostWrite{Key: "k", ID: WriteID{Node: "n1", Epoch: 1, Counter: uint64(c)}, Coord: 0, Ack: ms(10 * c)})
		}
		return l
	}
	tests := []struct {
		name       string
		final      Observed
		wantLost   []LostWrite
		wantCount  int64
		readObs    Observed
		wantK      int
		wantCapped int64
	}{
		{name: "all covered", final: vvObs("n1", 4), readObs: vvObs("n1", 4)},
		{name: "last two lost", final: vvObs("n1", 2), wantLost: lost(3, 4), wantCount: 2, readObs: vvObs("n1", 3), wantK: 1},
		// w2 is found through the evicted frontier; w1 is covered.
		{name: "three lost", final: vvObs("n1", 1), wantLost: lost(3, 4, 2), wantCount: 3, readObs: vvObs(), wantK: 2, wantCapped: 1},
		// w1 and w2 are both lost but only the frontier w2 is known: the
		// documented undercount for evicted writes.
		{name: "nothing covered", final: nil, wantLost: lost(3, 4, 2), wantCount: 3, readObs: nil, wantK: 2, wantCapped: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChecker(CheckerConfig{History: 2})
			if err != nil {
				t.Fatal(err)
			}
			h := append(writes(),
				step{r: &ReadEvent{Key: "k", Coord: 1, Invoke: ms(100), Found: true, Siblings: 1, Observed: tc.readObs}, k: tc.wantK},
				step{fin: "k", obs: tc.final})
			feed(t, c, h)
			got := c.Result(true)
			if got.LostWrites != tc.wantCount || !reflect.DeepEqual(got.Lost, tc.wantLost) {
				t.Errorf("lost = %d %+v, want %d %+v", got.LostWrites, got.Lost, tc.wantCount, tc.wantLost)
			}
			if got.KCapped != tc.wantCapped {
				t.Errorf("k capped = %d, want %d", got.KCapped, tc.wantCapped)
			}
			if got.AckedWrites != 4 {
				t.Errorf("acked = %d, want 4", got.AckedWrites)
			}
		})
	}
}

func TestCheckerUnverifiedAndLimits(t *testing.T) {
	c, err := NewChecker(CheckerConfig{MaxLost: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range []string{"a", "a", "b", "c", "c"} {
		c.Write(WriteEvent{Key: key, ID: WriteID{Node: "n", Epoch: 1, Counter: uint64(i + 1)}, Ack: ms(i)})
	}
	c.FinalFailed("a")
	c.Final("a", nil) // ignored: a was already finalized
	c.Final("b", nil) // lost: 1
	// c never finalized: unverified when the check ran
	got := c.Result(true)
	if got.LostWrites != 1 || len(got.Lost) != 1 || got.UnverifiedWrites != 4 {
		t.Errorf("lost %d (%d listed), unverified %d; want 1 (1), 4", got.LostWrites, len(got.Lost), got.UnverifiedWrites)
	}
	if keys := c.Keys(); !reflect.DeepEqual(keys, []string{"a", "b", "c"}) {
		t.Errorf("keys = %v", keys)
	}
	// Not checked: nothing about lost writes is claimed.
	got = c.Result(false)
	if got.LostChecked || got.LostWrites != 0 || got.Lost != nil || got.UnverifiedWrites != 0 {
		t.Errorf("unchecked result claims lost writes: %+v", got)
	}
	// MaxLost < 0 lists none but counts all.
	c2, _ := NewChecker(CheckerConfig{MaxLost: -1})
	c2.Write(WriteEvent{Key: "x", ID: w1})
	c2.Final("x", nil)
	if r := c2.Result(true); r.LostWrites != 1 || len(r.Lost) != 0 {
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
			c, _ := NewChecker(CheckerConfig{Deltas: deltas})
			c.Write(WriteEvent{Key: "k", ID: w1, Coord: 0, Ack: ms(100)})
			c.Read(ReadEvent{Key: "k", Coord: 1, Invoke: ms(100) + tc.elapsed, Observed: dots{w1}})
			got := c.Result(false).TVisibility
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

// naiveResult recomputes the checker's figures from the whole history by
// brute force: every write kept, every pair examined.
type naiveWrite struct {
	key   string
	id    WriteID
	coord int
	ack   time.Duration
}

func naive(deltas []time.Duration, writes []naiveWrite, reads []ReadEvent, order []int, finals map[string]Observed) (stale, kSum int64, pairs, seen []int64, lost int64) {
	pairs = make([]int64, len(deltas))
	seen = make([]int64, len(deltas))
	var fed []naiveWrite
	wi, ri := 0, 0
	for _, kind := range order {
		if kind == 0 {
			fed = append(fed, writes[wi])
			wi++
			continue
		}
		r := reads[ri]
		ri++
		behind := 0
		var latest *naiveWrite
		for i := range fed {
			w := &fed[i]
			if w.key != r.Key || w.ack >= r.Invoke {
				continue
			}
			if !covers(r.Observed, w.id) {
				behind++
			}
			if latest == nil || w.ack > latest.ack {
				latest = w
			}
		}
		if behind > 0 {
			stale++
			kSum += int64(behind)
		}
		if latest == nil || latest.coord == r.Coord {
			continue
		}
		d := r.Invoke - latest.ack
		b := -1
		for i, x := range deltas {
			if d >= x {
				b = i
			}
		}
		if b >= 0 {
			pairs[b]++
			if covers(r.Observed, latest.id) {
				seen[b]++
			}
		}
	}
	for _, w := range writes {
		if !covers(finals[w.key], w.id) {
			lost++
		}
	}
	return
}

// TestCheckerMatchesNaiveModel: with History large enough that nothing is
// evicted, the checker agrees with a brute-force model on random histories
// (arbitrary Observed sets, no version-vector structure assumed).
func TestCheckerMatchesNaiveModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		deltas := []time.Duration{0, ms(3), ms(7)}
		keys := []string{"a", "b", "c"}
		n := rapid.IntRange(1, 60).Draw(t, "events")
		var writes []naiveWrite
		var reads []ReadEvent
		var order []int
		for i := range n {
			key := keys[rapid.IntRange(0, len(keys)-1).Draw(t, "key")]
			at := ms(rapid.IntRange(0, 40).Draw(t, "at"))
			coord := rapid.IntRange(0, 2).Draw(t, "coord")
			if rapid.Bool().Draw(t, "isWrite") {
				id := WriteID{Node: "n" + string(rune('0'+coord)), Epoch: 1, Counter: uint64(i + 1)}
				writes = append(writes, naiveWrite{key: key, id: id, coord: coord, ack: at})
				order = append(order, 0)
				continue
			}
			// The read observes a random subset of the writes so far.
			var obs dots
			for _, w := range writes {
				if rapid.Bool().Draw(t, "sees") {
					obs = append(obs, w.id)
				}
			}
			reads = append(reads, ReadEvent{Key: key, Coord: coord, Invoke: at, Observed: obs, Siblings: 1})
			order = append(order, 1)
		}
		finals := map[string]Observed{}
		for _, k := range keys {
			var obs dots
			for _, w := range writes {
				if rapid.Bool().Draw(t, "finalSees") {
					obs = append(obs, w.id)
				}
			}
			finals[k] = obs
		}

		c, err := NewChecker(CheckerConfig{History: 64, Deltas: deltas, MaxLost: -1})
		if err != nil {
			t.Fatal(err)
		}
		wi, ri := 0, 0
		for _, kind := range order {
			if kind == 0 {
				w := writes[wi]
				wi++
				c.Write(WriteEvent{Key: w.key, ID: w.id, Coord: w.coord, Ack: w.ack})
			} else {
				c.Read(reads[ri])
				ri++
			}
		}
		for _, k := range keys {
			c.Final(k, finals[k])
		}
		got := c.Result(true)
		stale, kSum, pairs, seen, lost := naive(deltas, writes, reads, order, finals)
		if got.StaleReads != stale {
			t.Fatalf("stale = %d, naive %d", got.StaleReads, stale)
		}
		if stale > 0 && got.MeanK != float64(kSum)/float64(stale) {
			t.Fatalf("mean k = %v, naive %v", got.MeanK, float64(kSum)/float64(stale))
		}
		for i, p := range got.TVisibility {
			if p.Pairs != pairs[i] || p.Observed != seen[i] {
				t.Fatalf("bucket %d: %d/%d, naive %d/%d", i, p.Observed, p.Pairs, seen[i], pairs[i])
			}
		}
		if got.LostWrites != lost {
			t.Fatalf("lost = %d, naive %d", got.LostWrites, lost)
		}
	})
}
