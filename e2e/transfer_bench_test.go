package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestTransferThrottleFigures measures, at four transfer throttles (three
// caps with a 512 KiB/s floor, and the agent's defaults), the
// transfer rate of a joining fourth agent (MB/s and keys/s, from its
// /cluster/transfers between its first moving partition and its ready)
// and the client p99 of reads (R=2, through the three old agents, four
// closed-loop readers) before the join and during the transfer. It only
// logs the figures (docs/BENCHMARKS.md); run it with
// QUORUMKV_TRANSFER_FIGURES=1.
func TestTransferThrottleFigures(t *testing.T) {
	if os.Getenv("QUORUMKV_TRANSFER_FIGURES") == "" {
		t.Skip("set QUORUMKV_TRANSFER_FIGURES=1 to measure (minutes)")
	}
	for _, rate := range []string{"1MiB", "8MiB", "0", "default"} {
		t.Run("rate="+rate, func(t *testing.T) { transferFigures(t, rate) })
	}
}

func transferFigures(t *testing.T, rate string) {
	args := []string{"--partitions", "64", "--transfer-rate", rate, "--transfer-min-rate", "512KiB"}
	if rate == "default" {
		args = args[:2]
	}
	as := launchFirst(t, 4, 3, withArgs(args...))
	const keys = 4096
	preload(t, as[:3], "tb%d", keys, 4<<10)

	// Readers record latencies into the current phase until stopped.
	var mu sync.Mutex
	phase := map[string][]time.Duration{}
	cur := "idle"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				if stopped(stop) {
					return
				}
				a := as[rng.IntN(3)]
				t0 := time.Now()
				status, _, _ := do(t, "GET", a.url(fmt.Sprintf("/kv/tb%d?r=2", rng.IntN(keys))), nil, nil)
				d := time.Since(t0)
				mu.Lock()
				if status == 200 {
					phase[cur] = append(phase[cur], d)
				}
				mu.Unlock()
			}
		})
	}
	setPhase := func(p string) { mu.Lock(); cur = p; mu.Unlock() }
	time.Sleep(5 * time.Second)
	setPhase("between")

	as[3].launch(as[0].gossip)
	var start time.Time
	var first, last struct{ bytes, keys uint64 }
	waitFor(t, 120*time.Second, "n4 pulling", func() bool {
		tr, ok := transfersOf(as[3])
		if ok && len(tr.Moving) > 0 {
			start, first.bytes, first.keys = time.Now(), tr.BytesDone, tr.KeysDone
			return true
		}
		return false
	}, as[3])
	setPhase("transfer")
	var end time.Time
	waitFor(t, 600*time.Second, "n4 ready", func() bool {
		tr, ok := transfersOf(as[3])
		if ok && tr.Target != "" {
			last.bytes, last.keys, end = tr.BytesDone, tr.KeysDone, time.Now()
		}
		return ok && (tr.Ready || tr.Target == "")
	}, as[3])
	setPhase("after")
	close(stop)
	wg.Wait()
	waitRingSettled(t, as, 120*time.Second)

	el := end.Sub(start).Seconds()
	p99 := func(p string) string {
		mu.Lock()
		defer mu.Unlock()
		ds := slices.Clone(phase[p])
		if len(ds) == 0 {
			return "none"
		}
		slices.Sort(ds)
		return fmt.Sprintf("%.1f ms (%d reads)", ds[len(ds)*99/100].Seconds()*1000, len(ds))
	}
	t.Logf("FIGURES rate=%s: transfer %.1f s, %.2f MB/s, %.0f keys/s (%d bytes, %d keys); read p99 idle %s, during transfer %s",
		rate, el, float64(last.bytes-first.bytes)/el/1e6, float64(last.keys-first.keys)/el, last.bytes-first.bytes, last.keys-first.keys,
		p99("idle"), p99("transfer"))
}

// preload writes n keys (named by format from their index) of size bytes
// at W=3 through the agents of as in turn, 8 at a time.
func preload(t *testing.T, as []*agent, format string, n, size int) {
	t.Helper()
	val := bytes.Repeat([]byte("v"), size)
	if err := parallel(n, 8, func(i int) error {
		if status, _, b := do(t, "PUT", as[i%len(as)].url("/kv/"+fmt.Sprintf(format, i)+"?w=3"), val, nil); status != 204 {
			return fmt.Errorf("put %d: %d %s", i, status, b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
