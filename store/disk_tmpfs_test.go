package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests in this file fill a real (small) file system: a tmpfs they
// mount. Before the disk guard, a store on a full disk died with SIGBUS
// inside badger (a memtable flush copying into a memory-mapped table; on
// restart, the replay of the write-ahead log reading past its end) and
// crash-looped.

// mountTmpfs mounts a tmpfs of size bytes on a new directory (unmounted
// at cleanup), or skips loudly where this machine does not allow it.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: mounting a tmpfs needs root, so the full-disk behaviour is NOT tested on a real file system here")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("SKIPPED: cannot mount a tmpfs (%v), so the full-disk behaviour is NOT tested on a real file system here", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// tmpfsOptions: a store sized for a 64 MiB file system, with a 20 MiB
// reserve checked every 20 ms.
func tmpfsOptions(t testing.TB, dir string) Options {
	o := testOptions(t, dir)
	o.MemTableSize = 1 << 20
	o.ValueThreshold = 64 << 10
	o.MaxValueSize = 64 << 10
	o.ValueLogFileSize = 1 << 20
	o.MinFreeBytes, o.MinFreePercent = 20<<20, 0
	o.DiskCheckInterval = 20 * time.Millisecond
	return o
}

// fillValue is the value of key n: 4 KiB that do not compress.
func fillValue(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, 4096)
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func fillKey(n int) Key {
	return Key{Partition: uint32(n % 7), Hash: uint64(n), Key: []byte(fmt.Sprint("k", n))}
}

// writeBallast writes a file of n bytes of random data (tmpfs allocates
// every page).
func writeBallast(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for n > 0 {
		chunk := fillValue(int(n))
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatalf("write ballast: %v", err)
		}
		n -= int64(len(chunk))
	}
}

// fillUntilRefused writes distinct keys from 4 writers until each is
// refused, and returns the keys acknowledged. Every refusal must be
// ErrDiskFull.
func fillUntilRefused(t *testing.T, s *Store, from int) []int {
	t.Helper()
	var mu sync.Mutex
	var acked []int
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := from + w; ; n += 4 {
				val := fillValue(n)
				_, _, err := s.Update(t.Context(), fillKey(n), false, func([]byte, bool) ([]byte, error) { return val, nil })
				if err != nil {
					if !errors.Is(err, ErrDiskFull) {
						t.Errorf("writer %d: refused with %v, want ErrDiskFull", w, err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked
}

// checkAcked reads every acknowledged key back.
func checkAcked(t *testing.T, s *Store, acked []int) {
	t.Helper()
	bad := 0
	for _, n := range acked {
		if v, err := s.Get(fillKey(n)); err != nil || !bytes.Equal(v, fillValue(n)) {
			if bad++; bad <= 5 {
				t.Errorf("acknowledged write %d: %d bytes, %v", n, len(v), err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d acknowledged writes missing or wrong", bad, len(acked))
	}
}

// watchMinAvail samples the file system's free space every millisecond
// until the test ends, so the test can say how close badger came to the
// edge.
func watchMinAvail(t *testing.T, dir string) (minAvail func() uint64) {
	var mu sync.Mutex
	low := ^uint64(0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if avail, _, err := statfs(dir); err == nil {
				mu.Lock()
				low = min(low, avail)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func() uint64 { mu.Lock(); defer mu.Unlock(); return low }
}

// settle waits (up to 20 s) until the free space of dir's file system has
// not changed for 500 ms: badger's flushes and compactions are done.
func settle(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last, _, _ := statfs(dir)
	since := time.Now()
	for time.Since(since) < 500*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("free space still changing after 20 s")
		}
		time.Sleep(10 * time.Millisecond)
		if avail, _, _ := statfs(dir); avail != last {
			last, since = avail, time.Now()
		}
	}
}

// TestDiskFullTmpfs fills a 64 MiB tmpfs until the store refuses writes:
// the refusal is ErrDiskFull and nothing crashes, reads are served, the
// store closes and reopens (read-only) on the full disk, becomes writable
// by itself once space is freed, and every acknowledged write is there.
func TestDiskFullTmpfs(t *testing.T) {
	root := mountTmpfs(t, 64<<20)
	minAvail := watchMinAvail(t, root)
	ballast := filepath.Join(root, "ballast")
	// Another program's 20 MiB, freed later. (The reserve grows with the
	// data: while it all fits badger's bottom level, a compaction rewrites
	// all of it, so a small store can fill only about half the disk.)
	writeBallast(t, ballast, 20<<20)
	o := tmpfsOptions(t, filepath.Join(root, "data"))
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	// Fill until a whole round is refused: a memtable flush after the
	// first refusal can give back a little space.
	var acked []int
	for round := 0; ; round++ {
		more := fillUntilRefused(t, s, round*1_000_000)
		acked = append(acked, more...)
		if len(more) == 0 {
			break
		}
		if round == 50 {
			t.Fatal("still accepting writes after 50 rounds of filling")
		}
		waitFor(t, "read-only after a refusal", func() bool { return s.State().ReadOnly })
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d writes before the first refusal", len(acked))
	}
	st := s.State()
	if !st.ReadOnly || !errors.Is(st.Err, ErrDiskFull) || !strings.Contains(st.Reason, "disk nearly full") {
		t.Fatalf("state after the refusal: %+v", st)
	}
	t.Logf("%d writes of 4 KiB acknowledged before the refusal; state: %s", len(acked), st.Reason)
	// Once its flushes and compactions settle, badger gives back the
	// space they held (up to 13 MiB here), which can lift the store out of
	// the reserve again. Let it settle, then let another program take the
	// disk down to 6 MiB under the reserve, so the store stays read-only
	// for the checks below.
	settle(t, root)
	extra := filepath.Join(root, "ballast2")
	if avail, _, err := statfs(root); err != nil {
		t.Fatal(err)
	} else if target := s.State().ReserveBytes - 6<<20; avail > target {
		writeBallast(t, extra, int64(avail-target))
	}
	waitFor(t, "read-only with the disk taken by another program", func() bool { return s.State().ReadOnly })
	checkAcked(t, s, acked)
	if _, _, err := s.UpdateHint(t.Context(), "n2", fillKey(1), false, setTo("h")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("hint write on a full disk: %v (state %+v)", err, s.State())
	}
	// Close flushes the memtable into a table: the step that died with
	// SIGBUS before the reserve.
	if err := s.Close(); err != nil {
		t.Fatalf("close on a full disk: %v", err)
	}

	// Restart on the full disk: it opens, refuses writes, serves reads.
	s = openTest(t, o)
	if st := s.State(); !st.ReadOnly || !errors.Is(st.Err, ErrDiskFull) {
		t.Fatalf("state after reopening on a full disk: %+v", st)
	}
	checkAcked(t, s, acked)
	if _, _, err := s.Update(t.Context(), fillKey(-1), false, setTo("x")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write after reopening on a full disk: %v", err)
	}

	// Free space: writable again by itself.
	for _, f := range []string{ballast, extra} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	waitFor(t, "writable again after freeing space", func() bool { return !s.State().ReadOnly })
	more := fillUntilRefused(t, s, 100_000_000)
	if len(more) == 0 {
		t.Fatal("no write accepted after freeing space")
	}
	acked = append(acked, more...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, o)
	checkAcked(t, s, acked)
	t.Logf("all %d acknowledged writes present; lowest free space seen: %d bytes (reserve %d at the end)", len(acked), minAvail(), s.State().ReserveBytes)
	if minAvail() == 0 {
		t.Fatal("the file system ran completely full: the reserve did not hold")
	}
}

// TestDiskFullOpenTmpfs: with less room than badger needs to open for
// writing, a cleanly closed store opens read-only (reads served, writes
// refused) and reopens for writing by itself once space is freed; a store
// left by a kill -9 cannot be opened read-only, and Open says so with
// ErrDiskFull instead of crashing.
func TestDiskFullOpenTmpfs(t *testing.T) {
	root := mountTmpfs(t, 64<<20)
	o := tmpfsOptions(t, filepath.Join(root, "data"))
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	var acked []int
	for n := range 500 {
		val := fillValue(n)
		if _, _, err := s.Update(t.Context(), fillKey(n), false, func([]byte, bool) ([]byte, error) { return val, nil }); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A child writing to its own directory, killed mid-load.
	uncleanDir := filepath.Join(root, "unclean")
	childAcked := runChild(t, uncleanDir, "nosync-small")

	// Leave 3 MiB: less than badger needs to open for writing.
	ballast := filepath.Join(root, "ballast")
	avail, _, err := statfs(root)
	if err != nil {
		t.Fatal(err)
	}
	writeBallast(t, ballast, int64(avail)-3<<20)

	s = openTest(t, o)
	st := s.State()
	if !st.ReadOnly || !strings.Contains(st.Reason, "opened read-only") {
		t.Fatalf("state after opening with 3 MiB free: %+v", st)
	}
	checkAcked(t, s, acked)
	if _, _, err := s.Update(t.Context(), fillKey(-1), false, setTo("x")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write to a store opened read-only: %v", err)
	}

	co := childOptions(t, uncleanDir, childModes["nosync-small"])
	if s2, err := Open(co); !errors.Is(err, ErrDiskFull) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("open of an uncleanly stopped store on a full disk: %v, want ErrDiskFull", err)
	} else {
		t.Logf("unclean store on a full disk: %v", err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reopened for writing", func() bool { return !s.State().ReadOnly })
	if _, _, err := s.Update(t.Context(), fillKey(-1), false, setTo("x")); err != nil {
		t.Fatalf("write after space is back: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, o)
	checkAcked(t, s, acked)
	if v, err := s.Get(fillKey(-1)); err != nil || string(v) != "x" {
		t.Fatalf("write made after reopening: %q, %v", v, err)
	}
	// With space back, the uncleanly stopped store opens and has every
	// write it acknowledged (a kill -9 keeps the kernel's pages).
	if lost, n := lostWrites(t, uncleanDir, "nosync-small", childAcked); len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost: %s", len(lost), n, summary(lost))
	}
}
