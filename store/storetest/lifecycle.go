package storetest

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/internal/testfn"
)

func testMeta(t *testing.T, f Factory) {
	s := newStore(t, f)
	if err := s.PutMeta("epoch", []byte{0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("ring", []byte("members")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("epoch", []byte{0, 2}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("epoch"); err != nil || !bytes.Equal(v, []byte{0, 2}) {
		t.Fatalf("epoch = %v, %v", v, err)
	}
	if err := s.PutMeta("ring", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMeta("ring"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted meta: %v", err)
	}
	if err := s.PutMeta("", []byte{1}); !errors.Is(err, store.ErrEmptyName) {
		t.Fatalf("empty meta name: %v", err)
	}
	// The store's own meta: the storage format, which callers cannot write.
	if v, err := s.GetMeta(store.FormatMetaName); err != nil || len(v) != 4 {
		t.Fatalf("format meta = %x, %v", v, err)
	}
	if err := s.PutMeta(store.FormatMetaName, nil); !errors.Is(err, store.ErrReservedName) {
		t.Fatalf("PutMeta of the format meta: %v", err)
	}
	if ps, _ := s.Partitions(); len(ps) != 0 {
		t.Fatalf("meta counted as records: %v", ps)
	}
}

// testState: a new store is writable (a full disk is tested in package
// store, on a fake and on a real small file system).
func testState(t *testing.T, f Factory) {
	s := newStore(t, f)
	if st := s.State(); st.ReadOnly || st.Err != nil || st.Reason != "" {
		t.Fatalf("state of a new store: %+v", st)
	}
}

func testClose(t *testing.T, f Factory) {
	s := newStore(t, f)
	put(t, s, key(1, 1, "k"), "v")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["Get"] = s.Get(key(1, 1, "k"))
	_, _, checks["Update"] = s.Update(ctx, key(1, 1, "k"), false, set([]byte("x")))
	checks["Scan"] = s.Scan(1, 0, math.MaxUint64, func(store.Key, []byte) error { return nil })
	_, checks["Count"] = s.Count(1)
	_, checks["Partitions"] = s.Partitions()
	checks["DropPartition"] = s.DropPartition(1)
	_, _, checks["UpdateHint"] = s.UpdateHint(ctx, "n", key(1, 1, "k"), false, set([]byte("x")))
	_, checks["GetHint"] = s.GetHint("n", key(1, 1, "k"))
	checks["ScanHints"] = s.ScanHints("n", func(store.Key, []byte) error { return nil })
	_, checks["DeleteHintIf"] = s.DeleteHintIf(ctx, "n", key(1, 1, "k"), nil)
	checks["PutMeta"] = s.PutMeta("m", []byte("x"))
	_, checks["GetMeta"] = s.GetMeta("m")
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// testConcurrentIncrements: many goroutines read-modify-write a few keys;
// no increment may be lost.
func testConcurrentIncrements(t *testing.T, f Factory) {
	s := newStore(t, f)
	const (
		workers = 16
		perW    = 100
		nkeys   = 3
	)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perW {
				k := key(uint32((w+i)%nkeys), uint64(i%nkeys), "ctr")
				var err error
				if i%2 == 0 {
					_, _, err = s.UpdateHint(ctx, "n1", k, i%10 == 0, testfn.Incr)
				} else {
					_, _, err = s.Update(ctx, k, i%10 == 1, testfn.Incr)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total, hints := 0, 0
	for p := range uint32(nkeys) {
		for h := range uint64(nkeys) {
			if v, err := s.Get(key(p, h, "ctr")); err == nil {
				n, _ := strconv.Atoi(string(v))
				total += n
			}
			if v, err := s.GetHint("n1", key(p, h, "ctr")); err == nil {
				n, _ := strconv.Atoi(string(v))
				hints += n
			}
		}
	}
	if want := workers * perW / 2; total != want || hints != want {
		t.Fatalf("records sum %d, hints sum %d; want %d each", total, hints, want)
	}
}

func testReopen(t *testing.T, f Factory) {
	c := &clock{now: time.Unix(1234, 0)}
	o := Options(t)
	o.Now = c.Now
	s, reopen := f(t, o)
	if reopen == nil {
		t.Skip("store does not persist")
	}
	ctx := t.Context()
	for i := range 100 {
		put(t, s, key(uint32(i%4), uint64(i), "k"+strconv.Itoa(i)), "v"+strconv.Itoa(i))
	}
	if _, _, err := s.Update(ctx, key(0, 0, "k0"), false, del); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, _, err := s.UpdateHint(ctx, "n"+strconv.Itoa(i%2), key(1, uint64(i), "h"), i == 0, set([]byte("hint"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMeta("epoch", []byte{7}); err != nil {
		t.Fatal(err)
	}
	before := map[string]store.HintStats{"n0": s.HintStats("n0"), "n1": s.HintStats("n1")}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = reopen()
	wantMissing(t, s, key(0, 0, "k0"))
	for i := 1; i < 100; i++ {
		wantGet(t, s, key(uint32(i%4), uint64(i), "k"+strconv.Itoa(i)), "v"+strconv.Itoa(i))
	}
	if ps, _ := s.Partitions(); !slices.Equal(ps, []uint32{0, 1, 2, 3}) {
		t.Fatalf("partitions after reopen: %v", ps)
	}
	for tg, st := range before {
		got := s.HintStats(tg)
		if got.Count != 5 || got.Count != st.Count || got.Bytes != st.Bytes || !got.Oldest.Equal(time.Unix(1234, 0)) {
			t.Fatalf("hint stats of %s after reopen %+v, before %+v", tg, got, st)
		}
	}
	if v, err := s.GetMeta("epoch"); err != nil || !bytes.Equal(v, []byte{7}) {
		t.Fatalf("meta after reopen: %v %v", v, err)
	}
	// Still writable.
	put(t, s, key(0, 0, "k0"), "back")
	wantGet(t, s, key(0, 0, "k0"), "back")
}
