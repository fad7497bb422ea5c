package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/waitfor"
	"github.com/quorumkv/quorumkv/membudget"
)

// Issue 14: a flood of large request frames over real TCP is charged to the
// node's memory budget (Config.Budget): the bytes held never exceed it,
// requests beyond it wait and then are refused with ErrBusy, unread, and
// everything is returned once the handlers finish.
func TestFloodOfLargeFramesBoundedByNodeBudget(t *testing.T) {
	const (
		body  = 1200 << 10 // each request: three fit in the budget, four do not
		limit = 4 << 20
		calls = 24
	)
	budget, err := membudget.New(membudget.Config{Limit: limit, MaxWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var handlers gauge
	h := HandlerFunc(func(ctx context.Context, _ string, _ Method, b []byte) ([]byte, error) {
		handlers.enter()
		defer handlers.leave()
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte("ok"), nil
	})
	scfg, _ := testConfig(t, "server", h)
	scfg.MaxFrame = 2 << 20
	scfg.Budget = budget
	// Skipping a refused body still decrypts it: under -race and a loaded
	// machine that is slow, and the client's writes wait for it.
	scfg.IOTimeout = 30 * time.Second
	srv := listen(t, scfg)

	clients := startClients(t, func(c *Config) {
		c.ConnsPerPeer = 4
		c.MaxFrame = 2 << 20
		c.IOTimeout = 30 * time.Second
	}, "c1", "c2")
	var wg sync.WaitGroup
	var busy, ok atomic.Int64
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			_, err := clients[i%2].Call(ctxTimeout(t, 20*time.Second), srv.LocalAddr(), 1, make([]byte, body))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrBusy):
				busy.Add(1)
			default:
				errs <- err
			}
		})
	}
	// Three handlers hold their bodies; every other request waits for room
	// and is refused when the budget's wait ends, its body skipped unread.
	waitfor.Cond(t, 30*time.Second, "the requests beyond the budget refused", func() bool {
		done := handlers.running.Load() == 3 && busy.Load() == calls-3
		if !done && len(errs) > 0 {
			t.Logf("running %d, busy %d, budget %+v", handlers.running.Load(), busy.Load(), budget.Stats())
		}
		return done || len(errs) > 0
	})
	if len(errs) > 0 {
		t.Fatalf("call failed during the flood: %v", <-errs)
	}
	if s := budget.Stats(); s.Peak > limit || s.InUse < 3*body {
		t.Fatalf("budget %+v: want at most %d bytes held, at least %d now", s, limit, 3*body)
	}
	var got uint64
	for _, st := range srv.Stats() {
		got += st.FramesReceived
	}
	if got != calls {
		t.Errorf("server received %d frames, want all %d", got, calls)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call: %v (want success or ErrBusy)", err)
	}
	if ok.Load() != 3 || handlers.peak.Load() != 3 {
		t.Errorf("%d calls served, %d handlers at once; want 3 and 3", ok.Load(), handlers.peak.Load())
	}
	eventually(t, "budget returned", func() bool { return budget.Stats().InUse == 0 })
	if s := budget.Stats(); s.Peak > limit || s.Refused != calls-3 {
		t.Errorf("budget %+v: want peak at most %d and %d refused", s, limit, calls-3)
	}
	// The connections are still good.
	if _, err := clients[0].Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, make([]byte, body)); err != nil {
		t.Fatalf("call after the flood: %v", err)
	}
}

// Issue 14: a large reply is charged to the calling node's budget at the
// length in its frame header before its body is read. With no room, it
// waits unread (the budget shows it waiting, the call does not return)
// and is read once room is made; when the budget's wait ends first, the
// body is skipped and the call fails busy, and the connection stays good.
// A small reply is not charged.
func TestLargeReplyWaitsForCallersBudget(t *testing.T) {
	const reply = 1 << 20
	h := HandlerFunc(func(_ context.Context, _ string, _ Method, b []byte) ([]byte, error) {
		if len(b) == 1 && b[0] == 's' {
			return []byte("small"), nil
		}
		return make([]byte, reply), nil
	})
	scfg, _ := testConfig(t, "server", h)
	scfg.MaxFrame = 2 << 20
	srv := listen(t, scfg)
	for _, tc := range []struct {
		name    string
		maxWait time.Duration
	}{{"room made", time.Minute}, {"wait ends", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			budget, err := membudget.New(membudget.Config{Limit: 4 << 20, MaxWait: tc.maxWait})
			if err != nil {
				t.Fatal(err)
			}
			ccfg, _ := testConfig(t, "client", nil)
			ccfg.MaxFrame = 2 << 20
			ccfg.Budget = budget
			cl := listen(t, ccfg)
			if err := budget.Take(t.Context(), 4<<20); err != nil {
				t.Fatal(err)
			}
			if got, err := cl.Call(ctxTimeout(t, 10*time.Second), srv.LocalAddr(), 1, []byte("s")); err != nil || string(got) != "small" {
				t.Fatalf("small reply with the budget full: %q, %v", got, err)
			}
			done := make(chan error, 1)
			go func() {
				got, err := cl.Call(ctxTimeout(t, 20*time.Second), srv.LocalAddr(), 1, []byte("large"))
				if err == nil && len(got) != reply {
					err = fmt.Errorf("reply of %d bytes, want %d", len(got), reply)
				}
				done <- err
			}()
			if tc.maxWait == time.Minute {
				waitfor.Cond(t, 10*time.Second, "the reply to wait for the budget", func() bool {
					s := budget.Stats()
					return s.Waiting == 1 && s.WaitingBytes >= reply
				})
				select {
				case err := <-done:
					t.Fatalf("the call returned while its reply waited for the budget: %v", err)
				default:
				}
				budget.Release(4 << 20)
				if err := <-done; err != nil {
					t.Fatalf("call once the budget had room: %v", err)
				}
			} else {
				if err := <-done; !errors.Is(err, membudget.ErrBusy) {
					t.Fatalf("call with the budget full past its wait: %v, want busy", err)
				}
				budget.Release(4 << 20)
				if got, err := cl.Call(ctxTimeout(t, 10*time.Second), srv.LocalAddr(), 1, []byte("large")); err != nil || len(got) != reply {
					t.Fatalf("call after a refused reply: %d bytes, %v", len(got), err)
				}
			}
			waitfor.Cond(t, 10*time.Second, "the charge returned", func() bool { return budget.Stats().InUse == 0 })
			if s := budget.Stats(); s.Peak > 4<<20 {
				t.Fatalf("budget %+v: over its limit", s)
			}
		})
	}
}
