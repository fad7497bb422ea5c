package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The durability tests re-run this test binary as a child process that
// writes to a store and prints one "ack" line after each write returned;
// the parent kills it with SIGKILL (or lets it Close), reopens the
// directory, and checks that every acknowledged write is there.
const (
	childDirEnv  = "QUORUMKV_STORE_CHILD_DIR"
	childModeEnv = "QUORUMKV_STORE_CHILD_MODE"
)

// childModes: what the child does and how it ends.
var childModes = map[string]struct {
	sync, durable bool
	close         bool // write a fixed number, Close, exit (else: until killed)
}{
	"sync-kill":           {sync: true},
	"nosync-kill":         {},
	"nosync-durable-kill": {durable: true},
	"nosync-close":        {close: true},
}

const (
	childWriters     = 8
	childCloseWrites = 250 // per writer, in close mode
)

func childKey(w, i int) Key {
	return Key{Partition: uint32(w), Hash: uint64(i), Key: []byte("k" + strconv.Itoa(i))}
}

func childVal(w, i int) string { return fmt.Sprintf("w%d-i%d", w, i) }

// TestDurabilityChild is the child's body; it is skipped unless run by
// TestDurability.
func TestDurabilityChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestDurability")
	}
	mode, ok := childModes[os.Getenv(childModeEnv)]
	if !ok {
		t.Fatalf("unknown mode %q", os.Getenv(childModeEnv))
	}
	o := testOptions(t, dir)
	o.Sync = mode.sync
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
				val := childVal(w, i)
				if _, _, err := s.Update(t.Context(), childKey(w, i), mode.durable, func([]byte, bool) ([]byte, error) {
					return []byte(val), nil
				}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if _, _, err := s.UpdateHint(t.Context(), "n"+strconv.Itoa(w), childKey(w, i), mode.durable, func([]byte, bool) ([]byte, error) {
						return []byte(val), nil
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

func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes writing to disk")
	}
	for _, name := range []string{"sync-kill", "nosync-kill", "nosync-durable-kill", "nosync-close"} {
		t.Run(name, func(t *testing.T) {
			mode := childModes[name]
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childModeEnv+"="+name)
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
			closed := false
			r := bufio.NewReader(out)
			killed := false
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

			s := openTest(t, testOptions(t, dir))
			missing := 0
			for wi := range acked {
				w, i := wi[0], wi[1]
				v, err := s.Get(childKey(w, i))
				if err != nil || string(v) != childVal(w, i) {
					missing++
					if missing <= 5 {
						t.Errorf("acknowledged write w%d i%d: %q, %v", w, i, v, err)
					}
				}
				if i%10 == 0 {
					if v, err := s.GetHint("n"+strconv.Itoa(w), childKey(w, i)); err != nil || string(v) != childVal(w, i) {
						missing++
						t.Errorf("acknowledged hint w%d i%d: %q, %v", w, i, v, err)
					}
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d acknowledged writes missing", missing, len(acked))
			}
			if mode.close && len(acked) != childWriters*childCloseWrites {
				t.Fatalf("%d acks in close mode, want %d", len(acked), childWriters*childCloseWrites)
			}
			t.Logf("%d acknowledged writes present after %s", len(acked), name)
		})
	}
}
