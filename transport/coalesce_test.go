package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 16: frames queued on one connection at once share a write (the
// writer flushes when its queue is empty), and a lone call is flushed
// without waiting for company: each of a run of sequential calls is its
// own batch.
func TestFramesShareWritesAndLoneCallsFlushAtOnce(t *testing.T) {
	const callers = 64
	var arrived atomic.Int64
	gate := make(chan struct{})
	var gateOnce sync.Once
	h := HandlerFunc(func(ctx context.Context, _ string, m Method, b []byte) ([]byte, error) {
		if m == 2 { // the concurrent phase: hold every reply until all requests are in
			if arrived.Add(1) == callers {
				gateOnce.Do(func() { close(gate) })
			}
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return b, nil
	})
	srv, cli, _ := pair(t, h, func(s, c *Config) { c.ConnsPerPeer = 1 })
	addr := srv.LocalAddr()

	for range 20 {
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, []byte("alone")); err != nil {
			t.Fatal(err)
		}
	}
	lone := cli.Stats()[addr]
	if lone.FramesSent != 20 || lone.Batches != 20 {
		t.Fatalf("20 sequential calls: %d frames in %d batches, want 20 in 20 (each flushed at once)", lone.FramesSent, lone.Batches)
	}

	before := srv.Stats()[cli.LocalAddr()]
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if _, err := cli.Call(ctxTimeout(t, 10*time.Second), addr, 2, []byte("together")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	after := srv.Stats()[cli.LocalAddr()]
	frames, batches := after.FramesSent-before.FramesSent, after.Batches-before.Batches
	t.Logf("%d replies released together: %d frames in %d batches, %d socket writes", callers, frames, batches, after.Writes-before.Writes)
	if frames != callers || batches*4 > frames {
		t.Fatalf("%d replies queued at once went out in %d batches, want them to share writes (at most %d)", frames, batches, frames/4)
	}
}
