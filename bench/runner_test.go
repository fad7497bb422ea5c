package bench

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/syncio"
)

func mustRun(t *testing.T, c Client, cfg Config) *Result {
	t.Helper()
	res, err := Run(t.Context(), c, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRunLinearizableHasNoStaleReads(t *testing.T) {
	f := newFake(3)
	cfg := testConfig()
	cfg.Ops = 5000
	res := mustRun(t, f, cfg)
	c := res.Consistency
	if res.Ops != 5000 || res.Errors != 0 {
		t.Fatalf("ops %d errors %d, want 5000, 0", res.Ops, res.Errors)
	}
	if c.Reads == 0 || c.AckedWrites == 0 || c.ReadsAfterWrite == 0 {
		t.Fatalf("nothing checked: %+v", c)
	}
	if c.StaleReads != 0 || c.LostWrites != 0 || c.UnverifiedWrites != 0 || !c.LostChecked {
		t.Errorf("linearizable fake: stale %d lost %d unverified %d checked %v", c.StaleReads, c.LostWrites, c.UnverifiedWrites, c.LostChecked)
	}
	for _, p := range c.TVisibility {
		if p.Pairs > 0 && p.P != 1 {
			t.Errorf("t-visibility at %v = %v, want 1", p.Delta, p.P)
		}
	}
	// Load wrote every key once, the workload the rest.
	if want := int64(cfg.Keys) + res.Write.Count; c.AckedWrites != want {
		t.Errorf("acked writes %d, want %d", c.AckedWrites, want)
	}
	if f.allR != int64(cfg.Keys) {
		t.Errorf("final check made %d R=N reads, want %d (one per key)", f.allR, cfg.Keys)
	}
	if res.Read.Latency.Count != res.Read.Count || res.Read.Latency.P50 > res.Read.Latency.Max {
		t.Errorf("read latency summary inconsistent: %+v", res.Read.Latency)
	}
}

func TestRunStaleFakeHasStaleReads(t *testing.T) {
	f := newFake(3)
	f.staleP = 0.3
	cfg := testConfig()
	cfg.Ops = 5000
	res := mustRun(t, f, cfg)
	c := res.Consistency
	if c.StaleReads == 0 || c.MeanK < 1 {
		t.Errorf("stale fake: %d stale reads, mean k %v; want > 0, >= 1", c.StaleReads, c.MeanK)
	}
	if c.StaleFraction > 0.3 {
		t.Errorf("stale fraction %v exceeds the fake's staleness probability", c.StaleFraction)
	}
	if c.LostWrites != 0 {
		t.Errorf("stale reads are not lost writes: %d lost", c.LostWrites)
	}
}

func TestRunReportsLostWrites(t *testing.T) {
	f := newFake(3)
	f.dropP = 0.05
	cfg := testConfig()
	cfg.Workload = WorkloadWriteOnly
	cfg.Concurrency = 1
	// Blind updates: no later write supersedes a dropped one (a write
	// carrying the context of an answer that showed it would, and rightly
	// so), so every dropped write is lost.
	cfg.Distribution, cfg.BlindUpdates = DistUniform, true
	res := mustRun(t, f, cfg)
	c := res.Consistency
	if c.LostWrites != int64(len(f.dropped)) || c.LostWrites == 0 {
		t.Fatalf("lost %d, fake dropped %d", c.LostWrites, len(f.dropped))
	}
	want := map[string]int{}
	for _, k := range f.dropped {
		want[k]++
	}
	for _, l := range c.Lost {
		if want[l.Key] == 0 {
			t.Errorf("listed %+v, of a key where the fake dropped no write", l)
		}
		want[l.Key]--
	}
}

// TestRunCatchesPlantedFakeBugs: a store that keeps only the newest of
// concurrent writes (clocks still merged) loses acknowledged writes; one
// that keeps what a context superseded resurrects them. Both are reported
// as violations; a correct store under the same load is not.
//
// The load makes concurrent writes certain rather than likely: two workers
// update one key, each carrying the context of the last acknowledged
// write, and the store makes their updates meet in pairs before applying
// them (see meeting). Left to the scheduler (four workers on 20 keys), the
// writes of a 10ms run on a loaded machine could all run one after
// another, and the bug then lost nothing (4 runs in 30 passed it).
func TestRunCatchesPlantedFakeBugs(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		bug                       func(f *fakeStore)
		wantLost, wantResurrected bool
	}{
		{"correct", func(*fakeStore) {}, false, false},
		{"merge keeps the newest sibling", func(f *fakeStore) { f.keepNewest = true }, true, false},
		{"superseded siblings come back", func(f *fakeStore) { f.keepCovered = true }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(3)
			f.meet = newMeeting()
			tc.bug(f)
			cfg := testConfig()
			cfg.Workload, cfg.Distribution = WorkloadWriteOnly, DistUniform
			// An even number of updates, so that every one has a partner.
			// Few: the resurrecting store keeps every sibling of the key.
			cfg.Keys, cfg.Concurrency, cfg.Ops = 1, 2, 400
			res := mustRun(t, f, cfg)
			if n := f.meet.pairs(); n != int(cfg.Ops)/2 {
				t.Fatalf("%d pairs of concurrent updates met, want %d", n, cfg.Ops/2)
			}
			c := res.Consistency
			t.Logf("lost %d, resurrected %d", c.LostWrites, c.ResurrectedWrites)
			if (c.LostWrites > 0) != tc.wantLost || (c.ResurrectedWrites > 0) != tc.wantResurrected {
				t.Fatalf("lost %d, resurrected %d", c.LostWrites, c.ResurrectedWrites)
			}
			if v := NewReport(res).Violations(); (len(v) > 0) != (tc.wantLost || tc.wantResurrected) {
				t.Fatalf("violations %q", v)
			}
		})
	}
}

func TestRunWorkloadMixes(t *testing.T) {
	tests := []struct {
		w                      Workload
		reads, writes, rmws    bool
		readShare, shareMargin float64
	}{
		{WorkloadA, true, true, false, 0.5, 0.05},
		{WorkloadB, true, true, false, 0.95, 0.03},
		{WorkloadC, true, false, false, 1, 0},
		{WorkloadD, true, true, false, 0.95, 0.03},
		{WorkloadF, true, true, true, 1, 0}, // every rmw reads too
		{WorkloadWriteOnly, false, true, false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.w.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.Workload = tc.w
			cfg.Ops = 4000
			res := mustRun(t, newFake(3), cfg)
			if (res.Read.Count > 0) != tc.reads || (res.Write.Count > 0) != tc.writes || (res.RMW.Count > 0) != tc.rmws {
				t.Fatalf("reads %d writes %d rmws %d", res.Read.Count, res.Write.Count, res.RMW.Count)
			}
			if tc.w == WorkloadF && res.Read.Count != res.Ops {
				t.Errorf("F: %d reads for %d ops; each op reads once", res.Read.Count, res.Ops)
			}
			if tc.w != WorkloadF {
				share := float64(res.Read.Count) / float64(res.Ops)
				if share < tc.readShare-tc.shareMargin || share > tc.readShare+tc.shareMargin {
					t.Errorf("read share %.3f, want %.2f ± %.2f", share, tc.readShare, tc.shareMargin)
				}
			}
			if res.Consistency.StaleReads != 0 || res.Consistency.LostWrites != 0 {
				t.Errorf("linearizable fake: stale %d lost %d", res.Consistency.StaleReads, res.Consistency.LostWrites)
			}
		})
	}
}

// TestRunContextsLimitSiblings: updates that carry the last write's
// context (and F's read-modify-writes) keep one sibling on a single
// writer; blind updates pile them up.
func TestRunContextsLimitSiblings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     Workload
		blind bool
		many  bool
	}{
		{"update with context", WorkloadA, false, false},
		{"read-modify-write", WorkloadF, false, false},
		{"blind updates", WorkloadA, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Workload, cfg.BlindUpdates, cfg.Concurrency, cfg.Keys = tc.w, tc.blind, 1, 10
			res := mustRun(t, newFake(3), cfg)
			if s := res.Consistency.Siblings; (s.Max > 1) != tc.many {
				t.Errorf("siblings max %d mean %.2f", s.Max, s.Mean)
			}
		})
	}
}

func TestRunDeterministicWithSeed(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency = 1
	cfg.Coordinators = CoordRandom
	a, b := mustRun(t, newFake(3), cfg), mustRun(t, newFake(3), cfg)
	if a.Read.Count != b.Read.Count || a.Write.Count != b.Write.Count || a.Consistency.SameCoordinator != b.Consistency.SameCoordinator {
		t.Errorf("same seed, different runs: %d/%d/%d vs %d/%d/%d", a.Read.Count, a.Write.Count, a.Consistency.SameCoordinator, b.Read.Count, b.Write.Count, b.Consistency.SameCoordinator)
	}
	cfg.Seed = 2
	c := mustRun(t, newFake(3), cfg)
	if c.Read.Count == a.Read.Count && c.Consistency.SameCoordinator == a.Consistency.SameCoordinator {
		t.Errorf("different seeds gave identical runs")
	}
}

// TestRunOpenLoopCountsQueueing is the coordinated-omission test: the
// store stalls once for 200ms. A closed loop records one slow request; an
// open loop at 1000 ops/s charges the stall to every operation that was
// due during it.
func TestRunOpenLoopCountsQueueing(t *testing.T) {
	const stall = 200 * time.Millisecond
	run := func(rate float64) *Result {
		f := newFake(3)
		f.stall = func(seq int64) {
			if seq == 20 {
				time.Sleep(stall) // the simulated store pause
			}
		}
		cfg := testConfig()
		cfg.Workload, cfg.Load, cfg.CheckLost = WorkloadC, false, false
		cfg.Concurrency, cfg.Ops, cfg.Rate = 1, 400, rate
		return mustRun(t, f, cfg)
	}
	closed := run(0)
	open := run(1000)
	if closed.Read.Latency.Max < stall || open.Read.Latency.Max < stall {
		t.Fatalf("stall not seen: closed max %v, open max %v", closed.Read.Latency.Max, open.Read.Latency.Max)
	}
	// Closed loop: one slow request in 400, so p90 is fast.
	if closed.Read.Latency.P90 > stall/4 {
		t.Errorf("closed loop p90 %v: want well below the stall", closed.Read.Latency.P90)
	}
	// Open loop: about 200 of 400 operations were due during the stall and
	// waited 0 to 200ms for it, so p90 is around 160ms...
	if open.Read.Latency.P90 < stall/2 {
		t.Errorf("open loop p90 %v: queueing behind the stall is hidden", open.Read.Latency.P90)
	}
	// ...while the service time, measured from the send, looks like the
	// closed loop's.
	if open.Read.Service == nil || open.Read.Service.P90 > stall/4 {
		t.Errorf("open loop service time %+v: want a fast p90", open.Read.Service)
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int64
	f := newFake(3)
	f.stall = func(seq int64) {
		if calls.Add(1) == 500 {
			cancel()
		}
	}
	cfg := testConfig()
	cfg.Duration, cfg.Ops = time.Hour, 0
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = Run(ctx, f, cfg)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res == nil || !res.Canceled || res.Consistency.LostChecked || res.Ops == 0 {
		t.Fatalf("partial result: %+v", res)
	}
	if res.Errors != 0 {
		t.Errorf("canceled requests counted as errors: %d", res.Errors)
	}
}

func TestRunDurationStops(t *testing.T) {
	cfg := testConfig()
	cfg.Ops, cfg.Duration = 0, 100*time.Millisecond
	start := time.Now()
	res := mustRun(t, newFake(3), cfg)
	if res.Ops == 0 || res.Elapsed < cfg.Duration {
		t.Errorf("ops %d elapsed %v", res.Ops, res.Elapsed)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("100ms run took %v", took)
	}
}

func TestRunOpenLoopMissed(t *testing.T) {
	// One worker, a store that takes 20ms per request, a rate of 1000/s
	// for 100ms: about 100 operations are due, about 5 can be sent.
	f := newFake(3)
	f.stall = func(int64) { time.Sleep(20 * time.Millisecond) }
	cfg := testConfig()
	cfg.Workload, cfg.Load, cfg.CheckLost = WorkloadC, false, false
	cfg.Concurrency, cfg.Ops, cfg.Duration, cfg.Rate = 1, 0, 100*time.Millisecond, 1000
	res := mustRun(t, f, cfg)
	if res.Missed < 50 || res.Missed+res.Ops+res.Errors != 100 {
		t.Errorf("missed %d ops %d errors %d; want missed >= 50 and a total of 100", res.Missed, res.Ops, res.Errors)
	}
}

func TestProgressFormat(t *testing.T) {
	p := Progress{Label: "3/2/2", Elapsed: 12 * time.Second, Ops: 120345, Rate: 10021.4, Errors: 3}
	const want = "3/2/2    12.0s      120345 ops    10021 ops/s        3 errors"
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var b bytes.Buffer
	writeProgress(&b, p)
	if b.String() != want+"\n" {
		t.Errorf("plain: %q", b.String())
	}
	b.Reset()
	p.Terminal = true
	writeProgress(&b, p)
	p.Final = true
	writeProgress(&b, p)
	if b.String() != "\r"+want+"\x1b[K"+"\r"+want+"\x1b[K\n" {
		t.Errorf("terminal: %q", b.String())
	}
}

func TestRunProgressLines(t *testing.T) {
	line := regexp.MustCompile(`^x (load )? +\d+\.\ds +\d+ ops +\d+ ops/s +\d+ errors$`)
	for _, terminal := range []bool{false, true} {
		var out syncio.Buffer
		f := newFake(3)
		f.stall = func(int64) { time.Sleep(50 * time.Microsecond) }
		cfg := testConfig()
		cfg.Ops, cfg.Duration = 0, 300*time.Millisecond
		cfg.Progress, cfg.Terminal, cfg.ProgressInterval, cfg.Label = &out, terminal, 20*time.Millisecond, "x"
		mustRun(t, f, cfg)
		s := out.String()
		var lines []string
		if terminal {
			// One redrawn line for the load phase, one for the workload.
			if strings.Count(s, "\n") != 2 || strings.Count(s, "\x1b[K\n") != 2 {
				t.Fatalf("terminal output must redraw one line per phase: %q", s)
			}
			for _, l := range strings.Split(strings.ReplaceAll(s, "\n", ""), "\r")[1:] {
				lines = append(lines, strings.TrimSuffix(l, "\x1b[K"))
			}
		} else {
			if strings.Contains(s, "\r") || strings.Contains(s, "\x1b") {
				t.Fatalf("plain output has terminal control: %q", s)
			}
			lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		}
		load, work := 0, 0
		for _, l := range lines {
			if !line.MatchString(l) {
				t.Errorf("terminal=%v: bad line %q", terminal, l)
			}
			if strings.HasPrefix(l, "x load") {
				load++
			} else {
				work++
			}
		}
		if load < 1 || work < 2 {
			t.Errorf("terminal=%v: %d load and %d workload lines in a 300ms run at 20ms: %q", terminal, load, work, s)
		}
	}
}

func TestRunFaultSchedule(t *testing.T) {
	rf := &recordingFaults{fail: map[string]error{"pause:2": errors.New("no such process")}}
	sched, err := ParseSchedule("0s:kill:1,10ms:restart:1,20ms:pause:0,20ms:pause:2,30ms:kill:3,10m:kill:4")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Ops, cfg.Duration = 0, 200*time.Millisecond
	cfg.Faults, cfg.Schedule = rf, sched
	res := mustRun(t, newFake(3), cfg)
	// The 10m step never ran; pause:0 and kill:3 were left in effect and
	// undone after the run; pause:2 failed, so there is nothing to undo.
	want := []string{"kill:1", "restart:1", "pause:0", "pause:2", "kill:3", "resume:0", "restart:3"}
	if got := rf.recorded(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if len(res.Faults) != len(want) {
		t.Fatalf("%d events recorded, want %d", len(res.Faults), len(want))
	}
	for i, ev := range res.Faults {
		if ev.Action.String()+":"+strconv.Itoa(ev.Node) != want[i] {
			t.Errorf("event %d = %v, want %s", i, ev, want[i])
		}
		if (i >= 5) != ev.Restore {
			t.Errorf("event %d restore = %v", i, ev.Restore)
		}
		if ev.Elapsed < ev.At {
			t.Errorf("event %d applied at %v, before its time %v", i, ev.Elapsed, ev.At)
		}
		if (want[i] == "pause:2") != (ev.Err != "") {
			t.Errorf("event %d error %q", i, ev.Err)
		}
	}
}

func TestRunConfigErrors(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Workload = 0 },
		func(c *Config) { c.Keys = 0 },
		func(c *Config) { c.Concurrency = 0 },
		func(c *Config) { c.Ops, c.Duration = 0, 0 },
		func(c *Config) { c.Rate = -1 },
		func(c *Config) { c.Theta = 1 },
		func(c *Config) { c.Quorum = Quorum{3, 4, 1} },
		func(c *Config) { c.Workload, c.Distribution = WorkloadD, DistUniform },
		func(c *Config) { c.Schedule = Schedule{{At: 0, Action: FaultKill, Node: 0}} },
		func(c *Config) { c.ValueSize = MaxValueSize + 1 },
		func(c *Config) { c.Deltas = []time.Duration{2, 1} },
	}
	for i, mod := range bad {
		cfg := testConfig()
		mod(&cfg)
		before := cfg
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: Validate = %v", i, err)
		}
		if cfg.Workload != before.Workload || cfg.Distribution != before.Distribution {
			t.Errorf("case %d: Validate changed the config", i)
		}
		if _, err := Run(t.Context(), newFake(3), cfg); err == nil {
			t.Errorf("case %d: Run accepted an invalid config", i)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
	if _, err := Run(t.Context(), newFake(0), testConfig()); !errors.Is(err, ErrNoCoordinators) {
		t.Errorf("no coordinators: %v", err)
	}
}

// TestRunErrorsByKind: failed requests are counted per op and per label,
// and a classifier returning unbounded labels is capped.
func TestRunErrorsByKind(t *testing.T) {
	var n atomic.Int64
	c := &failingClient{fakeStore: newFake(3), every: 4, n: &n}
	cfg := testConfig()
	cfg.Load, cfg.CheckLost = false, false
	cfg.ErrorKind = func(err error) string { return err.Error() } // unbounded
	res := mustRun(t, c, cfg)
	if res.Errors == 0 || res.Errors+res.Ops != cfg.Ops {
		t.Fatalf("errors %d ops %d, want some errors and %d in all", res.Errors, res.Ops, cfg.Ops)
	}
	if len(res.ErrorsByKind) > MaxErrorKinds || res.ErrorsByKind["other"] == 0 {
		t.Errorf("%d kinds, other=%d", len(res.ErrorsByKind), res.ErrorsByKind["other"])
	}
	var sum int64
	for _, v := range res.ErrorsByKind {
		sum += v
	}
	if sum != res.Errors || res.Read.Errors+res.Write.Errors != res.Errors {
		t.Errorf("by kind %d, by op %d+%d, total %d", sum, res.Read.Errors, res.Write.Errors, res.Errors)
	}
}

type failingClient struct {
	*fakeStore
	every int64
	n     *atomic.Int64
}

func (c *failingClient) fail() error {
	if i := c.n.Add(1); i%c.every == 0 {
		return errors.New("injected failure " + strconv.FormatInt(i, 10))
	}
	return nil
}

func (c *failingClient) Get(ctx context.Context, coord int, key string, q Quorum, allR bool) (ReadResult, error) {
	if err := c.fail(); err != nil {
		return ReadResult{}, err
	}
	return c.fakeStore.Get(ctx, coord, key, q, allR)
}

func (c *failingClient) Put(ctx context.Context, coord int, key string, v []byte, cx string, q Quorum) (WriteResult, error) {
	if err := c.fail(); err != nil {
		return WriteResult{}, err
	}
	return c.fakeStore.Put(ctx, coord, key, v, cx, q)
}

// TestRunMemoryFlat: heap in use after 10x more operations over the same
// keys must not grow by more than a fixed 512 KiB, less than a list of
// one int64 sample per extra operation would take.
func TestRunMemoryFlat(t *testing.T) {
	small, large := int64(20_000), int64(200_000)
	if raceEnabled || testing.Short() {
		small, large = 10_000, 100_000
	}
	heapAfter := func(ops int64) (uint64, *Result) {
		cfg := testConfig()
		cfg.Keys, cfg.Concurrency, cfg.Ops = 1000, 2, ops
		res := mustRun(t, newFake(3), cfg)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse, res
	}
	// Warm up once so one-time allocations (code paths, pools) do not count.
	heapAfter(small)
	h1, r1 := heapAfter(small)
	h2, r2 := heapAfter(large)
	t.Logf("heap in use after %d ops: %d KiB; after %d ops: %d KiB", small, h1>>10, large, h2>>10)
	if r1.Ops != small || r2.Ops != large {
		t.Fatalf("ops %d, %d", r1.Ops, r2.Ops)
	}
	// The 9x extra operations, at 8 bytes each (one int64 latency sample),
	// would add at least 700 KiB; measured noise is under 100 KiB.
	if limit := h1 + 512<<10; h2 > limit {
		t.Errorf("heap grew with op count: %d KiB after %d ops vs %d KiB after %d", h2>>10, large, h1>>10, small)
	}
}
