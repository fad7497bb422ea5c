package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestTCPRoundTrip(t *testing.T) {
	var from atomic.Value
	h := HandlerFunc(func(ctx context.Context, f string, m Method, body []byte) ([]byte, error) {
		from.Store(f)
		return echo(ctx, f, m, body)
	})
	srv, cli, _ := pair(t, h, nil)

	for _, tc := range []struct {
		name string
		m    Method
		size int
	}{
		{"empty", 1, 0},
		{"one byte", 2, 1},
		{"64B", 3, 64},
		{"4KiB", 255, 4 << 10},
		{"1MiB", 9, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{0xab}, tc.size)
			got, err := cli.Call(ctxTimeout(t, 10*time.Second), srv.LocalAddr(), tc.m, body)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			want := append([]byte{byte(tc.m)}, body...)
			if !bytes.Equal(got, want) {
				t.Fatalf("reply of %d bytes, want %d bytes echoing method %d", len(got), len(want), tc.m)
			}
			if f := from.Load(); f != "client" {
				t.Fatalf("handler saw from=%v, want client", f)
			}
		})
	}
}

func TestTCPCallToSelf(t *testing.T) {
	cfg, _ := testConfig(t, "self", echo)
	tr := listen(t, cfg)
	got, err := tr.Call(ctxTimeout(t, 5*time.Second), tr.LocalAddr(), 1, []byte("x"))
	if err != nil || string(got) != "\x01x" {
		t.Fatalf("Call to self = %q, %v", got, err)
	}
}

func TestTCPInvalidMethod(t *testing.T) {
	cfg, _ := testConfig(t, "c", nil)
	tr := listen(t, cfg)
	_, err := tr.Call(t.Context(), "127.0.0.1:1", 0, nil)
	mustIs(t, err, ErrInvalidMethod)
}

func TestTCPRemoteError(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ string, m Method, _ []byte) ([]byte, error) {
		switch m {
		case 1:
			return nil, &RemoteError{Code: 42, Msg: "not found"}
		case 2:
			return nil, errors.New("plain failure")
		case 3:
			return nil, fmt.Errorf("wrapped: %w", &RemoteError{Code: 7, Msg: "inner"})
		case 4:
			return nil, errors.New(strings.Repeat("x", 10*maxErrorMsg))
		}
		return nil, nil
	})
	srv, cli, _ := pair(t, h, nil)

	for _, tc := range []struct {
		m    Method
		code uint16
		msg  string
	}{
		{1, 42, "not found"},
		{2, 0, "plain failure"},
		{3, 7, "inner"},
		{4, 0, strings.Repeat("x", maxErrorMsg)},
	} {
		_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), tc.m, nil)
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("method %d: error %v is not a *RemoteError", tc.m, err)
		}
		if re.Code != tc.code || re.Msg != tc.msg {
			t.Fatalf("method %d: got code %d msg %.40q, want %d %.40q", tc.m, re.Code, re.Msg, tc.code, tc.msg)
		}
	}
	// An empty, successful reply.
	got, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 5, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty reply = %q, %v", got, err)
	}
}

func TestTCPHandlerPanicIsRecovered(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, f string, m Method, body []byte) ([]byte, error) {
		if m == 1 {
			panic("boom")
		}
		return echo(ctx, f, m, body)
	})
	srv, cli, slog := pair(t, h, nil)

	_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != panicMsg {
		t.Fatalf("panicking handler gave %v, want RemoteError %q", err, panicMsg)
	}
	slog.waitLog(t, "handler panicked")
	if got, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, []byte("ok")); err != nil || string(got) != "\x02ok" {
		t.Fatalf("call after panic = %q, %v", got, err)
	}
}

func TestTCPNoHandler(t *testing.T) {
	srv, cli, _ := pair(t, nil, nil)
	_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil)
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a RemoteError", err)
	}
}

// Many calls share one connection, all in flight at once, and each gets
// its own reply.
func TestTCPManyConcurrentCallsOneConnection(t *testing.T) {
	const callers, perCaller, together = 64, 20, 32
	var inflight gauge
	gate := make(chan struct{})
	var gateOnce sync.Once
	h := HandlerFunc(func(ctx context.Context, f string, m Method, body []byte) ([]byte, error) {
		n := inflight.enter()
		defer inflight.leave()
		if n >= together {
			gateOnce.Do(func() { close(gate) })
		}
		// Hold the first calls until `together` run at once: only a
		// multiplexed connection gets there.
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return echo(ctx, f, m, body)
	})
	srv, cli, _ := pair(t, h, func(_, c *Config) {
		c.ConnsPerPeer = 1
	})

	ctx := ctxTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			for j := range perCaller {
				body := fmt.Appendf(nil, "caller %d call %d", i, j)
				got, err := cli.Call(ctx, srv.LocalAddr(), 1, body)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got[1:], body) {
					errs <- fmt.Errorf("reply %q to %q", got, body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := inflight.peak.Load(); p < together {
		t.Fatalf("at most %d calls in flight, want %d", p, together)
	}
	if n := liveConns(cli, true); n != 1 {
		t.Fatalf("client has %d connections, want 1", n)
	}
	if n := liveConns(srv, false); n != 1 {
		t.Fatalf("server has %d connections, want 1", n)
	}
	if n := pendingCalls(cli, srv.LocalAddr()); n != 0 {
		t.Fatalf("%d calls still pending", n)
	}
}

// Calls spread over ConnsPerPeer connections.
func TestTCPConnsPerPeer(t *testing.T) {
	srv, cli, _ := pair(t, echo, func(_, c *Config) {
		c.ConnsPerPeer = 3
	})
	eventually(t, "3 connections", func() bool {
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil); err != nil {
			t.Fatalf("Call: %v", err)
		}
		return liveConns(cli, true) == 3
	})
	for range 10 {
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil); err != nil {
			t.Fatalf("Call: %v", err)
		}
	}
	if n := liveConns(cli, true); n != 3 {
		t.Fatalf("client has %d connections, want 3", n)
	}
}

// A call whose deadline passes returns DeadlineExceeded, leaves no pending
// entry, and its late reply is dropped without harm. The deadline travels
// to the handler.
func TestTCPDeadline(t *testing.T) {
	release := make(chan struct{})
	started := make(chan time.Duration, 1)
	h := HandlerFunc(func(ctx context.Context, f string, m Method, body []byte) ([]byte, error) {
		if m == 1 {
			dl, ok := ctx.Deadline()
			if !ok {
				dl = time.Time{}
			}
			started <- time.Until(dl)
			<-release // ignores ctx on purpose, to produce a late reply
		}
		return echo(ctx, f, m, body)
	})
	srv, cli, _ := pair(t, h, func(_, c *Config) {
		c.ConnsPerPeer = 1
	})
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, nil); err != nil {
		t.Fatalf("warm-up call: %v", err)
	}

	begin := time.Now()
	_, err := cli.Call(ctxTimeout(t, 300*time.Millisecond), srv.LocalAddr(), 1, []byte("late"))
	mustIs(t, err, context.DeadlineExceeded)
	if el := time.Since(begin); el > 3*time.Second {
		t.Fatalf("call returned after %v", el)
	}
	if left := <-started; left <= 0 || left > 300*time.Millisecond {
		t.Fatalf("handler's deadline was %v away, want within (0, 300ms]", left)
	}
	if n := pendingCalls(cli, srv.LocalAddr()); n != 0 {
		t.Fatalf("%d calls pending after deadline", n)
	}
	before := cli.Stats()[srv.LocalAddr()].FramesReceived
	close(release)
	eventually(t, "late reply", func() bool { return cli.Stats()[srv.LocalAddr()].FramesReceived > before })
	got, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, []byte("next"))
	if err != nil || string(got) != "\x02next" {
		t.Fatalf("call after late reply = %q, %v", got, err)
	}
	if n := pendingCalls(cli, srv.LocalAddr()); n != 0 {
		t.Fatalf("%d calls pending", n)
	}
}

func TestTCPCancel(t *testing.T) {
	started := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	srv, cli, _ := pair(t, h, nil)

	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	_, err := cli.Call(ctx, srv.LocalAddr(), 1, nil)
	mustIs(t, err, context.Canceled)
	if n := pendingCalls(cli, srv.LocalAddr()); n != 0 {
		t.Fatalf("%d calls pending after cancel", n)
	}
	// A ctx that is already done never reaches the network.
	_, err = cli.Call(ctx, srv.LocalAddr(), 1, nil)
	mustIs(t, err, context.Canceled)
}

// When the peer dies, calls in flight fail at once with ErrConnLost rather
// than waiting for their deadline.
func TestTCPPeerDeathFailsPendingCalls(t *testing.T) {
	var started sync.WaitGroup
	started.Add(3)
	var cancelled atomic.Int32
	h := HandlerFunc(func(ctx context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
		started.Done()
		<-ctx.Done()
		cancelled.Add(1)
		return nil, ctx.Err()
	})
	srv, cli, _ := pair(t, h, nil)

	errs := make(chan error, 3)
	begin := time.Now()
	for range 3 {
		go func() {
			_, err := cli.Call(ctxTimeout(t, time.Minute), srv.LocalAddr(), 1, nil)
			errs <- err
		}()
	}
	started.Wait()
	srv.Close()
	for range 3 {
		err := <-errs
		mustIs(t, err, ErrConnLost, ErrUnreachable)
	}
	if el := time.Since(begin); el > 10*time.Second {
		t.Fatalf("pending calls failed after %v", el)
	}
	if n := cancelled.Load(); n != 3 {
		t.Fatalf("%d handler ctxs cancelled by Close, want 3", n)
	}
}

func TestTCPReconnectAfterRestart(t *testing.T) {
	scfg, _ := testConfig(t, "server", echo)
	srv := listen(t, scfg)
	addr := srv.LocalAddr()
	ccfg, _ := testConfig(t, "client", nil)
	cli := listen(t, ccfg)

	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, nil); err != nil {
		t.Fatalf("first call: %v", err)
	}
	srv.Close()
	_, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, nil)
	mustIs(t, err, ErrUnreachable)

	scfg.ListenAddr = addr
	listen(t, scfg)
	eventually(t, "call after restart", func() bool {
		got, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, []byte("back"))
		if err != nil {
			mustIs(t, err, ErrUnreachable)
			return false
		}
		return string(got) == "\x01back"
	})
}

// While a peer is in backoff, calls fail at once without dialing.
func TestTCPBackoffFailsFast(t *testing.T) {
	scfg, _ := testConfig(t, "gone", nil)
	gone := listen(t, scfg)
	addr := gone.LocalAddr()
	gone.Close()

	ccfg, _ := testConfig(t, "client", nil)
	ccfg.BackoffMin = time.Hour
	ccfg.BackoffMax = time.Hour
	cli := listen(t, ccfg)
	_, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, nil)
	mustIs(t, err, ErrUnreachable)
	if errors.Is(err, ErrConnLost) {
		t.Fatalf("refused dial reported as connection lost: %v", err)
	}
	dials := cli.dials.Load()
	for range 100 {
		_, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, nil)
		mustIs(t, err, ErrUnreachable)
	}
	if got := cli.dials.Load(); got != dials {
		t.Fatalf("%d dials during backoff, want 0", got-dials)
	}
}

func TestTCPAuth(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, client string
		ok             bool
	}{
		{"same secret", "s3cret", "s3cret", true},
		{"both empty", "", "", true},
		{"wrong secret", "s3cret", "guess", false},
		{"client without secret", "s3cret", "", false},
		{"server without secret", "", "s3cret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served atomic.Int32
			h := HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
				served.Add(1)
				return echo(ctx, f, m, b)
			})
			scfg, slog := testConfig(t, "server", h)
			scfg.Secret = []byte(tc.server)
			srv := listen(t, scfg)
			ccfg, _ := testConfig(t, "client", nil)
			ccfg.Secret = []byte(tc.client)
			cli := listen(t, ccfg)

			_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil)
			if tc.ok {
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				return
			}
			mustIs(t, err, ErrAuth, ErrUnreachable)
			slog.waitLog(t, "handshake failed")
			if n := served.Load(); n != 0 {
				t.Fatalf("handler ran %d times for an unauthenticated peer", n)
			}
		})
	}
}

func TestTCPStats(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
		return make([]byte, 50), nil
	})
	srv, cli, _ := pair(t, h, nil)
	for range 3 {
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	req, resp := uint64(3*(frameOverhead+100)), uint64(3*(frameOverhead+50))
	// Sequential calls: one write syscall per frame. Reads depend on how
	// the kernel delivers bytes and on reads pending on idle connections,
	// so only their floor is checked.
	want := PeerStats{BytesSent: req, BytesReceived: resp, FramesSent: 3, FramesReceived: 3, Batches: 3, Writes: 3}
	got := cli.Stats()[srv.LocalAddr()]
	if got.Reads < 3 {
		t.Fatalf("client counted %d reads for 3 replies", got.Reads)
	}
	if got.Reads = 0; got != want {
		t.Fatalf("client stats %+v, want %+v", got, want)
	}
	// The server keys the client by the address it advertised.
	want = PeerStats{BytesSent: resp, BytesReceived: req, FramesSent: 3, FramesReceived: 3, Batches: 3, Writes: 3}
	eventually(t, "server stats", func() bool {
		got := srv.Stats()[cli.LocalAddr()]
		got.Reads = 0
		return got == want
	})
}

func TestTCPMaxInflight(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	h := HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
		if m == 1 {
			started.Done()
			<-release
		}
		return echo(ctx, f, m, b)
	})
	srv, cli, _ := pair(t, h, func(_, c *Config) {
		c.ConnsPerPeer = 1
		c.MaxInflight = 2
	})

	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := cli.Call(ctxTimeout(t, 10*time.Second), srv.LocalAddr(), 1, nil)
			errs <- err
		}()
	}
	started.Wait()
	_, err := cli.Call(ctxTimeout(t, 100*time.Millisecond), srv.LocalAddr(), 2, nil)
	mustIs(t, err, context.DeadlineExceeded)
	if !strings.Contains(err.Error(), "free slot") {
		t.Fatalf("third call failed with %v, want it to wait for a slot", err)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTCPFrameTooLarge(t *testing.T) {
	big := make([]byte, 100<<10)
	h := HandlerFunc(func(_ context.Context, _ string, m Method, b []byte) ([]byte, error) {
		if m == 2 {
			return big, nil
		}
		return nil, nil
	})

	t.Run("own limit", func(t *testing.T) {
		scfg, _ := testConfig(t, "server", h)
		srv := listen(t, scfg)
		ccfg, _ := testConfig(t, "client", nil)
		ccfg.MaxFrame = 64 << 10
		cli := listen(t, ccfg)
		_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, big)
		mustIs(t, err, ErrFrameTooLarge)
		if got := cli.dials.Load(); got != 0 {
			t.Fatalf("%d dials for a request that cannot be sent", got)
		}
		// Exactly at the limit fits.
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, make([]byte, ccfg.MaxFrame-headerSize)); err != nil {
			t.Fatalf("call at the limit: %v", err)
		}
	})

	t.Run("peer's smaller limit", func(t *testing.T) {
		scfg, _ := testConfig(t, "server", h)
		scfg.MaxFrame = 64 << 10
		srv := listen(t, scfg)
		ccfg, _ := testConfig(t, "client", nil)
		ccfg.ConnsPerPeer = 1
		cli := listen(t, ccfg)
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil); err != nil {
			t.Fatal(err)
		}
		sent := cli.Stats()[srv.LocalAddr()].FramesSent
		_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, big)
		mustIs(t, err, ErrFrameTooLarge)
		if errors.Is(err, ErrConnLost) {
			t.Fatalf("oversize request broke the connection: %v", err)
		}
		if got := cli.Stats()[srv.LocalAddr()].FramesSent; got != sent {
			t.Fatalf("oversize request was sent")
		}
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil); err != nil {
			t.Fatal(err)
		}
		if n := liveConns(cli, true); n != 1 || cli.dials.Load() != 1 {
			t.Fatalf("%d connections after %d dials, want the first one kept", n, cli.dials.Load())
		}
	})

	t.Run("reply over caller's limit", func(t *testing.T) {
		srv, cli, slog := pair(t, h, func(_, c *Config) {
			c.MaxFrame = 64 << 10
			c.ConnsPerPeer = 1
		})
		_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, nil)
		mustIs(t, err, ErrFrameTooLarge)
		slog.waitLog(t, "reply too large")
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil); err != nil {
			t.Fatal(err)
		}
		if cli.dials.Load() != 1 {
			t.Fatalf("connection was replaced after an oversize reply")
		}
	})
}

func TestTCPCloseWithCallsInFlight(t *testing.T) {
	var started sync.WaitGroup
	const n = 10
	started.Add(n)
	h := HandlerFunc(func(ctx context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
		started.Done()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	srv, cli, _ := pair(t, h, nil)

	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := cli.Call(ctxTimeout(t, time.Minute), srv.LocalAddr(), 1, nil)
			errs <- err
		}()
	}
	started.Wait()
	begin := time.Now()
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		mustIs(t, <-errs, ErrClosed)
	}
	if el := time.Since(begin); el > 10*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := cli.Call(t.Context(), srv.LocalAddr(), 1, nil)
	mustIs(t, err, ErrClosed)
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.NodeID = "n1"
	valid.ListenAddr = "127.0.0.1:0"
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(c *Config)
		field string
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"long node id", func(c *Config) { c.NodeID = strings.Repeat("n", 256) }, "NodeID"},
		{"no listen addr", func(c *Config) { c.ListenAddr = "" }, "ListenAddr"},
		{"long advertise", func(c *Config) { c.AdvertiseAddr = strings.Repeat("a", 256) }, "AdvertiseAddr"},
		{"zero conns", func(c *Config) { c.ConnsPerPeer = 0 }, "ConnsPerPeer"},
		{"many conns", func(c *Config) { c.ConnsPerPeer = 65 }, "ConnsPerPeer"},
		{"small frame", func(c *Config) { c.MaxFrame = minFrame - 1 }, "MaxFrame"},
		{"huge frame", func(c *Config) { c.MaxFrame = maxFrameLimit + 1 }, "MaxFrame"},
		{"zero inflight", func(c *Config) { c.MaxInflight = 0 }, "MaxInflight"},
		{"zero dial timeout", func(c *Config) { c.DialTimeout = 0 }, "DialTimeout"},
		{"zero handshake timeout", func(c *Config) { c.HandshakeTimeout = 0 }, "HandshakeTimeout"},
		{"zero io timeout", func(c *Config) { c.IOTimeout = 0 }, "IOTimeout"},
		{"zero backoff", func(c *Config) { c.BackoffMin = 0 }, "BackoffMin"},
		{"conn bytes below frame", func(c *Config) { c.MaxConnInflightBytes = c.MaxFrame - 1 }, "MaxConnInflightBytes"},
		{"node bytes below frame", func(c *Config) { c.MaxInflightBytes = c.MaxFrame - 1 }, "MaxInflightBytes"},
		{"zero handshakes", func(c *Config) { c.MaxHandshakes = 0 }, "MaxHandshakes"},
		{"zero handshakes per source", func(c *Config) { c.MaxHandshakesPerSource = 0 }, "MaxHandshakesPerSource"},
		{"inverted backoff", func(c *Config) { c.BackoffMax = c.BackoffMin / 2 }, "BackoffMax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			before := c
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.field)
			}
			if fmt.Sprint(c) != fmt.Sprint(before) {
				t.Fatalf("Validate changed the config")
			}
			if _, err := Listen(c); err == nil {
				t.Fatalf("Listen accepted an invalid config")
			}
		})
	}
}

func TestBudgetMillis(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want uint32
	}{
		{-time.Second, 1},
		{0, 1},
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1500 * time.Millisecond, 1500},
		{1000 * time.Hour, 3_600_000_000},
		{2000 * time.Hour, 1<<32 - 1},
	} {
		if got := budgetMillis(tc.d); got != tc.want {
			t.Errorf("budgetMillis(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// Forget drops the connections to a peer the failure detector declared
// dead, failing its pending calls at once; the next call dials afresh.
func TestTCPForget(t *testing.T) {
	started := make(chan struct{}, 1)
	h := HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
		if m == 1 {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return echo(ctx, f, m, b)
	})
	srv, cli, _ := pair(t, h, func(_, c *Config) {
		c.ConnsPerPeer = 1
	})

	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctxTimeout(t, time.Minute), srv.LocalAddr(), 1, nil)
		errc <- err
	}()
	<-started
	cli.Forget(srv.LocalAddr())
	mustIs(t, <-errc, ErrConnLost)
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, nil); err != nil {
		t.Fatalf("call after Forget: %v", err)
	}
	if d := cli.dials.Load(); d != 2 {
		t.Fatalf("%d dials, want 2", d)
	}
	cli.Forget("127.0.0.1:1") // unknown: no effect
}

// Many callers with random sizes and deadlines, some expiring mid-call:
// every reply that arrives is the one for its own request (pooled call
// slots and buffers are never crossed), and nothing stays pending.
func TestTCPStressRandomDeadlines(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, _ string, _ Method, b []byte) ([]byte, error) {
		if len(b) > 0 && b[0]%4 == 0 {
			time.Sleep(time.Duration(b[0]) * 10 * time.Microsecond)
		}
		return b, nil
	})
	srv, cli, _ := pair(t, h, nil)

	var wg sync.WaitGroup
	var ok, expired atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 100 {
				body := make([]byte, r.IntN(8<<10))
				for i := range body {
					body[i] = byte(r.Uint32())
				}
				timeout := 5 * time.Second
				if r.IntN(3) == 0 {
					timeout = time.Duration(r.IntN(2000)) * time.Microsecond // likely to expire mid-call
				}
				ctx, cancel := context.WithTimeout(t.Context(), timeout)
				got, err := cli.Call(ctx, srv.LocalAddr(), Method(1+r.IntN(255)), body)
				cancel()
				switch {
				case err == nil:
					if !bytes.Equal(got, body) {
						t.Errorf("reply of %d bytes does not match its %d-byte request", len(got), len(body))
						return
					}
					ok.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					expired.Add(1)
				default:
					t.Errorf("call: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d replies, %d expired", ok.Load(), expired.Load())
	if ok.Load() == 0 || expired.Load() == 0 {
		t.Fatalf("want both replies and expired calls")
	}
	if n := pendingCalls(cli, srv.LocalAddr()); n != 0 {
		t.Fatalf("%d calls still pending", n)
	}
}

// Issue 19: a port in use fails plainly, and Listen's failure is a nil
// *TCP whose methods do not panic (node once stored it in an interface and
// called Close on it).
func TestTCPListenAddressInUse(t *testing.T) {
	cfg, _ := testConfig(t, "first", echo)
	first := listen(t, cfg)
	cfg.NodeID, cfg.ListenAddr = "second", first.LocalAddr()
	tr, err := Listen(cfg)
	if tr != nil {
		t.Fatalf("Listen returned %p with error %v, want a nil *TCP", tr, err)
	}
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), first.LocalAddr()) {
		t.Fatalf("error %q does not say the address is in use", err)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("error %v does not match syscall.EADDRINUSE", err)
	}
	if strings.Count(err.Error(), "address already in use") != 1 {
		t.Fatalf("error repeats itself: %q", err)
	}
	// The typed nil in an interface, as node once held it.
	var i Transport = tr
	if err := i.Close(); err != nil {
		t.Fatalf("Close on a nil *TCP: %v", err)
	}
	if _, err := i.Call(t.Context(), first.LocalAddr(), 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call on a nil *TCP: %v, want ErrClosed", err)
	}
	if a := i.LocalAddr(); a != "" {
		t.Fatalf("LocalAddr on a nil *TCP = %q", a)
	}
	tr.Forget(first.LocalAddr())
	if s := tr.Stats(); s != nil {
		t.Fatalf("Stats on a nil *TCP = %v", s)
	}
	// The port is still served by the first transport.
	if _, err := Listen(cfg); err == nil {
		t.Fatal("second Listen succeeded")
	}
	if _, err := first.Call(ctxTimeout(t, 5*time.Second), first.LocalAddr(), 1, nil); err != nil {
		t.Fatalf("first transport after the failed Listen: %v", err)
	}
}
