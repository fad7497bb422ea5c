package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goResult is what a Go call's done got, and how often it was called.
type goResult struct {
	body  []byte
	err   error
	calls atomic.Int32
	got   chan struct{}
}

func newGoResult() *goResult { return &goResult{got: make(chan struct{})} }

func (r *goResult) done(b []byte, err error) {
	if r.calls.Add(1) == 1 {
		r.body, r.err = b, err
		close(r.got)
	}
}

// Complete makes a goResult a Completer (GoTo).
func (r *goResult) Complete(b []byte, err error) { r.done(b, err) }

func (r *goResult) wait(t *testing.T) ([]byte, error) {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(10 * time.Second):
		t.Fatal("done not called within 10s")
	}
	return r.body, r.err
}

// Go delivers every reply to its own done exactly once, with the body of
// its own request, whether the connection is up (no goroutine per call) or
// still to be dialled (the first calls).
func TestTCPGoDeliversEachReplyOnce(t *testing.T) {
	srv, cli, _ := pair(t, echo, func(_, c *Config) { c.ConnsPerPeer = 1 })
	const n = 200
	rs := make([]*goResult, n)
	for i := range rs {
		rs[i] = newGoResult()
		cli.Go(ctxTimeout(t, 10*time.Second), srv.LocalAddr(), 3, fmt.Appendf(nil, "req %d", i), rs[i].done)
	}
	for i, r := range rs {
		got, err := r.wait(t)
		if want := fmt.Appendf([]byte{3}, "req %d", i); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("call %d: %q, %v; want %q", i, got, err, want)
		}
	}
	eventually(t, "no call pending", func() bool { return pendingCalls(cli, srv.LocalAddr()) == 0 })
	for i, r := range rs {
		if c := r.calls.Load(); c != 1 {
			t.Fatalf("call %d: done called %d times", i, c)
		}
	}
}

// A Go call whose ctx ends gets ctx's error and gives its slot back: with
// MaxInflight 1, a later call goes through while the first handler still
// runs, and the late reply is dropped.
func TestTCPGoDeadlineFreesTheSlot(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	h := HandlerFunc(func(ctx context.Context, f string, m Method, body []byte) ([]byte, error) {
		if m == 1 {
			<-release
		}
		return echo(ctx, f, m, body)
	})
	srv, cli, _ := pair(t, h, func(s, c *Config) {
		c.ConnsPerPeer = 1
		c.MaxInflight = 1
		s.MaxInflight = 2
	})
	defer once.Do(func() { close(release) })
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, nil); err != nil {
		t.Fatalf("warm-up call: %v", err)
	}
	r := newGoResult()
	cli.Go(ctxTimeout(t, 100*time.Millisecond), srv.LocalAddr(), 1, []byte("late"), r.done)
	_, err := r.wait(t)
	mustIs(t, err, context.DeadlineExceeded)
	if n := pendingCalls(cli, srv.LocalAddr()); n != 0 {
		t.Fatalf("%d calls pending after the deadline", n)
	}
	r2 := newGoResult()
	cli.Go(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, []byte("next"), r2.done)
	if got, err := r2.wait(t); err != nil || string(got) != "\x02next" {
		t.Fatalf("call after the expired one = %q, %v", got, err)
	}
	once.Do(func() { close(release) })
	if c := r.calls.Load(); c != 1 {
		t.Fatalf("expired call's done called %d times", c)
	}
}

// Go calls in flight fail with ErrConnLost when the peer dies, and a call
// to nowhere fails with ErrUnreachable; done is called once either way.
func TestTCPGoPeerDeathAndUnreachable(t *testing.T) {
	var started sync.WaitGroup
	started.Add(3)
	h := HandlerFunc(func(ctx context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
		started.Done()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	srv, cli, _ := pair(t, h, func(_, c *Config) { c.ConnsPerPeer = 1 })
	if err := (func() error { // dial first, so the calls take the asynchronous path
		r := newGoResult()
		cli.Go(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 0, nil, r.done)
		_, err := r.wait(t)
		return err
	})(); err != ErrInvalidMethod {
		t.Fatalf("method 0: %v, want ErrInvalidMethod", err)
	}
	rs := make([]*goResult, 3)
	for i := range rs {
		rs[i] = newGoResult()
		cli.Go(ctxTimeout(t, time.Minute), srv.LocalAddr(), 1, nil, rs[i].done)
	}
	started.Wait()
	srv.Close()
	for _, r := range rs {
		_, err := r.wait(t)
		mustIs(t, err, ErrConnLost, ErrUnreachable)
	}
	r := newGoResult()
	cli.Go(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil, r.done)
	_, err := r.wait(t)
	mustIs(t, err, ErrUnreachable)
	for i, r := range rs {
		if c := r.calls.Load(); c != 1 {
			t.Fatalf("call %d: done called %d times", i, c)
		}
	}
}

// Go, the function, falls back to Call in a goroutine for a transport that
// is not an AsyncCaller, on a copy of the body.
func TestGoFallsBackToCall(t *testing.T) {
	trs := memCluster(t, NewMemNetwork(1), echo, "a", "b")
	body := []byte("mem")
	r := newGoResult()
	Go(ctxTimeout(t, 5*time.Second), trs["b"], "a", 4, body, r.done)
	copy(body, "xxx") // not retained
	if got, err := r.wait(t); err != nil || string(got) != "\x04mem" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// GoTo reports to the Completer exactly once: TCP's own GoTo, over a
// connection up or still to be dialled, and the fallback to Go for a
// transport that is not a CompleterCaller.
func TestGoToCompletes(t *testing.T) {
	srv, cli, _ := pair(t, echo, func(_, c *Config) { c.ConnsPerPeer = 1 })
	var _ CompleterCaller = cli
	trs := memCluster(t, NewMemNetwork(1), echo, "a", "b")
	for i, c := range []struct {
		tr   Transport
		addr string
	}{{cli, srv.LocalAddr()}, {cli, srv.LocalAddr()}, {trs["b"], "a"}} {
		body := fmt.Appendf(nil, "req %d", i)
		r := newGoResult()
		GoTo(ctxTimeout(t, 10*time.Second), c.tr, c.addr, 5, body, r)
		copy(body, "xxx") // not retained
		got, err := r.wait(t)
		if want := fmt.Appendf([]byte{5}, "req %d", i); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("call %d: %q, %v; want %q", i, got, err, want)
		}
		eventually(t, "no call pending", func() bool { return pendingCalls(cli, srv.LocalAddr()) == 0 })
		if n := r.calls.Load(); n != 1 {
			t.Fatalf("call %d: Complete called %d times", i, n)
		}
	}
	r := newGoResult()
	GoTo(ctxTimeout(t, time.Second), cli, srv.LocalAddr(), 0, nil, r)
	if _, err := r.wait(t); !errors.Is(err, ErrInvalidMethod) {
		t.Fatalf("method 0: %v, want ErrInvalidMethod", err)
	}
}

// A Go call whose ctx has no deadline ends when ctx is cancelled; one with
// a deadline that is cancelled earlier ends at the deadline at the latest.
func TestTCPGoCancel(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, _ string, m Method, _ []byte) ([]byte, error) {
		if m == 2 {
			<-release // ignores its deadline: only the caller's expiry ends the call
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	srv, cli, _ := pair(t, h, func(_, c *Config) { c.ConnsPerPeer = 1 })
	defer close(release)
	if _, err := cli.Call(ctxTimeout(t, 100*time.Millisecond), srv.LocalAddr(), 1, nil); err == nil {
		t.Fatal("warm-up call: no error") // dials; the handler waits for the budget's end
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := newGoResult()
	cli.Go(ctx, srv.LocalAddr(), 1, nil, r.done)
	cancel()
	_, err := r.wait(t)
	mustIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r = newGoResult()
	begin := time.Now()
	cli.Go(ctx, srv.LocalAddr(), 2, nil, r.done)
	cancel()
	_, err = r.wait(t)
	mustIs(t, err, context.Canceled)
	if el := time.Since(begin); el > 5*time.Second {
		t.Fatalf("cancelled call ended after %v, want by its 200ms deadline", el)
	}
	eventually(t, "no call pending", func() bool { return pendingCalls(cli, srv.LocalAddr()) == 0 })
}
