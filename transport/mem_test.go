package transport

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

// memCluster attaches nodes named after their addresses, all serving h.
func memCluster(t *testing.T, n *MemNetwork, h Handler, addrs ...string) map[string]*MemTransport {
	t.Helper()
	out := make(map[string]*MemTransport)
	for _, a := range addrs {
		tr, err := n.Listen(a, "id-"+a, h)
		if err != nil {
			t.Fatalf("Listen %s: %v", a, err)
		}
		t.Cleanup(func() { tr.Close() })
		out[a] = tr
	}
	return out
}

// reaches calls to from ts[from] (method 1) and wants a reply.
func reaches(t *testing.T, ts map[string]*MemTransport, from, to string) {
	t.Helper()
	if _, err := ts[from].Call(t.Context(), to, 1, nil); err != nil {
		t.Fatalf("%s->%s: %v", from, to, err)
	}
}

// timesOut calls to from ts[from] (method 1) with a deadline d from now
// and wants the call to end at it: dropped, or slower than d.
func timesOut(t *testing.T, ts map[string]*MemTransport, from, to string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	_, err := ts[from].Call(ctx, to, 1, nil)
	mustIs(t, err, context.DeadlineExceeded)
}

func TestMemRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var from atomic.Value
		var kept []byte
		h := HandlerFunc(func(_ context.Context, f string, m Method, body []byte) ([]byte, error) {
			from.Store(f)
			body[0] = 'X' // the caller's slice must not change
			kept = append([]byte{byte(m)}, body...)
			return kept, nil
		})
		n := NewMemNetwork(1)
		ts := memCluster(t, n, h, "a", "b")
		body := []byte("hello")
		got, err := ts["a"].Call(t.Context(), "b", 3, body)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != "hello" {
			t.Fatalf("handler changed the caller's body to %q", body)
		}
		if string(got) != "\x03Xello" || from.Load() != "id-a" {
			t.Fatalf("got %q from %v", got, from.Load())
		}
		got[1] = 'Y' // nor may the caller's reply alias the handler's
		if kept[1] != 'X' {
			t.Fatalf("reply shares memory with the handler")
		}
		if ts["a"].LocalAddr() != "a" {
			t.Fatalf("LocalAddr = %q", ts["a"].LocalAddr())
		}
		_, err = ts["a"].Call(t.Context(), "b", 0, nil)
		mustIs(t, err, ErrInvalidMethod)
		if _, err := n.Listen("b", "again", h); err == nil {
			t.Fatalf("second Listen on an open address succeeded")
		}
	})
}

func TestMemRemoteErrorAndPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := HandlerFunc(func(_ context.Context, _ string, m Method, _ []byte) ([]byte, error) {
			switch m {
			case 1:
				return nil, &RemoteError{Code: 9, Msg: "nine"}
			case 2:
				return nil, errors.New("plain")
			}
			panic("boom")
		})
		n := NewMemNetwork(1)
		ts := memCluster(t, n, h, "a", "b")
		for _, tc := range []struct {
			m    Method
			code uint16
			msg  string
		}{{1, 9, "nine"}, {2, 0, "plain"}, {3, 0, panicMsg}} {
			_, err := ts["a"].Call(t.Context(), "b", tc.m, nil)
			var re *RemoteError
			if !errors.As(err, &re) || re.Code != tc.code || re.Msg != tc.msg {
				t.Fatalf("method %d: %v, want code %d %q", tc.m, err, tc.code, tc.msg)
			}
		}
	})
}

func TestMemPartitionAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b", "c", "d")
		n.Partition([]string{"a"}, []string{"b", "c"})

		start := time.Now()
		timesOut(t, ts, "a", "b", time.Second)
		if el := time.Since(start); el != time.Second {
			t.Fatalf("partitioned call returned after %v, want its 1s deadline", el)
		}
		// Within a group, and to oneself, messages flow.
		reaches(t, ts, "b", "c")
		reaches(t, ts, "a", "a")
		// d was named in no group: it is cut from both groups.
		timesOut(t, ts, "d", "c", time.Second)
		if s := n.Stats()[Link{"a", "b"}]; s.Sent != 1 || s.Dropped != 1 || s.Delivered != 0 {
			t.Fatalf("a->b stats %+v", s)
		}

		n.Heal()
		reaches(t, ts, "a", "b")
	})
}

// A partition that starts while a reply is on its way loses the reply.
func TestMemPartitionCatchesMessagesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b")
		n.Delay("b", "a", func(*rand.Rand) time.Duration { return time.Second })
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		errc := make(chan error)
		go func() {
			_, err := ts["a"].Call(ctx, "b", 1, nil)
			errc <- err
		}()
		time.Sleep(500 * time.Millisecond) // the reply is half way
		n.Partition([]string{"a"}, []string{"b"})
		mustIs(t, <-errc, context.DeadlineExceeded)
	})
}

func TestMemIsolate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b", "c")
		n.Isolate("c")
		for _, l := range []Link{{"a", "c"}, {"c", "a"}, {"c", "b"}} {
			timesOut(t, ts, l.From, l.To, time.Second)
		}
		reaches(t, ts, "a", "b")
		n.Heal()
		reaches(t, ts, "a", "c")
	})
}

// With a fixed seed the share of dropped requests is close to p, and the
// counters agree with what callers saw.
func TestMemDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const calls, p = 2000, 0.3
		n := NewMemNetwork(42)
		ts := memCluster(t, n, echo, "a", "b")
		n.Drop("a", "b", p)
		failed := 0
		for range calls {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			if _, err := ts["a"].Call(ctx, "b", 1, nil); err != nil {
				mustIs(t, err, context.DeadlineExceeded)
				failed++
			}
			cancel()
		}
		if got := float64(failed) / calls; got < p-0.04 || got > p+0.04 {
			t.Fatalf("%.3f of calls lost, want about %.2f", got, p)
		}
		st := n.Stats()
		if req := st[Link{"a", "b"}]; req.Dropped != uint64(failed) || req.Sent != calls || req.Delivered != uint64(calls-failed) {
			t.Fatalf("request stats %+v with %d lost", req, failed)
		}
		if rep := st[Link{"b", "a"}]; rep.Dropped != 0 || rep.Delivered != uint64(calls-failed) {
			t.Fatalf("reply stats %+v: Drop(a, b) must not touch b->a", rep)
		}
		// Dropping the reply direction loses calls too, after the handler ran.
		n.Heal()
		var ran atomic.Int32
		ts["c"], _ = n.Listen("c", "id-c", HandlerFunc(func(context.Context, string, Method, []byte) ([]byte, error) {
			ran.Add(1)
			return nil, nil
		}))
		defer ts["c"].Close()
		n.Drop("c", Any, 1)
		timesOut(t, ts, "a", "c", time.Second)
		if ran.Load() != 1 {
			t.Fatalf("handler ran %d times, want 1", ran.Load())
		}
	})
}

func TestMemDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		var bodies sync.Map
		var shared atomic.Bool
		h := HandlerFunc(func(_ context.Context, _ string, _ Method, b []byte) ([]byte, error) {
			runs.Add(1)
			if _, dup := bodies.LoadOrStore(&b[0], true); dup {
				shared.Store(true)
			}
			return []byte("ok"), nil
		})
		n := NewMemNetwork(1)
		ts := memCluster(t, n, h, "a", "b")
		n.Duplicate("a", "b", 1)
		got, err := ts["a"].Call(t.Context(), "b", 1, []byte("x"))
		if err != nil || string(got) != "ok" {
			t.Fatalf("Call = %q, %v", got, err)
		}
		synctest.Wait() // let the second delivery finish
		if r := runs.Load(); r != 2 {
			t.Fatalf("handler ran %d times, want 2", r)
		}
		if shared.Load() {
			t.Fatalf("the two deliveries share memory")
		}
		if s := n.Stats()[Link{"a", "b"}]; s.Duplicated != 1 || s.Sent != 2 || s.Delivered != 2 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestMemDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b", "c")
		n.Delay("a", "b", func(*rand.Rand) time.Duration { return 50 * time.Millisecond })
		n.Delay(Any, "a", func(*rand.Rand) time.Duration { return 20 * time.Millisecond })
		for _, tc := range []struct {
			from, to string
			want     time.Duration
		}{
			{"a", "b", 70 * time.Millisecond}, // 50 there, 20 back (b->a matches Any->a)
			{"c", "a", 20 * time.Millisecond}, // c->a matches Any->a, the reply a->c has no rule
			{"b", "c", 0},
		} {
			start := time.Now()
			if _, err := ts[tc.from].Call(t.Context(), tc.to, 1, nil); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el != tc.want {
				t.Fatalf("%s->%s took %v, want %v", tc.from, tc.to, el, tc.want)
			}
		}
		// A delay longer than the deadline is a timeout.
		timesOut(t, ts, "a", "b", 30*time.Millisecond)
	})
}

// Varying delays reorder messages.
func TestMemReorder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var order []byte
		h := HandlerFunc(func(_ context.Context, _ string, _ Method, b []byte) ([]byte, error) {
			mu.Lock()
			order = append(order, b[0])
			mu.Unlock()
			return nil, nil
		})
		n := NewMemNetwork(1)
		ts := memCluster(t, n, h, "a", "b")
		next := 5 * time.Second
		n.Delay("a", "b", func(*rand.Rand) time.Duration { next -= time.Second; return next })
		var wg sync.WaitGroup
		for i := range byte(4) {
			wg.Go(func() {
				if _, err := ts["a"].Call(t.Context(), "b", 1, []byte{i}); err != nil {
					t.Error(err)
				}
			})
			synctest.Wait() // send in order 0, 1, 2, 3
		}
		wg.Wait()
		if !bytes.Equal(order, []byte{3, 2, 1, 0}) {
			t.Fatalf("arrival order %v, want reversed", order)
		}
	})
}

// The same seed gives the same faults.
func TestMemSeedIsReproducible(t *testing.T) {
	run := func(seed int64) []bool {
		var out []bool
		synctest.Test(t, func(t *testing.T) {
			n := NewMemNetwork(seed)
			ts := memCluster(t, n, echo, "a", "b")
			n.Drop("a", "b", 0.5)
			for range 64 {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				_, err := ts["a"].Call(ctx, "b", 1, nil)
				cancel()
				out = append(out, err == nil)
			}
		})
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if !equalBools(a, b) {
		t.Fatalf("seed 7 gave different drops")
	}
	if equalBools(a, c) {
		t.Fatalf("seeds 7 and 8 gave the same 64 drops")
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A closed transport is a dead process: refused at once, and reachable
// again when it restarts on the same address.
func TestMemDeadPeerAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b")
		ts["b"].Close()
		start := time.Now()
		_, err := ts["a"].Call(t.Context(), "b", 1, nil)
		mustIs(t, err, ErrUnreachable)
		if errors.Is(err, ErrConnLost) || time.Since(start) != 0 {
			t.Fatalf("call to a dead peer: %v after %v", err, time.Since(start))
		}
		_, err = ts["a"].Call(t.Context(), "nowhere", 1, nil)
		mustIs(t, err, ErrUnreachable)
		if s := n.Stats()[Link{"a", "b"}]; s.Refused != 1 {
			t.Fatalf("stats %+v", s)
		}
		b2, err := n.Listen("b", "id-b", echo)
		if err != nil {
			t.Fatal(err)
		}
		defer b2.Close()
		reaches(t, ts, "a", "b") // the restarted b
	})
}

func TestMemPeerDeathMidCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Bool
		h := HandlerFunc(func(ctx context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
			<-ctx.Done()
			cancelled.Store(true)
			return []byte("too late"), nil
		})
		n := NewMemNetwork(1)
		ts := memCluster(t, n, h, "a", "b")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		errc := make(chan error)
		go func() {
			_, err := ts["a"].Call(ctx, "b", 1, nil)
			errc <- err
		}()
		time.Sleep(time.Second)
		ts["b"].Close()
		start := time.Now()
		mustIs(t, <-errc, ErrConnLost, ErrUnreachable)
		if el := time.Since(start); el != 0 {
			t.Fatalf("pending call failed %v after the peer died", el)
		}
		if !cancelled.Load() {
			t.Fatalf("handler ctx not cancelled by Close")
		}
	})
}

func TestMemCloseWithCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b")
		n.Delay("a", "b", func(*rand.Rand) time.Duration { return time.Hour })
		n.Partition([]string{"a"}, []string{"c"}) // b is reachable; c is cut off
		errs := make(chan error, 2)
		for _, to := range []string{"b", "c"} {
			go func() {
				_, err := ts["a"].Call(t.Context(), to, 1, nil)
				errs <- err
			}()
		}
		synctest.Wait()
		ts["a"].Close()
		mustIs(t, <-errs, ErrClosed)
		mustIs(t, <-errs, ErrClosed)
		ts["a"].Close() // idempotent
		_, err := ts["a"].Call(t.Context(), "b", 1, nil)
		mustIs(t, err, ErrClosed)
	})
}

// The caller's deadline bounds the handler's ctx.
func TestMemDeadlineReachesHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var left time.Duration
		h := HandlerFunc(func(ctx context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
			dl, _ := ctx.Deadline()
			left = time.Until(dl)
			return nil, nil
		})
		n := NewMemNetwork(1)
		ts := memCluster(t, n, h, "a", "b")
		n.Delay("a", "b", func(*rand.Rand) time.Duration { return 100 * time.Millisecond })
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := ts["a"].Call(ctx, "b", 1, nil); err != nil {
			t.Fatal(err)
		}
		if left != 900*time.Millisecond {
			t.Fatalf("handler had %v left, want 900ms", left)
		}
	})
}

// SetLatency delays requests, replies and refusals by each link's own
// latency, and Heal keeps it.
func TestMemLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		echo := HandlerFunc(func(_ context.Context, _ string, _ Method, body []byte) ([]byte, error) { return body, nil })
		n := NewMemNetwork(1)
		ts := memCluster(t, n, echo, "a", "b")
		lat := map[Link]time.Duration{{"a", "b"}: 3 * time.Millisecond, {"b", "a"}: 5 * time.Millisecond, {"a", "gone"}: time.Millisecond, {"gone", "a"}: 2 * time.Millisecond}
		n.SetLatency(func(l Link) time.Duration { return lat[l] })
		n.Heal()
		start := time.Now()
		if _, err := ts["a"].Call(t.Context(), "b", 1, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 8*time.Millisecond {
			t.Errorf("a round trip took %v, want 8ms (3ms there, 5ms back)", d)
		}
		start = time.Now()
		_, err := ts["a"].Call(t.Context(), "gone", 1, nil)
		mustIs(t, err, ErrUnreachable)
		if d := time.Since(start); d != 3*time.Millisecond {
			t.Errorf("a refusal took %v, want 3ms (a round trip)", d)
		}
	})
}

// Each link draws its drops from its own stream: traffic on one link does
// not change which messages another link loses.
func TestMemDropsPerLink(t *testing.T) {
	lost := func(noise int) []bool {
		var out []bool
		synctest.Test(t, func(t *testing.T) {
			echo := HandlerFunc(func(_ context.Context, _ string, _ Method, body []byte) ([]byte, error) { return body, nil })
			n := NewMemNetwork(7)
			ts := memCluster(t, n, echo, "a", "b", "c")
			n.Drop(Any, Any, 0.5)
			for i := range 40 {
				for range noise {
					ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
					_, _ = ts["c"].Call(ctx, "b", 1, nil)
					cancel()
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
				_, err := ts["a"].Call(ctx, "b", 1, []byte{byte(i)})
				cancel()
				out = append(out, err != nil)
			}
		})
		return out
	}
	quiet, noisy := lost(0), lost(3)
	if !slices.Equal(quiet, noisy) {
		t.Fatalf("traffic c->b changed what a->b lost:\n%v\n%v", quiet, noisy)
	}
	if !slices.Contains(quiet, true) || !slices.Contains(quiet, false) {
		t.Fatalf("a 50%% drop rule lost all or nothing of 40 round trips: %v", quiet)
	}
}

// TestMemSequencerOrder: with a Sequencer, requests sent at one instant
// by racing goroutines reach the handler one per instant, in an order
// fixed by what they carry, the same on every run; a peer's Close fails
// its callers in one order too.
func TestMemSequencerOrder(t *testing.T) {
	var first []string
	for run := range 10 {
		synctest.Test(t, func(t *testing.T) {
			n := NewMemNetwork(1)
			n.SetSequencer(clock.NewSequencer())
			var mu sync.Mutex
			var got []string
			var at []time.Time
			h := HandlerFunc(func(_ context.Context, _ string, _ Method, body []byte) ([]byte, error) {
				mu.Lock()
				got, at = append(got, string(body)), append(at, time.Now())
				mu.Unlock()
				return body, nil
			})
			ts := memCluster(t, n, h, "a", "b")
			var wg sync.WaitGroup
			for _, b := range []string{"w", "x", "y", "z", "v"} {
				wg.Go(func() {
					if _, err := ts["a"].Call(t.Context(), "b", 1, []byte(b)); err != nil {
						t.Errorf("call %s: %v", b, err)
					}
				})
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i < len(at); i++ {
				if !at[i].After(at[i-1]) {
					t.Fatalf("deliveries %d and %d at one instant: %v", i-1, i, at)
				}
			}
			if run == 0 {
				first = got
			} else if !slices.Equal(got, first) {
				t.Fatalf("run %d delivered %v, run 0 %v", run, got, first)
			}
		})
	}
	if len(first) != 5 {
		t.Fatalf("delivered %v", first)
	}
}
