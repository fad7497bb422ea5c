package transport

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestBudgetCtx checks the handler ctx against the context contract, in a
// synctest bubble so that time is fake: Err is nil until the deadline or
// the parent's cancellation and Done is closed whenever Err is not, however
// the two are called.
func TestBudgetCtx(t *testing.T) {
	for _, tc := range []struct {
		name     string
		doneAt   time.Duration // when to call Done first; <0: never
		cancelAt time.Duration // when to cancel the parent; <0: never
		wantErr  error         // Err after 2s
	}{
		{"deadline, Err only", -1, -1, context.DeadlineExceeded},
		{"deadline, Done early", 0, -1, context.DeadlineExceeded},
		{"deadline, Done late", 1500 * time.Millisecond, -1, context.DeadlineExceeded},
		{"parent cancelled, Err only", -1, 500 * time.Millisecond, context.Canceled},
		{"parent cancelled, Done early", 0, 500 * time.Millisecond, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancel(context.Background())
				defer cancel()
				start := time.Now()
				c := newBudgetCtx(parent, start.Add(time.Second))
				defer c.release()
				if d, ok := c.Deadline(); !ok || !d.Equal(start.Add(time.Second)) {
					t.Fatalf("Deadline() = %v, %v", d, ok)
				}
				var done <-chan struct{}
				for step := time.Duration(0); step <= 2*time.Second; step += 250 * time.Millisecond {
					time.Sleep(step - time.Since(start))
					synctest.Wait() // let a timer that fired run its callback
					if tc.cancelAt >= 0 && step == tc.cancelAt {
						cancel()
						synctest.Wait()
					}
					if tc.doneAt >= 0 && step == tc.doneAt {
						done = c.Done()
					}
					err := c.Err()
					if done != nil {
						select {
						case <-done:
							if err == nil {
								t.Fatalf("at %v: Done closed but Err is nil", step)
							}
						default:
							if err != nil {
								t.Fatalf("at %v: Err = %v but Done is open", step, err)
							}
						}
					}
					if err != nil {
						select {
						case <-c.Done():
						default:
							t.Fatalf("at %v: Err = %v but Done is open", step, err)
						}
					}
					expired := step >= time.Second || (tc.cancelAt >= 0 && step >= tc.cancelAt)
					if (err != nil) != expired {
						t.Fatalf("at %v: Err = %v, want an error: %v", step, err, expired)
					}
				}
				if err := c.Err(); !errors.Is(err, tc.wantErr) {
					t.Fatalf("Err = %v, want %v", err, tc.wantErr)
				}
			})
		})
	}
}

// TestBudgetCtxDerived: contexts derived from the handler ctx see its
// deadline, are cancelled when it passes, and context.Cause agrees with Err.
func TestBudgetCtxDerived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newBudgetCtx(context.Background(), time.Now().Add(time.Second))
		defer c.release()
		child, cancel := context.WithCancel(c)
		defer cancel()
		short, cancel2 := context.WithTimeout(c, time.Hour)
		defer cancel2()
		if d, _ := short.Deadline(); !d.Equal(time.Now().Add(time.Second)) {
			t.Fatalf("derived deadline %v, want the handler's", d)
		}
		type key struct{}
		withVal := context.WithValue(c, key{}, 7)
		if withVal.Value(key{}) != 7 {
			t.Fatal("value lost")
		}
		fired := make(chan struct{})
		stop := context.AfterFunc(c, func() { close(fired) })
		defer stop()
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		for name, ctx := range map[string]context.Context{"child": child, "timeout": short, "value": withVal, "handler": c} {
			select {
			case <-ctx.Done():
			default:
				t.Fatalf("%s ctx not done after the deadline", name)
			}
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				t.Fatalf("%s ctx: Err %v, Cause %v", name, ctx.Err(), context.Cause(ctx))
			}
		}
		select {
		case <-fired:
		default:
			t.Fatal("AfterFunc did not run")
		}
	})
}

// TestBudgetCtxReleaseStopsTimer: release cancels a materialized ctx, so
// its timer does not outlive the handler (the bubble would report it).
func TestBudgetCtxReleaseStopsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newBudgetCtx(context.Background(), time.Now().Add(time.Hour))
		done := c.Done()
		c.release()
		<-done
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("Err after release = %v", c.Err())
		}
	})
}

// TestBudgetCtxSlabHandsOutFreshCtxs: the slab never hands out a ctx
// twice, across arrays, and each one is fresh (one holder, its own
// deadline), so that releasing one, materialized, leaves its neighbours
// live.
func TestBudgetCtxSlabHandsOutFreshCtxs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slab budgetCtxSlab
		start := time.Now()
		seen := make(map[*budgetCtx]bool)
		var all []*budgetCtx
		for i := range 2*ctxSlabSize + 1 {
			dl := start.Add(time.Duration(i+1) * time.Second)
			c := slab.next(context.Background(), dl)
			if seen[c] {
				t.Fatalf("ctx %d handed out twice", i)
			}
			seen[c] = true
			all = append(all, c)
			if got, _ := c.Deadline(); !got.Equal(dl) || c.refs.Load() != 1 || c.real != nil {
				t.Fatalf("ctx %d: deadline %v (want %v), refs %d, real %v", i, got, dl, c.refs.Load(), c.real)
			}
		}
		done := all[1].Done()
		all[1].release()
		<-done
		for i, c := range all {
			if err := c.Err(); (err != nil) != (i == 1) {
				t.Fatalf("ctx %d: Err %v after ctx 1 was released", i, err)
			}
		}
	})
}

// TestBudgetCtxSharedUntilLastRelease: a budgetCtx shared by two handlers
// stays live until both have released it, and is never shared again after.
func TestBudgetCtxSharedUntilLastRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newBudgetCtx(context.Background(), time.Now().Add(time.Hour))
		if !c.share() {
			t.Fatal("share of a held ctx refused")
		}
		done := c.Done()
		c.release()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("ctx cancelled while a second handler holds it")
		default:
		}
		if err := c.Err(); err != nil {
			t.Fatalf("Err with one holder left = %v", err)
		}
		c.release()
		<-done
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("Err after the last release = %v", c.Err())
		}
		if c.share() {
			t.Fatal("a released ctx was shared again")
		}
	})
}

// TestBudgetCtxForShares: requests read within shareSlack of each other
// with the same budget share one ctx, whose deadline is never later than
// their own; another budget, a later batch or a released ctx gets a new
// one.
func TestBudgetCtxForShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := &conn{ctx: parent}
		check := func(bc *budgetCtx, budget time.Duration) {
			t.Helper()
			own := time.Now().Add(budget)
			if d, _ := bc.Deadline(); d.After(own) || own.Sub(d) > shareSlack {
				t.Fatalf("deadline %v, own %v", d, own)
			}
		}
		a := c.budgetCtxFor(2000)
		b := c.budgetCtxFor(2000)
		if a != b {
			t.Fatal("same budget in one batch: not shared")
		}
		check(b, 2*time.Second)
		time.Sleep(shareSlack / 2)
		if c.budgetCtxFor(2000) != a {
			t.Fatal("same budget within shareSlack: not shared")
		}
		check(a, 2*time.Second)
		if d := c.budgetCtxFor(1000); d == a {
			t.Fatal("a shorter budget shared a later deadline")
		} else {
			check(d, time.Second)
			d.release()
		}
		f := c.budgetCtxFor(2000)
		time.Sleep(2 * shareSlack)
		e := c.budgetCtxFor(2000)
		if e == f {
			t.Fatal("a request 2 ms later shared the older deadline")
		}
		check(e, 2*time.Second)
		e.release()
		g := c.budgetCtxFor(2000)
		if g == e {
			t.Fatal("a released ctx was shared")
		}
		for _, x := range []*budgetCtx{a, a, a, f, g} {
			x.release()
		}
	})
}

// BenchmarkHandlerCtx compares the handler ctx with context.WithTimeout
// when the handler only checks Err.
func BenchmarkHandlerCtx(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("ctx=budget", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := newBudgetCtx(parent, time.Now().Add(time.Second))
			_ = c.Err()
			c.release()
		}
	})
	b.Run("ctx=withtimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, cancel := context.WithTimeout(parent, time.Second)
			_ = c.Err()
			cancel()
		}
	})
}

// TestHandlerReturnKeepsOthersCtx: requests sent together under one
// deadline (whose handlers may share a ctx) each keep a live ctx until
// they return themselves: a handler that returns early cancels nothing
// for one still running.
func TestHandlerReturnKeepsOthersCtx(t *testing.T) {
	started, finish := make(chan struct{}), make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, _ string, m Method, _ []byte) ([]byte, error) {
		done := ctx.Done() // materialized: a release would cancel it
		if m == 1 {
			close(started)
			<-finish
		}
		select {
		case <-done:
			return []byte("cancelled"), nil
		default:
			return []byte("live"), nil
		}
	})
	srv, cli, _ := pair(t, h, nil)
	var once sync.Once
	release := func() { once.Do(func() { close(finish) }) }
	t.Cleanup(release) // before the transports close, which waits for the handler
	ctx := ctxTimeout(t, 10*time.Second)
	first := newGoResult()
	cli.Go(ctx, srv.LocalAddr(), 1, nil, first.done)
	<-started
	for range 20 {
		if got, err := cli.Call(ctx, srv.LocalAddr(), 2, nil); err != nil || string(got) != "live" {
			t.Fatalf("second call: %q, %v", got, err)
		}
	}
	release()
	if got, err := first.wait(t); err != nil || string(got) != "live" {
		t.Fatalf("first call, after the others returned: %q, %v", got, err)
	}
}
