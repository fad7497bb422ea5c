package quorum

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/vclock"
)

// A write's context makes no timer of its own (lazyCtx): the write's wait
// ends at its deadline through write.fire, and at its caller's end
// through the caller's Done. Both still end Put and Overwrite's checked
// write at that instant, and the calls callsSlack later.
func TestWriteDeadlineWithoutContextTimer(t *testing.T) {
	ops := map[string]func(c *testCoord, ctx context.Context, p Params) error{
		"put": func(c *testCoord, ctx context.Context, p Params) error {
			_, err := c.Put(ctx, PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v")}, Params: p})
			return err
		},
		"overwrite": func(c *testCoord, ctx context.Context, p Params) error {
			_, err := c.Overwrite(ctx, PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v")}, Params: p})
			return err
		},
	}
	coord := func(t *testing.T, op string) *testCoord {
		if op == "overwrite" {
			c, _ := newCheckCoord(t, Params{N: 3, R: 2, W: 3})
			return c
		}
		return newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 3}, nil)
	}
	for op, write := range ops {
		t.Run(op+": caller's deadline earlier than the timeout", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := coord(t, op)
				c.reps.set(c.pref[2], behaviour{hang: true})
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := write(c, ctx, Params{Timeout: time.Second})
				var qe *QuorumError
				if !errors.As(err, &qe) || qe.Acks != 2 {
					t.Fatalf("%s: %v, want a quorum error with 2 acks", op, err)
				}
				if d := time.Since(start); d != 300*time.Millisecond {
					t.Errorf("failed after %s, want the caller's 300ms", d)
				}
				c.Wait()
				if d := time.Since(start); d != 300*time.Millisecond+callsSlack {
					t.Errorf("calls ended after %s, want %s", d, 300*time.Millisecond+callsSlack)
				}
			})
		})
		t.Run(op+": timeout", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := coord(t, op)
				c.reps.set(c.pref[2], behaviour{hang: true})
				start := time.Now()
				if err := write(c, t.Context(), Params{Timeout: 400 * time.Millisecond}); !errors.Is(err, ErrQuorumNotMet) {
					t.Fatalf("%s: %v, want a quorum error", op, err)
				}
				if d := time.Since(start); d != 400*time.Millisecond {
					t.Errorf("failed after %s, want the 400ms timeout", d)
				}
				c.Wait()
			})
		})
		t.Run(op+": caller cancels", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := coord(t, op)
				c.reps.set(c.pref[2], behaviour{hang: true})
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(100*time.Millisecond, cancel)
				start := time.Now()
				if err := write(c, ctx, Params{Timeout: time.Second}); err == nil {
					t.Fatal("write succeeded with two replicas of three acking at w=3")
				}
				if d := time.Since(start); d != 100*time.Millisecond {
					t.Errorf("failed after %s, want the cancellation's 100ms", d)
				}
				c.Wait()
			})
		})
	}
}

// A request's lazyCtx behaves as context.WithTimeout(parent, timeout)
// would, whether or not its Done was asked for.
func TestLazyCtxRequest(t *testing.T) {
	type key struct{}
	t.Run("parent cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
			var c lazyCtx
			c.initRequest(parent, time.Second)
			if c.Value(key{}) != "v" {
				t.Error("the parent's value is lost")
			}
			if err := c.Err(); err != nil {
				t.Fatalf("Err %v before anything ended", err)
			}
			cancel()
			if err := c.Err(); err != context.Canceled {
				t.Errorf("Err %v after the parent's cancellation, want Canceled (no Done made)", err)
			}
			select {
			case <-c.Done():
			default:
				t.Error("Done, made after the parent's cancellation, is not closed")
			}
			c.cancel()
			if err := c.Err(); err != context.Canceled {
				t.Errorf("Err %v after cancel, want Canceled", err)
			}
		})
	})
	t.Run("deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			var c lazyCtx
			c.initRequest(parent, time.Second)
			if d, ok := c.Deadline(); !ok || time.Until(d) != 300*time.Millisecond {
				t.Errorf("deadline in %s, want the parent's earlier 300ms", time.Until(d))
			}
			var d lazyCtx
			d.initRequest(t.Context(), 200*time.Millisecond)
			start := time.Now()
			<-d.Done()
			if took := time.Since(start); took != 200*time.Millisecond || d.Err() != context.DeadlineExceeded {
				t.Errorf("Done after %s with %v, want 200ms and DeadlineExceeded", took, d.Err())
			}
			time.Sleep(time.Until(start.Add(300 * time.Millisecond)))
			if err := c.Err(); err != context.DeadlineExceeded {
				t.Errorf("Err %v past the deadline without Done, want DeadlineExceeded", err)
			}
			c.cancel()
			d.cancel()
			if c.Err() != context.DeadlineExceeded || d.Err() != context.DeadlineExceeded {
				t.Errorf("Err %v, %v after a cancel past the deadline, want DeadlineExceeded", c.Err(), d.Err())
			}
		})
	})
	t.Run("cancel before Done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var c lazyCtx
			c.initRequest(t.Context(), time.Second)
			c.cancel()
			select {
			case <-c.Done():
			default:
				t.Error("Done, made after cancel, is not closed")
			}
			if err := c.Err(); err != context.Canceled {
				t.Errorf("Err %v, want Canceled", err)
			}
		})
	})
}
