package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDisk is a settable statfs for Options.statfs.
type fakeDisk struct {
	avail, total atomic.Uint64
	calls        atomic.Int64
	used         atomic.Pointer[func() uint64] // bytes written so far, if set
}

func newFakeDisk(avail, total uint64) *fakeDisk {
	d := &fakeDisk{}
	d.avail.Store(avail)
	d.total.Store(total)
	return d
}

func (d *fakeDisk) statfs(string) (uint64, uint64, error) {
	d.calls.Add(1)
	avail := d.avail.Load()
	if used := d.used.Load(); used != nil {
		avail -= min(avail, (*used)())
	}
	return avail, d.total.Load(), nil
}

const (
	testReserve = 64 << 20
	gib         = 1 << 30
)

// guardOptions: a store on disk whose free space is d's, with a 64 MiB
// reserve checked every interval.
func guardOptions(t *testing.T, d *fakeDisk, interval time.Duration) Options {
	o := testOptions(t, t.TempDir())
	o.MinFreeBytes, o.MinFreePercent = testReserve, 0
	o.DiskCheckInterval = interval
	o.statfs = d.statfs
	return o
}

func wantDiskFull(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("%s: %v, want ErrDiskFull", what, err)
	}
}

// TestDiskGuardReadOnlyAndBack: below the reserve, record and hint writes
// are refused with ErrDiskFull and State says why, reads go on, meta writes
// and deletes may use the upper half of the reserve; once space is back the
// store is writable again by itself.
func TestDiskGuardReadOnlyAndBack(t *testing.T) {
	d := newFakeDisk(10*gib, 100*gib)
	s := openTest(t, guardOptions(t, d, 5*time.Millisecond))
	ctx := t.Context()
	k := Key{Key: []byte("k")}
	mustSet(t, s, k, "v1")
	if st := s.State(); st.ReadOnly || st.AvailBytes != 10*gib || st.ReserveBytes != testReserve {
		t.Fatalf("state with room: %+v", st)
	}

	d.avail.Store(testReserve - 1) // someone else filled the disk
	waitFor(t, "read-only state", func() bool { return s.State().ReadOnly })
	st := s.State()
	if !errors.Is(st.Err, ErrDiskFull) || !strings.Contains(st.Reason, "disk nearly full") || st.AvailBytes != testReserve-1 {
		t.Fatalf("read-only state: %+v", st)
	}
	_, _, err := s.Update(ctx, k, false, setTo("v2"))
	wantDiskFull(t, "record write", err)
	_, _, err = s.UpdateHint(ctx, "n2", k, false, setTo("h"))
	wantDiskFull(t, "hint write", err)
	if v, err := s.Get(k); err != nil || string(v) != "v1" {
		t.Fatalf("read while full: %q, %v", v, err)
	}
	// Meta values and deletes keep the node running and free space later.
	if err := s.PutMeta("m", []byte("x")); err != nil {
		t.Fatalf("meta write above half the reserve: %v", err)
	}
	if _, _, err := s.Update(ctx, k, false, func([]byte, bool) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatalf("delete above half the reserve: %v", err)
	}
	d.avail.Store(testReserve/2 - 1)
	waitFor(t, "figure below half the reserve", func() bool { return s.State().AvailBytes == testReserve/2-1 })
	wantDiskFull(t, "meta write below half the reserve", s.PutMeta("m", []byte("y")))

	// Inside the hysteresis band it stays read-only.
	d.avail.Store(testReserve + 1)
	waitFor(t, "figure in the band", func() bool { return s.State().AvailBytes == testReserve+1 })
	_, _, err = s.Update(ctx, k, false, setTo("v3"))
	wantDiskFull(t, "record write just above the reserve", err)

	d.avail.Store(10 * gib)
	waitFor(t, "writable again", func() bool { return !s.State().ReadOnly })
	if _, _, err := s.Update(ctx, k, false, setTo("v4")); err != nil {
		t.Fatalf("write after space is back: %v", err)
	}
	if st := s.State(); st.Reason != "" || st.Err != nil {
		t.Fatalf("writable state: %+v", st)
	}
}

// TestDiskGuardChargesWritesBetweenChecks: writes accepted since the last
// statfs are charged against its figure, so a burst between two checks
// cannot run into the reserve; a large write checks first.
func TestDiskGuardChargesWritesBetweenChecks(t *testing.T) {
	d := newFakeDisk(testReserve+1<<20, 100*gib) // 1 MiB above the reserve
	s := openTest(t, guardOptions(t, d, time.Hour))
	val := bytes.Repeat([]byte{'x'}, 16<<10) // charged about 32 KiB
	// A re-measure (before a refusal) sees what the committed writes took.
	used := func() uint64 {
		return s.Stats().Writes * uint64(writeCost(appendRecordKey(nil, Key{Key: []byte("k")}), val))
	}
	d.used.Store(&used)
	refused := -1
	for i := range 64 {
		if _, _, err := s.Update(t.Context(), Key{Hash: uint64(i), Key: []byte("k")}, false, func([]byte, bool) ([]byte, error) {
			return val, nil
		}); err != nil {
			wantDiskFull(t, "write past the figure", err)
			refused = i
			break
		}
	}
	// 1 MiB of room at ~32 KiB per write: about 31 writes fit.
	if refused < 25 || refused > 33 {
		t.Fatalf("first refusal at write %d, want about 31", refused)
	}
	if !s.State().ReadOnly {
		t.Fatal("refusal did not turn the state read-only")
	}
}

// TestDiskGuardLargeWriteChecks: a write charged 1 MiB or more measures
// the free space first instead of trusting the last figure.
func TestDiskGuardLargeWriteChecks(t *testing.T) {
	d := newFakeDisk(10*gib, 100*gib)
	o := guardOptions(t, d, time.Hour)
	o.MaxValueSize, o.ValueThreshold = 600<<10, 64<<10
	s := openTest(t, o)
	big := bytes.Repeat([]byte{'x'}, 520<<10)
	if writeCost([]byte("k"), big) < largeWrite {
		t.Fatal("test value is not a large write")
	}
	put := func() error {
		_, _, err := s.Update(t.Context(), Key{Key: []byte("k")}, false, func([]byte, bool) ([]byte, error) { return big, nil })
		return err
	}
	calls := d.calls.Load()
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if d.calls.Load() == calls {
		t.Fatal("a large write did not measure the free space first")
	}
	d.avail.Store(testReserve) // the hourly check would not see this
	wantDiskFull(t, "large write on a full disk", put())
}

// TestDiskGuardOff: both settings 0 turn the guard off; Validate refuses
// bad settings.
func TestDiskGuardOff(t *testing.T) {
	d := newFakeDisk(0, 100*gib)
	o := guardOptions(t, d, time.Millisecond)
	o.MinFreeBytes, o.MinFreePercent = 0, 0
	s := openTest(t, o)
	if _, _, err := s.Update(t.Context(), Key{Key: []byte("k")}, false, setTo("v")); err != nil {
		t.Fatalf("write with the guard off: %v", err)
	}
	if d.calls.Load() != 0 {
		t.Fatal("guard off, yet statfs was called")
	}
	if st := s.State(); st.ReadOnly || st.ReserveBytes != 0 {
		t.Fatalf("state with the guard off: %+v", st)
	}
}

// TestDiskGuardPercent: the reserve is the larger of the two settings.
func TestDiskGuardPercent(t *testing.T) {
	d := newFakeDisk(10*gib, 100*gib)
	o := guardOptions(t, d, time.Hour)
	o.MinFreePercent = 5
	s := openTest(t, o)
	if st := s.State(); st.ReserveBytes != 5*gib {
		t.Fatalf("reserve %d, want 5%% of 100 GiB", st.ReserveBytes)
	}
}

// TestOpenReadOnlyWhenFull: a cleanly closed store opened with less free
// space than badger needs to open for writing opens read-only: reads
// served (also while it waits to reopen), every write refused with
// ErrDiskFull; once space is back it reopens for writing by itself.
func TestOpenReadOnlyWhenFull(t *testing.T) {
	d := newFakeDisk(10*gib, 100*gib)
	o := guardOptions(t, d, 5*time.Millisecond)
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustSet(t, s, Key{Hash: uint64(i), Key: []byte("k")}, strconv.Itoa(i))
	}
	if _, _, err := s.UpdateHint(t.Context(), "n2", Key{Key: []byte("h")}, false, setTo("hint")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	d.avail.Store(1 << 20) // below what badger needs to open for writing
	s = openTest(t, o)
	st := s.State()
	if !st.ReadOnly || !s.readOnlyOpen.Load() || !strings.Contains(st.Reason, "opened read-only") || !errors.Is(st.Err, ErrDiskFull) {
		t.Fatalf("state after opening on a full disk: %+v", st)
	}
	if v, err := s.Get(Key{Hash: 7, Key: []byte("k")}); err != nil || string(v) != "7" {
		t.Fatalf("read: %q, %v", v, err)
	}
	if v, err := s.GetHint("n2", Key{Key: []byte("h")}); err != nil || string(v) != "hint" {
		t.Fatalf("hint read: %q, %v", v, err)
	}
	_, _, err = s.Update(t.Context(), Key{Key: []byte("new")}, false, setTo("x"))
	wantDiskFull(t, "record write", err)
	wantDiskFull(t, "meta write", s.PutMeta("m", []byte("x")))
	wantDiskFull(t, "drop partition", s.DropPartition(0))

	// Readers keep going while space comes back and the store reopens.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr atomic.Value
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if v, err := s.Get(Key{Hash: uint64(i % 100), Key: []byte("k")}); err != nil || string(v) != strconv.Itoa(i%100) {
				readErr.Store(errors.Join(err, errors.New("value "+string(v))))
				return
			}
		}
	})
	d.avail.Store(10 * gib)
	waitFor(t, "reopened for writing", func() bool { return !s.State().ReadOnly })
	close(stop)
	wg.Wait()
	if e := readErr.Load(); e != nil {
		t.Fatalf("read during the reopen: %v", e)
	}
	if _, _, err := s.Update(t.Context(), Key{Key: []byte("new")}, false, setTo("x")); err != nil {
		t.Fatalf("write after reopening: %v", err)
	}
	if v, err := s.GetHint("n2", Key{Key: []byte("h")}); err != nil || string(v) != "hint" {
		t.Fatalf("hint after reopening: %q, %v", v, err)
	}
}

// TestOpenFullAfterUncleanStop: with write-ahead logs to replay (the last
// run did not close cleanly) and no room to replay them, Open fails with
// ErrDiskFull instead of letting badger crash the process.
func TestOpenFullAfterUncleanStop(t *testing.T) {
	d := newFakeDisk(10*gib, 100*gib)
	o := guardOptions(t, d, time.Hour)
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A write-ahead log left behind, as a kill -9 leaves it.
	if err := os.WriteFile(filepath.Join(o.Dir, "00009.mem"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	d.avail.Store(1 << 20)
	s, err = Open(o)
	if err == nil {
		s.Close()
		t.Fatal("opened with a log to replay and no room")
	}
	wantDiskFull(t, "open", err)
	if !strings.Contains(err.Error(), "did not close cleanly") {
		t.Fatalf("error does not say why: %v", err)
	}
}
