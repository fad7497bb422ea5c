package transport

import (
	"context"
	"errors"
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
