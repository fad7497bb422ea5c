package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store/internal/powerfs"
)

// The durability tests re-run this test binary as a child process that
// writes to a store and prints one "ack" line after each write returned;
// the parent kills it with SIGKILL (or lets it Close), optionally cuts the
// power of the file system under it (powerfs), reopens the directory, and
// lists the acknowledged writes that are missing (lostWrites).
const (
	childDirEnv      = "QUORUMKV_STORE_CHILD_DIR"
	childModeEnv     = "QUORUMKV_STORE_CHILD_MODE"
	childSkipSyncEnv = "QUORUMKV_STORE_CHILD_SKIP_SYNC" // "1": the planted no-fsync bug
)

// childMode says what the child does and how it ends.
type childMode struct {
	sync, durable bool
	close         bool // write a fixed number, Close, exit (else: until killed)
	// large writes values of largeValueLen bytes, above the child's
	// ValueThreshold, into value-log files of 1 MiB: badger's value log
	// rotates every few writes.
	large bool
	// small sizes the store for a 64 MiB file system (tmpfsOptions): 1 MiB
	// memtables, so with pad it rotates badger's write-ahead log often.
	small bool
	pad   int // value length, when not large
}

var childModes = map[string]childMode{
	"sync":          {sync: true},
	"nosync":        {},
	"durable":       {durable: true},
	"close":         {close: true},
	"sync-large":    {sync: true, large: true},
	"durable-large": {durable: true, large: true},
	"nosync-small":  {small: true},
	// 2 KiB values into 1 MiB memtables: the write-ahead log rotates every
	// few hundred writes, and the store must follow it when it syncs.
	"sync-rotate":    {sync: true, small: true, pad: 2048},
	"durable-rotate": {durable: true, small: true, pad: 2048},
}

const (
	childWriters     = 8
	childCloseWrites = 250 // per writer, in close mode
	largeValueLen    = 100 << 10
)

func childOptions(t testing.TB, dir string, mode childMode) Options {
	o := testOptions(t, dir)
	if mode.small {
		o = tmpfsOptions(t, dir)
	}
	o.Sync = mode.sync
	if mode.large {
		o.ValueThreshold = 64 << 10
		o.ValueLogFileSize = 1 << 20
	}
	return o
}

func childKey(w, i int) Key {
	return Key{Partition: uint32(w), Hash: uint64(i), Key: []byte("k" + strconv.Itoa(i))}
}

// childVal is the value of write i of writer w: unique, and padded to
// largeValueLen in large modes.
func childVal(mode childMode, w, i int) []byte {
	v := []byte(fmt.Sprintf("w%d-i%d", w, i))
	n := mode.pad
	if mode.large {
		n = largeValueLen
	}
	if n > len(v) {
		v = append(v, bytes.Repeat([]byte{'.'}, n-len(v))...)
	}
	return v
}

// TestDurabilityChild is the child's body; it is skipped unless run by
// runChild.
func TestDurabilityChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestDurability and TestPowerLoss")
	}
	mode, ok := childModes[os.Getenv(childModeEnv)]
	if !ok {
		t.Fatalf("unknown mode %q", os.Getenv(childModeEnv))
	}
	o := childOptions(t, dir, mode)
	o.skipSync = os.Getenv(childSkipSyncEnv) == "1"
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	var outMu sync.Mutex
	ack := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		// One write per line: a pipe write under PIPE_BUF bytes is atomic, so
		// the parent never sees half a line from a finished write.
		_, _ = io.WriteString(os.Stdout, fmt.Sprintf(format, args...))
	}
	deadline := time.Now().Add(30 * time.Second) // in case the parent died
	var wg sync.WaitGroup
	for w := range childWriters {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				if mode.close && i == childCloseWrites {
					return
				}
				val := childVal(mode, w, i)
				var err error
				if w%2 == 1 {
					// The replica's path: the store takes the value
					// as its own, without a copy.
					_, err = s.UpdateOwned(t.Context(), childKey(w, i), mode.durable, func([]byte, bool) ([]byte, error) {
						return slices.Clone(val), nil
					})
				} else {
					_, _, err = s.Update(t.Context(), childKey(w, i), mode.durable, func([]byte, bool) ([]byte, error) {
						return val, nil
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if _, _, err := s.UpdateHint(t.Context(), "n"+strconv.Itoa(w), childKey(w, i), mode.durable, func([]byte, bool) ([]byte, error) {
						return val, nil
					}); err != nil {
						t.Error(err)
						return
					}
				}
				ack("ack %d %d\n", w, i)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ack("closed\n")
}

// runChild runs a child writing to dir in the named mode and returns the
// writes it acknowledged. Unless the mode closes by itself, the child is
// killed with SIGKILL mid-load (after 2,000 acknowledgements or 2 s) and
// runChild returns once it is dead.
func runChild(t *testing.T, dir, name string, env ...string) map[[2]int]bool {
	t.Helper()
	mode := childModes[name]
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(append(os.Environ(), childDirEnv+"="+dir, childModeEnv+"="+name), env...)
	cmd.Stderr = t.Output()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	acked := map[[2]int]bool{}
	closed, killed := false, false
	r := bufio.NewReader(out)
	start := time.Now()
	for {
		line, err := r.ReadString('\n')
		if err != nil { // EOF: the child is gone; a partial line was never acked
			break
		}
		line = strings.TrimSpace(line)
		var w, i int
		switch {
		case line == "closed":
			closed = true
		case strings.HasPrefix(line, "ack "):
			if _, err := fmt.Sscanf(line, "ack %d %d", &w, &i); err != nil {
				t.Fatalf("bad line %q", line)
			}
			acked[[2]int{w, i}] = true
		default: // the child's own test output (a failure says why)
			t.Logf("child: %s", line)
		}
		if !mode.close && !killed && (len(acked) >= 2000 || time.Since(start) > 2*time.Second) {
			// Mid-load: the writers are still running.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case mode.close && (werr != nil || !closed):
		t.Fatalf("child did not close cleanly: %v (closed=%v)", werr, closed)
	case !mode.close && (!errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL):
		t.Fatalf("child was not killed by SIGKILL: %v", werr)
	}
	if len(acked) < childWriters {
		t.Fatalf("only %d writes acknowledged before the end", len(acked))
	}
	return acked
}

// lostWrites reopens the store in dir and returns the acknowledged writes
// (records, and the hints every tenth write adds) that are not there with
// their value, sorted, and how many it checked. A stored value that is not
// the one written (corruption) counts as lost too.
func lostWrites(t *testing.T, dir, name string, acked map[[2]int]bool) (lost []string, checked int) {
	t.Helper()
	mode := childModes[name]
	s := openTest(t, childOptions(t, dir, mode))
	defer s.Close()
	for wi := range acked {
		w, i := wi[0], wi[1]
		want := childVal(mode, w, i)
		checked++
		if v, err := s.Get(childKey(w, i)); err != nil || !bytes.Equal(v, want) {
			lost = append(lost, fmt.Sprintf("record w%d i%d (%d bytes, %v)", w, i, len(v), err))
		}
		if i%10 == 0 {
			checked++
			if v, err := s.GetHint("n"+strconv.Itoa(w), childKey(w, i)); err != nil || !bytes.Equal(v, want) {
				lost = append(lost, fmt.Sprintf("hint w%d i%d (%d bytes, %v)", w, i, len(v), err))
			}
		}
	}
	slices.Sort(lost)
	return lost, checked
}

// TestDurability: a kill -9 (the kernel keeps the dirty pages) loses no
// acknowledged write in any mode, and a clean Close keeps all of them.
func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes writing to disk")
	}
	for _, name := range []string{"sync", "nosync", "durable", "close"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			acked := runChild(t, dir, name)
			if lost, n := lostWrites(t, dir, name, acked); len(lost) > 0 {
				t.Fatalf("%d of %d acknowledged writes lost after %s: %s", len(lost), n, name, summary(lost))
			}
			if childModes[name].close && len(acked) != childWriters*childCloseWrites {
				t.Fatalf("%d acks in close mode, want %d", len(acked), childWriters*childCloseWrites)
			}
			t.Logf("%d acknowledged writes present after %s", len(acked), name)
		})
	}
}

// powerLoss runs a child in the named mode on a powerfs mount, kills it
// mid-load, cuts the power (every write not yet fsynced is lost), reopens
// the surviving data and returns the acknowledged writes (records and
// hints) that are missing, and how many were acknowledged.
// It skips the test, loudly, where FUSE mounts cannot be made.
func powerLoss(t *testing.T, name string, env ...string) (lost []string, acked int) {
	t.Helper()
	if err := powerfs.Available(); err != nil {
		t.Skipf("SKIPPED: the power-loss test needs a FUSE mount (/dev/fuse and root), so fsync is NOT tested here: %v", err)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := powerfs.Mount(backing, mnt)
	if err != nil {
		t.Fatalf("mount powerfs: %v", err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			_ = f.Unmount()
		}
	})
	ack := runChild(t, filepath.Join(mnt, "data"), name, env...)
	// The child is dead: every acknowledgement it printed happened before
	// this instant.
	unmounted = true
	if err := f.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	t.Logf("%s: %d writes acknowledged; file system saw %d writes, %d fsyncs (%d bytes synced), dropped %d unsynced bytes",
		name, len(ack), st.Writes, st.Fsyncs, st.SyncedBytes, st.DroppedBytes)
	return lostWrites(t, filepath.Join(backing, "data"), name, ack)
}

// TestPowerLoss: with Options.Sync, or durable=true per write (the dw
// path), every acknowledged write survives a power loss, also when badger's
// write-ahead log rotates (the store syncs it through its own descriptor,
// walSyncer) and when its value log rotates under large values. Without either, the README promises
// nothing for a machine crash: the test only requires that the store
// reopens and that what survived is what was written (lostWrites counts a
// wrong value as lost, so those are listed and logged).
func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a FUSE file system and starts child processes")
	}
	for _, name := range []string{"sync", "durable", "sync-rotate", "durable-rotate", "sync-large", "durable-large", "nosync"} {
		t.Run(name, func(t *testing.T) {
			lost, acked := powerLoss(t, name)
			if name == "nosync" {
				for _, l := range lost {
					if !strings.Contains(l, store404) {
						t.Errorf("not a missing write but a wrong value: %s", l)
					}
				}
				t.Logf("nosync: %d of %d acknowledged writes lost in the power loss (allowed: not synced)", len(lost), acked)
				return
			}
			if len(lost) > 0 {
				t.Fatalf("%d of %d acknowledged writes lost in a power loss with %s: %s", len(lost), acked, name, summary(lost))
			}
			t.Logf("%s: all %d acknowledged writes survived the power loss", name, acked)
		})
	}
}

// store404 is how lostWrites describes a write that is simply absent.
var store404 = ErrNotFound.Error()

// TestPowerLossDetectsSkippedSync: the planted bug (every sync skipped,
// success reported) must make the power-loss detector report lost
// acknowledged writes. If this fails, TestPowerLoss no longer tests fsync.
func TestPowerLossDetectsSkippedSync(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a FUSE file system and starts child processes")
	}
	lost, acked := powerLoss(t, "sync", childSkipSyncEnv+"=1")
	if len(lost) == 0 {
		t.Fatalf("the power-loss detector reported no lost write among %d acknowledged by a store that never syncs: it detects nothing", acked)
	}
	t.Logf("detector works: %d of %d acknowledged writes lost with syncs skipped", len(lost), acked)
}

// summary shows the first few entries of a list.
func summary(l []string) string {
	if len(l) > 5 {
		return strings.Join(l[:5], "; ") + fmt.Sprintf("; ... (%d more)", len(l)-5)
	}
	return strings.Join(l, "; ")
}
