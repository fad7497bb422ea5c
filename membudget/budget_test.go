package membudget

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/internal/validtest"
	"github.com/quorumkv/quorumkv/internal/waitfor"
)

func newBudget(t testing.TB, limit int64, maxWait time.Duration) *Budget {
	t.Helper()
	b, err := New(Config{Limit: limit, MaxWait: maxWait})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustTake takes n or fails the test.
func mustTake(t *testing.T, b *Budget, n int64) {
	t.Helper()
	if err := b.Take(t.Context(), n); err != nil {
		t.Fatal(err)
	}
}

// queue starts Take(ctx, n) in the background and waits until it is the
// queued-th request waiting; its result arrives on the channel.
func queue(t *testing.T, ctx context.Context, b *Budget, n int64, queued int) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Take(ctx, n) }()
	eventually(t, fmt.Sprintf("request %d to queue", queued), func() bool { return b.Stats().Waiting == queued })
	return done
}

// smallStream starts 8 goroutines that each take 10 bytes, hold them
// 100 µs and release them, in a loop, until stop; ok counts the takes.
func smallStream(b *Budget) (ok *atomic.Int64, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ok = new(atomic.Int64)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := b.Take(ctx, 10); err != nil {
					continue
				}
				ok.Add(1)
				time.Sleep(100 * time.Microsecond)
				b.Release(10)
			}
		})
	}
	return ok, func() { cancel(); wg.Wait() }
}

// eventually waits for cond with a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, 10*time.Second, what, cond)
}

func TestConfigValidate(t *testing.T) {
	parent := newBudget(t, 100, 0)
	validtest.Table[Config]{
		Base: func() Config { return Config{} },
		Same: validtest.Equal[Config],
		Cases: []validtest.Case[Config]{
			{"ok", validtest.To(Config{Limit: 1}), true},
			{"zero limit", validtest.To(Config{}), false},
			{"negative limit", validtest.To(Config{Limit: -1}), false},
			{"negative retry", validtest.To(Config{Limit: 1, RetryAfter: -1}), false},
			{"never wait", validtest.To(Config{Limit: 1, MaxWait: -1}), true},
			{"child within parent", validtest.To(Config{Limit: 100, Parent: parent}), true},
			{"child above parent", validtest.To(Config{Limit: 101, Parent: parent}), false},
			{"small lane", validtest.To(Config{Limit: 100, SmallRequest: 10, Reserve: 20}), true},
			{"small lane without reserve", validtest.To(Config{Limit: 100, SmallRequest: 10}), true},
			{"reserve without small lane", validtest.To(Config{Limit: 100, Reserve: 20}), false},
			{"reserve of the whole limit", validtest.To(Config{Limit: 100, SmallRequest: 10, Reserve: 100}), false},
			{"negative small request", validtest.To(Config{Limit: 100, SmallRequest: -1}), false},
			{"negative reserve", validtest.To(Config{Limit: 100, SmallRequest: 10, Reserve: -1}), false},
		},
	}.Run(t)
}

func TestTakeWithinLimit(t *testing.T) {
	b := newBudget(t, 100, -1)
	ctx := t.Context()
	if err := b.Take(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if err := b.Take(ctx, 40); err != nil {
		t.Fatal(err)
	}
	err := b.Take(ctx, 1)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrBusy) {
		t.Fatalf("full budget: %v, want a *BusyError", err)
	}
	if be.Need != 1 || be.InUse != 100 || be.Limit != 100 || be.RetryAfter < DefaultRetryAfter || be.RetryAfterSeconds() < 1 {
		t.Fatalf("busy error %+v", be)
	}
	if b.TryTake(1) {
		t.Fatal("TryTake on a full budget succeeded")
	}
	b.Release(100)
	if !b.TryTake(100) {
		t.Fatal("TryTake of the whole budget on an empty budget failed")
	}
	b.Release(100)
	if s := b.Stats(); s.InUse != 0 || s.Peak != 100 || s.Refused != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLargerThanTheBudgetFailsAtOnce(t *testing.T) {
	b := newBudget(t, 100, time.Hour)
	start := time.Now()
	err := b.Take(t.Context(), 101)
	var te *TooLargeError
	if !errors.As(err, &te) || !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBusy) {
		t.Fatalf("Take(101) = %v, want a *TooLargeError", err)
	}
	if te.Need != 101 || te.Limit != 100 {
		t.Fatalf("%+v", te)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v: a request that can never fit must not wait", d)
	}
	if b.TryTake(101) {
		t.Fatal("TryTake(101) succeeded")
	}
	if s := b.Stats(); s.TooLarge != 1 || s.InUse != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNilBudgetIsUnlimited(t *testing.T) {
	var b *Budget
	if err := b.Take(t.Context(), 1<<60); err != nil {
		t.Fatal(err)
	}
	if !b.TryTake(1 << 60) {
		t.Fatal("TryTake on nil")
	}
	b.Force(5)
	b.Release(5)
	rel, err := b.Acquire(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	h := b.NewHold()
	if err := h.Resize(t.Context(), 1<<40); err != nil {
		t.Fatal(err)
	}
	h.Release()
	if b.Stats() != (Stats{}) || b.Limit() != 0 {
		t.Fatal("nil budget has stats")
	}
}

func TestZeroAndNegativeTakeNothing(t *testing.T) {
	b := newBudget(t, 10, -1)
	for _, n := range []int64{0, -5} {
		if err := b.Take(t.Context(), n); err != nil {
			t.Fatal(err)
		}
		b.Release(n)
	}
	if b.Stats().InUse != 0 {
		t.Fatal("zero or negative took bytes")
	}
}

func TestWaitThenGranted(t *testing.T) {
	b := newBudget(t, 100, 10*time.Second)
	mustTake(t, b, 100)
	done := queue(t, t.Context(), b, 30, 1)
	if s := b.Stats(); s.WaitingBytes != 30 {
		t.Fatalf("stats %+v", s)
	}
	b.Release(50)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.InUse != 80 || s.Waited != 1 || s.Waiting != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBusyAfterMaxWait(t *testing.T) {
	b := newBudget(t, 100, 50*time.Millisecond)
	if err := b.Take(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := b.Take(t.Context(), 1)
	waited := time.Since(start)
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("Take = %v, want busy", err)
	}
	if waited < 50*time.Millisecond || be.Waited < 50*time.Millisecond {
		t.Fatalf("gave up after %v (error says %v), want at least MaxWait", waited, be.Waited)
	}
	if be.Cause != nil {
		t.Fatalf("cause %v, want none (MaxWait ended it)", be.Cause)
	}
	if s := b.Stats(); s.Waiting != 0 || s.WaitingBytes != 0 || s.Refused != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestContextEndsTheWait(t *testing.T) {
	b := newBudget(t, 100, time.Hour)
	mustTake(t, b, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := queue(t, ctx, b, 1, 1)
	cancel()
	err := <-done
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Take = %v, want busy caused by cancellation", err)
	}
	// An ended context does not queue at all.
	if err := b.Take(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take with an ended context = %v", err)
	}
	if b.Stats().Waiting != 0 {
		t.Fatal("a waiter stayed queued")
	}
}

// TestFIFONoOvertaking: a small request that would fit does not overtake
// a large one waiting at the head; once the large one gives up, it gets in
// at once, not at its own MaxWait. It runs in a synctest bubble, so the
// two waits are 100ms apart on a fake clock whatever the machine's load.
func TestFIFONoOvertaking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(t, 100, 300*time.Millisecond)
		mustTake(t, b, 50)
		big := make(chan error, 1)
		go func() { big <- b.Take(t.Context(), 80) }()
		synctest.Wait()
		if b.Stats().Waiting != 1 {
			t.Fatalf("the large request is not waiting: %+v", b.Stats())
		}
		if b.TryTake(10) {
			t.Fatal("TryTake overtook a waiting request")
		}
		time.Sleep(100 * time.Millisecond)
		small := make(chan error, 1)
		go func() { small <- b.Take(t.Context(), 10) }()
		synctest.Wait()
		select {
		case err := <-small:
			t.Fatalf("the small request overtook the large one: %v", err)
		default:
		}
		if err := <-big; !errors.Is(err, ErrBusy) {
			t.Fatalf("large request: %v, want busy after MaxWait", err)
		}
		start := time.Now()
		if err := <-small; err != nil {
			t.Fatalf("small request after the large one left: %v", err)
		}
		if waited := time.Since(start); waited > 0 {
			t.Fatalf("the small request got in %v after the head gave up, want at once", waited)
		}
	})
}

// TestLargeRequestNotStarved: under a steady stream of small requests that
// always leave some room, a request for the whole budget still gets in,
// because new requests queue behind it instead of taking the room it
// waits for.
func TestLargeRequestNotStarved(t *testing.T) {
	b := newBudget(t, 100, 10*time.Second)
	smallOK, stop := smallStream(b)
	eventually(t, "small requests flowing", func() bool { return smallOK.Load() > 100 })
	start := time.Now()
	err := b.Take(t.Context(), 100)
	got := time.Since(start)
	if err != nil {
		t.Fatalf("whole-budget request under load: %v after %v", err, got)
	}
	before := smallOK.Load()
	b.Release(100)
	eventually(t, "small requests flowing again", func() bool { return smallOK.Load() > before+100 })
	stop()
	t.Logf("whole-budget request got in after %v", got)
	if s := b.Stats(); s.InUse != 0 {
		t.Fatalf("stats after all released: %+v", s)
	}
}

func TestParentIsChargedToo(t *testing.T) {
	parent := newBudget(t, 100, -1)
	child, err := New(Config{Limit: 60, MaxWait: -1, Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := child.Take(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if err := child.Take(ctx, 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("child over its own cap: %v", err)
	}
	if got := parent.Stats().InUse; got != 60 {
		t.Fatalf("parent in use %d, want 60", got)
	}
	child.Release(60)
	// The parent filled by others refuses the child, which then holds nothing.
	if err := parent.Take(ctx, 90); err != nil {
		t.Fatal(err)
	}
	if err := child.Take(ctx, 20); !errors.Is(err, ErrBusy) {
		t.Fatalf("child with a full parent: %v", err)
	}
	if child.TryTake(20) {
		t.Fatal("TryTake with a full parent")
	}
	if got := child.Stats().InUse; got != 0 {
		t.Fatalf("child holds %d after its parent refused", got)
	}
	child.Force(30)
	if p, c := parent.Stats().InUse, child.Stats().InUse; p != 120 || c != 30 {
		t.Fatalf("after Force: parent %d child %d, want 120 30", p, c)
	}
	child.Release(30)
	parent.Release(90)
	if p := parent.Stats().InUse; p != 0 {
		t.Fatalf("parent %d after all released", p)
	}
}

func TestForceOvercommits(t *testing.T) {
	b := newBudget(t, 100, -1)
	b.Force(150)
	if err := b.Take(t.Context(), 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("Take over a forced budget: %v", err)
	}
	b.Release(100)
	if err := b.Take(t.Context(), 50); err != nil {
		t.Fatalf("Take after release: %v", err)
	}
	if s := b.Stats(); s.InUse != 100 || s.Peak != 150 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReleasingMoreThanHeldPanics(t *testing.T) {
	b := newBudget(t, 100, -1)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	b.Release(1)
}

func TestAcquireReleasesOnce(t *testing.T) {
	b := newBudget(t, 100, -1)
	rel, err := b.Acquire(t.Context(), 70)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(t.Context(), 70); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Acquire: %v", err)
	}
	rel()
	rel()
	if got := b.Stats().InUse; got != 0 {
		t.Fatalf("in use %d after double release", got)
	}
}

func TestHold(t *testing.T) {
	b := newBudget(t, 100, -1)
	ctx := t.Context()
	h := b.NewHold()
	for _, step := range []struct {
		n, want int64
		ok      bool
	}{{40, 40, true}, {90, 90, true}, {101, 90, false}, {10, 10, true}, {-3, 0, true}, {100, 100, true}} {
		err := h.Resize(ctx, step.n)
		if (err == nil) != step.ok || h.Size() != step.want || b.Stats().InUse != step.want {
			t.Fatalf("Resize(%d): err %v, size %d, in use %d; want ok=%v size %d", step.n, err, h.Size(), b.Stats().InUse, step.ok, step.want)
		}
	}
	h.ForceResize(150)
	if b.Stats().InUse != 150 {
		t.Fatal("ForceResize did not add")
	}
	h.ForceResize(20)
	h.Release()
	if h.Size() != 0 || b.Stats().InUse != 0 {
		t.Fatalf("after Release: size %d, in use %d", h.Size(), b.Stats().InUse)
	}
}

// TestConcurrentAccounting: many goroutines take, force and release at
// random; the budget never grants past its limit (apart from forced
// bytes) and ends empty.
func TestConcurrentAccounting(t *testing.T) {
	b := newBudget(t, 1000, 20*time.Millisecond)
	var (
		wg            sync.WaitGroup
		granted, busy atomic.Int64
		over          atomic.Bool
	)
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				n := int64(1 + r.IntN(300))
				if r.IntN(10) == 0 {
					b.Force(n)
				} else if err := b.Take(t.Context(), n); err != nil {
					if !errors.Is(err, ErrBusy) {
						t.Error(err)
					}
					busy.Add(1)
					continue
				} else if b.Stats().InUse > 1000+16*300 {
					over.Store(true)
				}
				granted.Add(1)
				if r.IntN(4) == 0 {
					time.Sleep(10 * time.Microsecond)
				}
				b.Release(n)
			}
		})
	}
	wg.Wait()
	s := b.Stats()
	t.Logf("granted %d, busy %d, stats %+v", granted.Load(), busy.Load(), s)
	if s.InUse != 0 || s.Waiting != 0 || s.WaitingBytes != 0 {
		t.Fatalf("not empty at the end: %+v", s)
	}
	if over.Load() {
		t.Fatal("in use went past limit plus what forced requests can add")
	}
	if granted.Load() == 0 {
		t.Fatal("nothing granted")
	}
}

func BenchmarkTakeRelease(b *testing.B) {
	benchBudget(b, func(b *testing.B, ctx context.Context, bud *Budget) {
		if err := bud.Take(ctx, 4096); err != nil {
			b.Error(err)
		}
		bud.Release(4096)
	})
}

func BenchmarkAcquire(b *testing.B) {
	benchBudget(b, func(b *testing.B, ctx context.Context, bud *Budget) {
		rel, err := bud.Acquire(ctx, 4096)
		if err != nil {
			b.Error(err)
			return
		}
		rel()
	})
}

// benchBudget runs op on a budget too large to fill, from 1 goroutine and
// from 64.
func benchBudget(b *testing.B, op func(b *testing.B, ctx context.Context, bud *Budget)) {
	for _, g := range []int{1, 64} {
		b.Run(benchName(g), func(b *testing.B) {
			bud := newBudget(b, 1<<40, 0)
			ctx := context.Background()
			b.ReportAllocs()
			runGoroutines(b, g, func() { op(b, ctx, bud) })
		})
	}
}

// BenchmarkTakeReleaseNil is the cost when accounting is off (nil budget).
func BenchmarkTakeReleaseNil(b *testing.B) {
	var bud *Budget
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = bud.Take(ctx, 4096)
		bud.Release(4096)
	}
}

// BenchmarkTakeReleaseFull runs 64 goroutines on a budget with room for
// four requests: a Take finds it full when the scheduler preempts holders,
// so it includes the slow path (queue, wake-up) at the rate it occurs.
func BenchmarkTakeReleaseFull(b *testing.B) {
	bud := newBudget(b, 4*4096, 0)
	ctx := context.Background()
	b.ReportAllocs()
	runGoroutines(b, 64, func() {
		if err := bud.Take(ctx, 4096); err != nil {
			return
		}
		bud.Release(4096)
	})
}

func benchName(g int) string {
	if g == 1 {
		return "goroutines=1"
	}
	return "goroutines=64"
}

// runGoroutines runs fn b.N times in total over g goroutines (g = 1: on
// the benchmark's goroutine; else b.RunParallel with g goroutines, which
// hands out iterations in batches so the harness adds no shared counter
// per call).
func runGoroutines(b *testing.B, g int, fn func()) {
	if g == 1 {
		for b.Loop() {
			fn()
		}
		return
	}
	b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fn()
		}
	})
}

// newLanes returns a budget of 1000 bytes whose requests of at most 10
// bytes are small, with 100 bytes reserved for them.
func newLanes(t testing.TB, maxWait time.Duration) *Budget {
	t.Helper()
	b, err := New(Config{Limit: 1000, MaxWait: maxWait, SmallRequest: 10, Reserve: 100})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSmallRequestsPassWaitingLargeOnes: with the small lane, small
// requests are let in at once while a large one waits at the head of the
// line (without it they wait behind it: TestFIFONoOvertaking), up to the
// whole limit; large requests keep their order among themselves and leave
// the reserve to the small ones. On a fake clock (synctest): no wait is
// real.
func TestSmallRequestsPassWaitingLargeOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newLanes(t, time.Hour)
		mustTake(t, b, 850)
		big := make(chan error, 1)
		go func() { big <- b.Take(t.Context(), 200) }() // 1050 > 900: waits
		synctest.Wait()
		later := make(chan error, 1)
		go func() { later <- b.Take(t.Context(), 40) }() // would fit (890 <= 900), but the 200 waits ahead
		synctest.Wait()
		if s := b.Stats(); s.Waiting != 2 || s.InUse != 850 {
			t.Fatalf("large requests not both waiting: %+v", s)
		}
		// Small requests go past both, into the reserve, up to the limit.
		for i := range 14 {
			start := time.Now()
			if err := b.Take(t.Context(), 10); err != nil {
				t.Fatalf("small request %d behind waiting large ones: %v", i, err)
			}
			if waited := time.Since(start); waited > 0 {
				t.Fatalf("small request %d waited %v", i, waited)
			}
		}
		if !b.TryTake(10) {
			t.Fatal("TryTake of a small request refused while room is left")
		}
		if s := b.Stats(); s.InUse != 1000 || s.Waiting != 2 {
			t.Fatalf("stats %+v", s)
		}
		// The budget is full: the next small one waits, in its own line.
		small := make(chan error, 1)
		go func() { small <- b.Take(t.Context(), 10) }()
		synctest.Wait()
		if s := b.Stats(); s.Waiting != 3 {
			t.Fatalf("a small request past the limit did not wait: %+v", s)
		}
		b.Release(10) // room for the small one only
		synctest.Wait()
		select {
		case err := <-small:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("a small request that fits was not let in past the large waiters")
		}
		select {
		case err := <-later:
			t.Fatalf("the later large request overtook the one ahead of it: %v", err)
		default:
		}
		// Room for both with the reserve left free: 660 + 200 + 40 = 900.
		b.Release(340)
		if err := <-big; err != nil {
			t.Fatal(err)
		}
		if err := <-later; err != nil {
			t.Fatal(err)
		}
		if s := b.Stats(); s.InUse != 900 || s.Waiting != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestReserveKeptForSmallRequests: large requests stop short of the
// reserve (busy), small ones use it; a request too large to leave the
// reserve free is let in when it fits the whole budget; a Hold is small
// or large by its new size, not by the step.
func TestReserveKeptForSmallRequests(t *testing.T) {
	b := newLanes(t, -1)
	mustTake(t, b, 880)
	if err := b.Take(t.Context(), 30); !errors.Is(err, ErrBusy) {
		t.Fatalf("a large request into the reserve: %v, want busy", err)
	}
	for range 12 {
		mustTake(t, b, 10)
	}
	if err := b.Take(t.Context(), 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("a small request past the limit: %v, want busy", err)
	}
	b.Release(1000)

	mustTake(t, b, 950) // too large to leave the reserve: fits the whole budget
	if err := b.Take(t.Context(), 60); !errors.Is(err, ErrBusy) {
		t.Fatalf("past the limit: %v", err)
	}
	b.Release(950)

	mustTake(t, b, 895)
	h := b.NewHold()
	if err := h.Resize(t.Context(), 8); err != nil { // small: into the reserve
		t.Fatal(err)
	}
	if err := h.Resize(t.Context(), 12); !errors.Is(err, ErrBusy) { // 4 more, but a large hold now
		t.Fatalf("a hold grown past the small size into the reserve: %v, want busy", err)
	}
	if h.Size() != 8 || b.Stats().InUse != 903 {
		t.Fatalf("hold %d, in use %d", h.Size(), b.Stats().InUse)
	}
}

// TestSmallLaneDoesNotStarveLarge: a steady stream of small requests
// (8 at a time, at most 80 bytes in flight) passes a large request
// waiting for room, and the large one still gets in once the large bytes
// ahead of it are released: the small ones hold less than the budget
// less the reserve less it.
func TestSmallLaneDoesNotStarveLarge(t *testing.T) {
	b := newLanes(t, 10*time.Second)
	mustTake(t, b, 800)
	smallOK, stop := smallStream(b)
	big := make(chan error, 1)
	go func() { big <- b.Take(t.Context(), 800) }()
	eventually(t, "the large request to wait", func() bool { return b.Stats().Waiting >= 1 })
	before := smallOK.Load()
	eventually(t, "small requests flowing past the waiting large one", func() bool { return smallOK.Load() > before+100 })
	b.Release(800)
	if err := <-big; err != nil {
		t.Fatalf("large request: %v", err)
	}
	stop()
	b.Release(800)
	if s := b.Stats(); s.InUse != 0 {
		t.Fatalf("stats after all released: %+v", s)
	}
}
