package storetest

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store"
)

func testHints(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	k := key(4, 9, "k")
	appendHint := func(x string) store.UpdateFunc {
		return func(old []byte, _ bool) ([]byte, error) { return append(slices.Clone(old), x...), nil }
	}
	for _, x := range []string{"a", "b", "c"} {
		if _, _, err := s.UpdateHint(ctx, "n2", k, false, appendHint(x)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.GetHint("n2", k); err != nil || string(v) != "abc" {
		t.Fatalf("merged hint = %q, %v", v, err)
	}
	// One hint per key and target.
	if st := s.HintStats("n2"); st.Count != 1 {
		t.Fatalf("stats after merges = %+v", st)
	}
	// Hints are not records.
	wantMissing(t, s, k)
	if n, _ := s.Count(4); n != 0 {
		t.Fatalf("hint counted as record")
	}
	old, nv, err := s.UpdateHint(ctx, "n2", k, false, del)
	if err != nil || string(old) != "abc" || nv != nil {
		t.Fatalf("delete hint: %q %q %v", old, nv, err)
	}
	if _, err := s.GetHint("n2", k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted hint: %v", err)
	}
	if st := s.HintStats("n2"); st.Count != 0 || st.Bytes != 0 || !st.Oldest.IsZero() {
		t.Fatalf("stats after delete = %+v", st)
	}
	if ts := s.HintTargets(); len(ts) != 0 {
		t.Fatalf("targets after delete = %v", ts)
	}
}

func testHintTargets(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	// "a" is a byte prefix of "ab": the length byte keeps their spaces apart.
	targets := []string{"ab", "a", "b"}
	for i, tg := range targets {
		for j := range i + 1 {
			k := key(uint32(j), uint64(10-j), "k"+strconv.Itoa(j))
			if _, _, err := s.UpdateHint(ctx, tg, k, false, set([]byte(tg))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ts := s.HintTargets(); !slices.Equal(ts, []string{"a", "ab", "b"}) {
		t.Fatalf("targets = %v", ts)
	}
	for i, tg := range targets {
		var got []store.Key
		err := s.ScanHints(tg, func(k store.Key, v []byte) error {
			if string(v) != tg {
				t.Errorf("target %s: hint %q", tg, v)
			}
			got = append(got, store.Key{Partition: k.Partition, Hash: k.Hash, Key: slices.Clone(k.Key)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != i+1 {
			t.Fatalf("target %s: %d hints, want %d", tg, len(got), i+1)
		}
		for j := 1; j < len(got); j++ { // (partition, hash, key) order
			if got[j-1].Partition >= got[j].Partition {
				t.Fatalf("target %s: out of order %v", tg, got)
			}
		}
		if st := s.HintStats(tg); st.Count != i+1 || st.Bytes <= 0 {
			t.Fatalf("target %s stats %+v", tg, st)
		}
	}
	stop := errors.New("stop")
	if err := s.ScanHints("b", func(store.Key, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("ScanHints fn error = %v", err)
	}
	if err := s.ScanHints("none", func(store.Key, []byte) error { return stop }); err != nil {
		t.Fatalf("ScanHints of unknown target = %v", err)
	}
}

func testDeleteHintIf(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	k := key(1, 1, "k")
	if ok, err := s.DeleteHintIf(ctx, "n1", k, []byte("x")); err != nil || ok {
		t.Fatalf("delete missing hint: %v %v", ok, err)
	}
	if _, _, err := s.UpdateHint(ctx, "n1", k, false, set([]byte("v1"))); err != nil {
		t.Fatal(err)
	}
	// Read for delivery, then a newer write merges into the hint.
	delivered, _ := s.GetHint("n1", k)
	if _, _, err := s.UpdateHint(ctx, "n1", k, false, set([]byte("v2"))); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeleteHintIf(ctx, "n1", k, delivered); err != nil || ok {
		t.Fatalf("stale delete: %v %v", ok, err)
	}
	if v, _ := s.GetHint("n1", k); string(v) != "v2" {
		t.Fatalf("hint after stale delete = %q", v)
	}
	if ok, err := s.DeleteHintIf(ctx, "n1", k, []byte("v2")); err != nil || !ok {
		t.Fatalf("matching delete: %v %v", ok, err)
	}
	if _, err := s.GetHint("n1", k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("hint after delete: %v", err)
	}
	if st := s.HintStats("n1"); st.Count != 0 {
		t.Fatalf("stats after delete: %+v", st)
	}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func testHintStats(t *testing.T, f Factory) {
	c := &clock{now: time.Unix(1000, 0)}
	o := Options(t)
	o.Now = c.Now
	s, _ := f(t, o)
	ctx := t.Context()
	hint := func(i int, v string) {
		t.Helper()
		if _, _, err := s.UpdateHint(ctx, "n1", key(0, uint64(i), "k"), false, set([]byte(v))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		c.Set(time.Unix(int64(1000+i*10), 0))
		hint(i, "0123456789")
	}
	st := s.HintStats("n1")
	if st.Count != 5 || !st.Oldest.Equal(time.Unix(1000, 0)) {
		t.Fatalf("stats %+v", st)
	}
	bytes5 := st.Bytes
	// Merging keeps the creation time and updates the size.
	c.Set(time.Unix(5000, 0))
	hint(0, "0123456789abc")
	st = s.HintStats("n1")
	if st.Count != 5 || !st.Oldest.Equal(time.Unix(1000, 0)) || st.Bytes != bytes5+3 {
		t.Fatalf("stats after merge %+v (bytes before %d)", st, bytes5)
	}
	// Deleting the oldest moves Oldest to the next one.
	if _, _, err := s.UpdateHint(ctx, "n1", key(0, 0, "k"), false, del); err != nil {
		t.Fatal(err)
	}
	if st = s.HintStats("n1"); st.Count != 4 || !st.Oldest.Equal(time.Unix(1010, 0)) {
		t.Fatalf("stats after deleting the oldest %+v", st)
	}
	// Expire hints first written before 1030: 1010 and 1020 go.
	n, err := s.ExpireHints(ctx, "n1", time.Unix(1030, 0))
	if err != nil || n != 2 {
		t.Fatalf("ExpireHints = %d, %v; want 2", n, err)
	}
	if st = s.HintStats("n1"); st.Count != 2 || !st.Oldest.Equal(time.Unix(1030, 0)) {
		t.Fatalf("stats after expiry %+v", st)
	}
	if _, err := s.GetHint("n1", key(0, 3, "k")); err != nil {
		t.Fatalf("young hint expired: %v", err)
	}
	n, err = s.DropHints(ctx, "n1")
	if err != nil || n != 2 {
		t.Fatalf("DropHints = %d, %v; want 2", n, err)
	}
	if st = s.HintStats("n1"); st.Count != 0 || st.Bytes != 0 || !st.Oldest.IsZero() {
		t.Fatalf("stats after drop %+v", st)
	}
}
