package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// echoTransport answers every call at once with its body and remembers
// when each call reached it and which peers were forgotten.
type echoTransport struct {
	mu        sync.Mutex
	arrived   []time.Time
	forgotten []string
	err       error
	closed    bool
}

func (e *echoTransport) Call(ctx context.Context, addr string, m Method, body []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.arrived = append(e.arrived, time.Now())
	if e.err != nil {
		return nil, e.err
	}
	return append([]byte(nil), body...), nil
}
func (e *echoTransport) LocalAddr() string { return "echo:1" }
func (e *echoTransport) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}
func (e *echoTransport) Forget(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forgotten = append(e.forgotten, addr)
}

// bareTransport has no Forget.
type bareTransport struct{ echoTransport }

func (b *bareTransport) Forget() {} // different signature: not the optional interface

func fixed(d time.Duration) DelayFunc { return func() time.Duration { return d } }

func TestDelayedDelaysRequestAndReply(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		// want: time from Call to arrival at the wrapped transport, and to
		// the reply.
		arrive, total time.Duration
	}{
		{"zero", 0, 0, 0},
		{"negative counts as zero", -time.Second, 0, 0},
		{"5ms each way", 5 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond},
		{"capped", time.Hour, MaxInjectedDelay, 2 * MaxInjectedDelay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				in := &echoTransport{}
				d := NewDelayed(in, fixed(tc.delay))
				start := time.Now()
				reply, err := d.Call(t.Context(), "peer:1", 1, []byte("ping"))
				if err != nil || string(reply) != "ping" {
					t.Fatalf("Call = %q, %v", reply, err)
				}
				if got := in.arrived[0].Sub(start); got != tc.arrive {
					t.Errorf("request reached the wrapped transport after %v, want %v", got, tc.arrive)
				}
				if got := time.Since(start); got != tc.total {
					t.Errorf("Call returned after %v, want %v", got, tc.total)
				}
			})
		})
	}
}

func TestDelayedDrawsPerMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var draws atomic.Int64
		d := NewDelayed(&echoTransport{}, func() time.Duration {
			return time.Duration(draws.Add(1)) * time.Millisecond
		})
		start := time.Now()
		if _, err := d.Call(t.Context(), "p", 1, nil); err != nil {
			t.Fatal(err)
		}
		// Two draws, 1ms then 2ms.
		if n, took := draws.Load(), time.Since(start); n != 2 || took != 3*time.Millisecond {
			t.Fatalf("%d draws, %v; want 2 draws, 3ms", n, took)
		}
	})
}

func TestDelayedErrorsAreNotDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		remote := &RemoteError{Code: 7, Msg: "no"}
		d := NewDelayed(&echoTransport{err: remote}, fixed(10*time.Millisecond))
		start := time.Now()
		_, err := d.Call(t.Context(), "p", 1, nil)
		var re *RemoteError
		if !errors.As(err, &re) || re.Code != 7 {
			t.Fatalf("err = %v, want the remote error", err)
		}
		if took := time.Since(start); took != 10*time.Millisecond {
			t.Fatalf("failed call took %v, want only the request delay (10ms)", took)
		}
	})
}

func TestDelayedHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &echoTransport{}
		d := NewDelayed(in, fixed(time.Second))
		// Deadline before the request delay ends: never sent.
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := d.Call(ctx, "p", 1, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if took := time.Since(start); took != 100*time.Millisecond {
			t.Fatalf("returned after %v, want at the deadline (100ms)", took)
		}
		if len(in.arrived) != 0 {
			t.Fatal("request was sent after its deadline")
		}
		// Deadline during the reply delay: sent, reply dropped.
		ctx2, cancel2 := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel2()
		reply, err := d.Call(ctx2, "p", 1, []byte("x"))
		if !errors.Is(err, context.DeadlineExceeded) || reply != nil {
			t.Fatalf("Call = %q, %v; want no reply and deadline exceeded", reply, err)
		}
		if len(in.arrived) != 1 {
			t.Fatalf("%d requests sent, want 1", len(in.arrived))
		}
	})
}

func TestDelayedCloseWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &echoTransport{}
		d := NewDelayed(in, fixed(time.Hour))
		errc := make(chan error, 1)
		go func() {
			_, err := d.Call(context.Background(), "p", 1, nil)
			errc <- err
		}()
		synctest.Wait() // the call is parked in its delay
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting call after Close: %v, want ErrClosed", err)
		}
		if !in.closed {
			t.Fatal("wrapped transport not closed")
		}
		if _, err := d.Call(context.Background(), "p", 1, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("call after Close: %v, want ErrClosed", err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestDelayedForwardsForget(t *testing.T) {
	in := &echoTransport{}
	d := NewDelayed(in, nil)
	// node finds Forget by this exact assertion.
	f, ok := Transport(d).(interface{ Forget(addr string) })
	if !ok {
		t.Fatal("Delayed has no Forget(addr)")
	}
	f.Forget("peer:9")
	if len(in.forgotten) != 1 || in.forgotten[0] != "peer:9" {
		t.Fatalf("forgotten = %q, want [peer:9]", in.forgotten)
	}
	if d.LocalAddr() != "echo:1" || d.Unwrap() != Transport(in) {
		t.Fatal("LocalAddr or Unwrap does not reach the wrapped transport")
	}
	// Without a Forget underneath, forwarding is a no-op, not a panic.
	NewDelayed(&bareTransport{}, nil).Forget("peer:9")
}

// TestDelayedOverTCP checks the wrapper against the real transport: the
// delay shows in the round trip and Forget reaches TCP.
func TestDelayedOverTCP(t *testing.T) {
	scfg, _ := testConfig(t, "srv", HandlerFunc(func(ctx context.Context, from string, m Method, body []byte) ([]byte, error) {
		return body, nil
	}))
	srv, err := Listen(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ccfg, _ := testConfig(t, "cli", nil)
	cli, err := Listen(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDelayed(cli, fixed(20*time.Millisecond))
	defer d.Close()
	start := time.Now()
	reply, err := d.Call(t.Context(), srv.LocalAddr(), 1, []byte("hi"))
	if err != nil || string(reply) != "hi" {
		t.Fatalf("Call = %q, %v", reply, err)
	}
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Fatalf("round trip took %v, want at least 2 × 20ms", took)
	}
	d.Forget(srv.LocalAddr())
	if _, err := d.Call(t.Context(), srv.LocalAddr(), 1, []byte("again")); err != nil {
		t.Fatalf("call after Forget: %v", err)
	}
}

// ExampleNewDelayed delays every message of a node by a fixed 2ms each way
// (the agent's --inject-delay draws from a distribution instead).
func ExampleNewDelayed() {
	net := NewMemNetwork(1)
	echo := HandlerFunc(func(ctx context.Context, from string, m Method, body []byte) ([]byte, error) {
		return body, nil
	})
	srv, _ := net.Listen("b", "b", echo)
	defer srv.Close()
	cli, _ := net.Listen("a", "a", echo)
	tr := NewDelayed(cli, func() time.Duration { return 2 * time.Millisecond })
	defer tr.Close()

	start := time.Now()
	reply, err := tr.Call(context.Background(), "b", 1, []byte("ping"))
	fmt.Println(string(reply), err, time.Since(start) >= 4*time.Millisecond)
	// Output: ping <nil> true
}
