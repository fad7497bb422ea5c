package multikey

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/membudget"
)

const MiB = 1 << 20

// mem is a fake memory model: a fetch allocates Peak while it runs, keeps
// Held until its item is emitted. It records the most ever live and how
// many fetches ran at once.
type mem struct {
	live, maxLive         atomic.Int64
	inflight, maxInflight atomic.Int64
	started, finished     atomic.Int64
}

func (m *mem) add(n int64) {
	v := m.live.Add(n)
	for {
		p := m.maxLive.Load()
		if v <= p || m.maxLive.CompareAndSwap(p, v) {
			return
		}
	}
}

// fetcher returns a Fetch whose item i is i, costing cost(i), taking a
// random short time.
func (m *mem) fetcher(seed uint64, cost func(i int) Cost) Fetch[int] {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 0))
	return func(ctx context.Context, i int) (int, Cost, error) {
		m.started.Add(1)
		defer m.finished.Add(1)
		f := m.inflight.Add(1)
		for {
			p := m.maxInflight.Load()
			if f <= p || m.maxInflight.CompareAndSwap(p, f) {
				break
			}
		}
		defer m.inflight.Add(-1)
		c := cost(i)
		peak := max(c.Peak, c.Held)
		m.add(peak)
		mu.Lock()
		d := time.Duration(r.IntN(1500)) * time.Microsecond
		mu.Unlock()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			m.add(-peak)
			return 0, Cost{}, ctx.Err()
		}
		m.add(c.Held - peak)
		return i, c, nil
	}
}

// emitter checks order and releases each item's Held.
func (m *mem) emitter(t *testing.T, n int, cost func(i int) Cost, got *[]int) Emit[int] {
	return func(i, item int, err error) error {
		if i != len(*got) {
			t.Errorf("emitted %d after %d items", i, len(*got))
		}
		if err != nil {
			*got = append(*got, -1)
			return nil
		}
		if item != i {
			t.Errorf("item %d emitted as %d", item, i)
		}
		m.add(-cost(i).Held)
		*got = append(*got, item)
		return nil
	}
}

func newBudget(t *testing.T, limit int64, wait time.Duration) *membudget.Budget {
	t.Helper()
	b, err := membudget.New(membudget.Config{Limit: limit, MaxWait: wait})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmitsInOrderOnce(t *testing.T) {
	for _, n := range []int{1, 2, 17, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var m mem
			r := rand.New(rand.NewPCG(uint64(n), 1))
			costs := make([]Cost, n)
			for i := range costs {
				costs[i] = Cost{Held: int64(r.IntN(4096)), Peak: int64(r.IntN(64 << 10))}
			}
			cost := func(i int) Cost { return costs[i] }
			var got []int
			b := newBudget(t, 64*MiB, time.Second)
			if err := Run(t.Context(), Config{Budget: b}, n, m.fetcher(1, cost), m.emitter(t, n, cost, &got)); err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d of %d emitted", len(got), n)
			}
			if m.maxInflight.Load() > DefaultParallel {
				t.Fatalf("%d fetches at once, want at most %d", m.maxInflight.Load(), DefaultParallel)
			}
			if s := b.Stats(); s.InUse != 0 || m.live.Load() != 0 {
				t.Fatalf("left behind: budget %+v, live %d", s, m.live.Load())
			}
		})
	}
}

// TestAttackMGETIsBounded is the attack of issue 14: one MGET naming 400
// times a key whose set holds 11 siblings of 1 MiB. Without Run, the
// command held every picked value (400 MiB) plus 16 sets in flight
// (176 MiB); with it, it holds at most MaxBytes plus the item next to
// emit.
func TestAttackMGETIsBounded(t *testing.T) {
	var m mem
	cost := func(int) Cost { return Cost{Held: MiB, Peak: 11 * MiB} }
	var got []int
	b := newBudget(t, 1<<30, time.Second)
	cfg := Config{Budget: b}
	if err := Run(t.Context(), cfg, 400, m.fetcher(2, cost), m.emitter(t, 400, cost, &got)); err != nil {
		t.Fatal(err)
	}
	bound := int64(DefaultMaxBytes + 11*MiB)
	t.Logf("400 × 11 MiB sets: at most %d MiB live (bound %d MiB), %d fetches at once; budget peak %d MiB",
		m.maxLive.Load()/MiB, bound/MiB, m.maxInflight.Load(), b.Stats().Peak/MiB)
	if m.maxLive.Load() > bound {
		t.Fatalf("%d bytes live, bound %d", m.maxLive.Load(), bound)
	}
	if len(got) != 400 || b.Stats().InUse != 0 {
		t.Fatalf("%d emitted, %d left in the budget", len(got), b.Stats().InUse)
	}
}

// TestCommandsShareTheBudget: eight such MGETs at once on a 48 MiB budget
// never make more live than the budget (the shared estimator charges even
// their first fetches), and all finish.
func TestCommandsShareTheBudget(t *testing.T) {
	var m mem
	cost := func(int) Cost { return Cost{Held: MiB, Peak: 11 * MiB} }
	b := newBudget(t, 48*MiB, 10*time.Second)
	var est Estimator
	est.Observe(11 * MiB) // a previous command met the key
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			var got []int
			errs <- Run(t.Context(), Config{Budget: b, Shared: &est}, 50, m.fetcher(uint64(g), cost), m.emitter(t, 50, cost, &got))
			if len(got) != 50 {
				t.Errorf("command %d emitted %d", g, len(got))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("8 commands × 50 × 11 MiB sets on a 48 MiB budget: at most %d MiB live, budget peak %d MiB", m.maxLive.Load()/MiB, b.Stats().Peak/MiB)
	if m.maxLive.Load() > 48*MiB {
		t.Fatalf("%d MiB live on a 48 MiB budget", m.maxLive.Load()/MiB)
	}
	if s := b.Stats(); s.InUse != 0 {
		t.Fatalf("budget %+v after all commands", s)
	}
}

// TestProbeFirst: before any cost is known, one fetch runs alone.
func TestProbeFirst(t *testing.T) {
	release := make(chan struct{})
	var inflight, maxBeforeFirst atomic.Int64
	var firstDone atomic.Bool
	fetch := func(ctx context.Context, i int) (int, Cost, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		if !firstDone.Load() && n > maxBeforeFirst.Load() {
			maxBeforeFirst.Store(n)
		}
		if i == 0 {
			<-release
			firstDone.Store(true)
		}
		return i, Cost{Held: 10}, nil
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(release)
	}()
	if err := Run(t.Context(), Config{}, 50, fetch, func(int, int, error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if maxBeforeFirst.Load() != 1 {
		t.Fatalf("%d fetches ran before the first cost was known", maxBeforeFirst.Load())
	}
}

// TestHugeItemGoesAlone: an item larger than MaxBytes is not refused; it
// is fetched alone.
func TestHugeItemGoesAlone(t *testing.T) {
	var m mem
	cost := func(int) Cost { return Cost{Held: 20 * MiB} }
	var got []int
	b := newBudget(t, 64*MiB, time.Second)
	if err := Run(t.Context(), Config{Budget: b}, 6, m.fetcher(3, cost), m.emitter(t, 6, cost, &got)); err != nil {
		t.Fatal(err)
	}
	if m.maxInflight.Load() != 1 || len(got) != 6 {
		t.Fatalf("%d at once, %d emitted", m.maxInflight.Load(), len(got))
	}
}

// TestBusyBudget: with the budget full, the first item waits MaxWait and
// is emitted with the busy error; the rest are refused at once.
func TestBusyBudget(t *testing.T) {
	b := newBudget(t, 10*MiB, 100*time.Millisecond)
	if err := b.Take(t.Context(), 10*MiB); err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int64
	fetch := func(context.Context, int) (int, Cost, error) {
		fetched.Add(1)
		return 0, Cost{}, nil
	}
	var busy int
	start := time.Now()
	err := Run(t.Context(), Config{Budget: b}, 20, fetch, func(i, _ int, err error) error {
		if !errors.Is(err, membudget.ErrBusy) {
			t.Errorf("item %d: %v, want busy", i, err)
		}
		busy++
		return nil
	})
	took := time.Since(start)
	if err != nil || busy != 20 || fetched.Load() != 0 {
		t.Fatalf("Run = %v, %d busy, %d fetched", err, busy, fetched.Load())
	}
	if took > time.Second {
		t.Fatalf("took %v: only the first item should wait", took)
	}
	b.Release(10 * MiB)
	if err := Run(t.Context(), Config{Budget: b}, 20, fetch, func(_, _ int, err error) error { return err }); err != nil {
		t.Fatalf("after the budget freed: %v", err)
	}
}

// TestStopsAndReleases: an emit error or a cancelled context stops the
// command; every fetch has returned and nothing stays charged.
func TestStopsAndReleases(t *testing.T) {
	stop := errors.New("client went away")
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"emit error", false}, {"context cancelled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var m mem
			cost := func(int) Cost { return Cost{Held: 4096, Peak: 8192} }
			b := newBudget(t, 64*MiB, time.Second)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			emitted := 0
			err := Run(ctx, Config{Budget: b}, 1000, m.fetcher(4, cost), func(i, _ int, err error) error {
				emitted++
				m.add(-cost(i).Held)
				if i == 10 {
					if tc.cancel {
						cancel()
						return nil
					}
					return stop
				}
				return nil
			})
			want := stop
			if tc.cancel {
				want = context.Canceled
			}
			if !errors.Is(err, want) {
				t.Fatalf("Run = %v, want %v", err, want)
			}
			if m.started.Load() != m.finished.Load() {
				t.Fatalf("%d fetches started, %d returned", m.started.Load(), m.finished.Load())
			}
			if emitted != 11 || m.started.Load() > 11+DefaultParallel {
				t.Fatalf("%d emitted, %d fetched", emitted, m.started.Load())
			}
			if s := b.Stats(); s.InUse != 0 {
				t.Fatalf("budget %+v after stopping", s)
			}
		})
	}
}

func TestFetchErrorsGoToEmit(t *testing.T) {
	boom := errors.New("quorum not met")
	fetch := func(_ context.Context, i int) (int, Cost, error) {
		if i%3 == 1 {
			return 0, Cost{Held: 1 << 30}, boom // a failed fetch holds nothing
		}
		return i, Cost{Held: 1}, nil
	}
	b := newBudget(t, MiB, time.Second)
	var seen []string
	err := Run(t.Context(), Config{Budget: b}, 7, fetch, func(i, item int, err error) error {
		if err != nil {
			seen = append(seen, "err")
		} else {
			seen = append(seen, fmt.Sprint(item))
		}
		return nil
	})
	if err != nil || fmt.Sprint(seen) != "[0 err 2 3 err 5 6]" {
		t.Fatalf("Run = %v, emitted %v", err, seen)
	}
	if b.Stats().InUse != 0 {
		t.Fatal("budget left charged")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Parallel: -1}).Validate(); err == nil {
		t.Fatal("negative parallel valid")
	}
	if err := Run(t.Context(), Config{MaxBytes: -1}, 1, nil, Emit[int](nil)); err == nil {
		t.Fatal("Run with a bad config")
	}
	if err := Run[int](t.Context(), Config{}, 0, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestEstimator(t *testing.T) {
	var e Estimator
	e.Observe(16 << 20)
	if e.Get() != 16<<20 {
		t.Fatal(e.Get())
	}
	for range 40 {
		e.Observe(100)
	}
	if g := e.Get(); g >= 16<<20/4 || g < 100 {
		t.Fatalf("after 40 small costs: %d", g)
	}
	var nilE *Estimator
	nilE.Observe(5)
	if nilE.Get() != 0 {
		t.Fatal("nil estimator")
	}
}

// BenchmarkRun is the overhead per command of 100 keys whose fetches cost
// nothing, against a plain loop of goroutines (what the RESP front's
// parallel helper does).
func BenchmarkRun(b *testing.B) {
	const n = 100
	fetch := func(_ context.Context, i int) (int, Cost, error) { return i, Cost{Held: 100}, nil }
	emit := func(int, int, error) error { return nil }
	bud, _ := membudget.New(membudget.Config{Limit: 1 << 30})
	b.Run("multikey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Run(context.Background(), Config{Budget: bud}, n, fetch, emit)
		}
	})
	b.Run("plain-goroutines", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			vals := make([]int, n)
			var wg sync.WaitGroup
			sem := make(chan struct{}, DefaultParallel)
			for i := range n {
				sem <- struct{}{}
				wg.Go(func() {
					vals[i], _, _ = fetch(context.Background(), i)
					<-sem
				})
			}
			wg.Wait()
			for i := range vals {
				_ = emit(i, vals[i], nil)
			}
		}
	})
}

// Sizes keeps large sizes only, forgets a key that became small, and
// holds at most MaxSizes keys.
func TestSizes(t *testing.T) {
	var s Sizes
	s.Observe([]byte("small"), LargeSet-1)
	s.Observe([]byte("huge"), 11<<20)
	if s.Get([]byte("small")) != 0 || s.Get([]byte("huge")) != 11<<20 {
		t.Fatalf("small %d, huge %d", s.Get([]byte("small")), s.Get([]byte("huge")))
	}
	s.Observe([]byte("huge"), 100)
	if s.Get([]byte("huge")) != 0 {
		t.Fatal("a key that became small is still remembered large")
	}
	for i := range 3 * MaxSizes {
		s.Observe(fmt.Appendf(nil, "k%d", i), LargeSet)
	}
	if n := len(s.m); n != MaxSizes {
		t.Fatalf("%d keys remembered, want at most %d", n, MaxSizes)
	}
	var none *Sizes
	none.Observe([]byte("k"), 1<<30)
	if none.Get([]byte("k")) != 0 {
		t.Fatal("a nil Sizes remembered")
	}
}

// Reads of a key of unknown cost, started at once: one reads, the others
// wait for it and then reserve what it cost, so the budget sees a huge
// key before all of them read it. A small key stays unknown, and its
// waiters go on beside each other once the read they waited for ends.
// Reserve and Charge are cut to the whole budget.
func TestSizesReserveOneReadOfAnUnknownKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := membudget.New(membudget.Config{Limit: 64 * MiB, MaxWait: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var s Sizes
		ctx := t.Context()
		lead := b.NewHold()
		rd, err := s.Reserve(ctx, &lead, []byte("huge"))
		if err != nil || lead.Size() != ReadReserve {
			t.Fatalf("first read: reserved %d, %v; want ReadReserve", lead.Size(), err)
		}
		var reserved [3]int64
		var wg sync.WaitGroup
		for i := range reserved {
			wg.Go(func() {
				h := b.NewHold()
				r, err := s.Reserve(ctx, &h, []byte("huge"))
				if err != nil {
					t.Error(err)
				}
				reserved[i] = h.Size()
				r.End()
				h.Release()
			})
		}
		synctest.Wait()
		if reserved != [3]int64{} || b.Stats().InUse != ReadReserve {
			t.Fatalf("reads of the key went on (%v, budget %+v) while its first read was under way", reserved, b.Stats())
		}
		if err := rd.Charge(ctx, &lead, []byte("huge"), 11*MiB, 20*MiB); err != nil || lead.Size() != 20*MiB {
			t.Fatalf("Charge: held %d, %v; want the cost", lead.Size(), err)
		}
		wg.Wait()
		if reserved != [3]int64{20 * MiB, 20 * MiB, 20 * MiB} {
			t.Fatalf("the waiting reads reserved %v, want the first read's cost each", reserved)
		}
		lead.Release()

		// A small key: the waiter goes on once the read ends, unknown.
		rd, _ = s.Reserve(ctx, &lead, []byte("small"))
		done := make(chan int64)
		go func() {
			h := b.NewHold()
			r, _ := s.Reserve(ctx, &h, []byte("small"))
			r.End()
			done <- h.Size()
			h.Release()
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("a read of a key of unknown cost did not wait for the one under way")
		default:
		}
		_ = rd.Charge(ctx, &lead, []byte("small"), 100, 200)
		if got := <-done; got != ReadReserve {
			t.Fatalf("after a small read: reserved %d, want ReadReserve", got)
		}
		lead.Release()

		// A first read that fails teaches nothing: of its waiters, one
		// reads next and the others wait for it.
		rd, _ = s.Reserve(ctx, &lead, []byte("unlucky"))
		var next [2]Read
		var nextErr [2]error
		holds := [2]membudget.Hold{b.NewHold(), b.NewHold()}
		defer holds[0].Release()
		defer holds[1].Release()
		for i := range next {
			wg.Go(func() { next[i], nextErr[i] = s.Reserve(ctx, &holds[i], []byte("unlucky")) })
		}
		synctest.Wait()
		rd.End() // failed: no Charge
		synctest.Wait()
		if (next[0].lead == nil) == (next[1].lead == nil) {
			t.Fatalf("after a failed read, leads %v and %v: want one reading and one waiting", next[0].lead, next[1].lead)
		}
		led := 0
		if next[1].lead != nil {
			led = 1
		}
		_ = next[led].Charge(ctx, &holds[led], []byte("unlucky"), 5*MiB, 10*MiB)
		wg.Wait()
		if w := next[1-led]; nextErr[1-led] != nil || w.reserved != 10*MiB {
			t.Fatalf("the read that waited again: %+v, %v; want the cost the next read found", w, nextErr[1-led])
		}
		holds[0].Release()
		holds[1].Release()
		lead.Release()

		// Past the whole budget: cut to it.
		rd, _ = s.Reserve(ctx, &lead, []byte("giant"))
		if err := rd.Charge(ctx, &lead, []byte("giant"), 30*MiB, 300*MiB); err != nil || lead.Size() != 64*MiB {
			t.Fatalf("Charge past the budget: held %d, %v; want the whole budget", lead.Size(), err)
		}
		lead.Release()
		if r, err := s.Reserve(ctx, &lead, []byte("giant")); err != nil || lead.Size() != 64*MiB {
			t.Fatalf("Reserve of a key past the budget: %d, %v; want the whole budget", lead.Size(), err)
		} else {
			r.End()
		}
		lead.Release()
	})
}
