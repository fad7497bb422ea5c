package quorum

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// Get has no context of its own: one timer is its deadline and then its
// repair wait (read.fire). A caller's earlier deadline, or its
// cancellation, still ends the wait; the repair wait after an answer
// still ends at ReadRepairWait.
func TestGetDeadlineWithoutContext(t *testing.T) {
	t.Run("caller's deadline earlier than the timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
			c.reps.set(c.pref[1], behaviour{hang: true})
			c.reps.set(c.pref[2], behaviour{hang: true})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Get(ctx, GetRequest{Key: []byte("k"), Params: Params{Timeout: time.Second}})
			var qe *QuorumError
			if !errors.As(err, &qe) || qe.Acks != 1 {
				t.Fatalf("get: %v, want a quorum error with 1 ack", err)
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
	t.Run("caller cancels", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
			c.reps.set(c.pref[1], behaviour{hang: true})
			c.reps.set(c.pref[2], behaviour{hang: true})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			if _, err := c.Get(ctx, GetRequest{Key: []byte("k"), Params: Params{Timeout: time.Second}}); err == nil {
				t.Fatal("get succeeded with one replica answering at r=2")
			}
			if d := time.Since(start); d != 100*time.Millisecond {
				t.Errorf("failed after %s, want the cancellation's 100ms", d)
			}
			c.Wait()
		})
	})
	t.Run("repair wait after the answer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2, Timeout: 5 * time.Second}, nil)
			c.reps.set(c.pref[2], behaviour{hang: true})
			start := time.Now()
			if _, err := c.Get(t.Context(), GetRequest{Key: []byte("k")}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 0 {
				t.Fatalf("answer took %s with two fast replicas", d)
			}
			// The read stops waiting for the hung call (its timer, reset)
			// at ReadRepairWait, 200ms, and ends it.
			done := make(chan time.Duration)
			go func() {
				c.Wait()
				done <- time.Since(start)
			}()
			if d := <-done; d != 200*time.Millisecond {
				t.Errorf("calls ended after %s, want the 200ms repair wait", d)
			}
		})
	})
}
