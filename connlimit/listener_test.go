package connlimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/ratelog"

	"github.com/quorumkv/quorumkv/internal/nettest"
)

// serve accepts from l until it fails; each connection gets a greeting
// "+\n" (so a client knows it was accepted, not refused) and is held until
// the client closes it.
func serve(t *testing.T, l net.Listener) {
	t.Helper()
	nettest.Serve(t, l, func(c net.Conn) {
		if _, err := c.Write([]byte("+\n")); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	})
}

// greeted reports whether c was accepted: it reads the greeting, or sees
// the refusal (EOF or reset) within the deadline.
func greeted(c net.Conn) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		return false, line
	}
	return line == "+\n", line
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{MaxConns: 10}, true},
		{"no cap", Config{}, false},
		{"negative per source", Config{MaxConns: 10, MaxPerSource: -1}, false},
		{"per source above total", Config{MaxConns: 10, MaxPerSource: 11}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDefaultPerSource(t *testing.T) {
	for total, want := range map[int]int{1: 16, 100: 16, 128: 16, 1024: 128, 4096: 512, 10000: 1250} {
		if got := DefaultPerSource(total); got != want {
			t.Errorf("DefaultPerSource(%d) = %d, want %d", total, got, want)
		}
	}
	// A cap below MinPerSource: the share is the whole cap.
	l, err := NewListener(nettest.Listen(t), Config{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.MaxPerSource != 4 {
		t.Fatalf("per source %d with a cap of 4", s.MaxPerSource)
	}
}

// TestPerSourceCapUnderFlood: 2,000 connections at once from 127.0.0.1,
// all kept open by the attacker, get the per-source share (128 of a cap
// of 1,024) and no more; a client from 127.0.0.2 still gets in during the
// flood; the server side holds a descriptor only for the accepted ones.
func TestPerSourceCapUnderFlood(t *testing.T) {
	needSecondLoopback(t)
	const attempts, perSource = 2000, 128
	if n, err := FileLimit(); err != nil || n < 2*attempts+512 {
		t.Skipf("file descriptor limit %d (%v) too low for the flood", n, err)
	}
	inner := nettest.Listen(t)
	log, lb := newLog(t)
	l, err := NewListener(inner, Config{Name: "test", MaxConns: 1024, Log: ratelog.New(log, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l)
	addr := l.Addr().String()
	baseFDs := openFDs(t)

	var (
		mu                 sync.Mutex
		all                []net.Conn // every socket the attacker holds
		accepted, refused  atomic.Int64
		dialFailed, maxFDs atomic.Int64
		wg                 sync.WaitGroup
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			_ = c.Close()
		}
	})
	start := make(chan struct{})
	for range attempts {
		wg.Go(func() {
			<-start
			c, err := dialFrom("127.0.0.1", addr)
			if err != nil {
				dialFailed.Add(1) // reset before connect returned: refused
				return
			}
			mu.Lock()
			all = append(all, c) // kept open, accepted or not
			mu.Unlock()
			if ok, _ := greeted(c); ok {
				accepted.Add(1)
			} else {
				refused.Add(1)
			}
		})
	}
	// One sampler counts descriptors while the flood runs.
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(openFDs(t)); n > maxFDs.Load() {
				maxFDs.Store(n)
			}
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	close(start)
	// Mid-flood, another source gets in.
	other, err := dialFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, line := greeted(other); !ok {
		t.Fatalf("a client from 127.0.0.2 was refused during the flood (read %q)", line)
	}
	wg.Wait()
	close(sampling)
	<-sampled

	s := l.Stats()
	mu.Lock()
	held := len(all)
	mu.Unlock()
	t.Logf("flood of %d: %d accepted, %d refused after connecting, %d reset while connecting; stats %+v; fds %d at start, at most %d during (attacker holds %d)",
		attempts, accepted.Load(), refused.Load(), dialFailed.Load(), s, baseFDs, maxFDs.Load(), held)
	if accepted.Load() != perSource {
		t.Fatalf("%d connections from one source accepted, want exactly the share %d", accepted.Load(), perSource)
	}
	if got := l.OpenFrom("127.0.0.1"); got != perSource {
		t.Fatalf("listener counts %d open from 127.0.0.1, want %d", got, perSource)
	}
	if s.RefusedPerSource != attempts-perSource || s.RefusedTotal != 0 {
		t.Fatalf("refusals %+v, want %d per source", s, attempts-perSource)
	}
	// The attacker's sockets (at most one per attempt), the server's ends
	// of the accepted ones and of the other source's, the one being
	// refused, and a margin for the runtime: the server keeps nothing of
	// the 1,872 refused.
	if bound := int64(baseFDs + attempts + perSource + 1 + 1 + 1 + 64); maxFDs.Load() > bound {
		t.Fatalf("%d file descriptors open during the flood, bound %d", maxFDs.Load(), bound)
	}
	// Rate-limited log: one line for the per-source refusals, not 1,872.
	if n := strings.Count(lb.String(), "connection refused"); n != 1 {
		t.Fatalf("%d log lines for %d refusals:\n%s", n, s.RefusedPerSource, lb)
	}

	// Closing frees slots: the source gets back in.
	mu.Lock()
	for _, c := range all {
		_ = c.Close()
	}
	all = nil
	mu.Unlock()
	eventually(t, "slots freed", func() bool { return l.OpenFrom("127.0.0.1") == 0 })
	c, err := dialFrom("127.0.0.1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := greeted(c); !ok {
		t.Fatal("refused after slots were freed")
	}
}

// TestTotalCap: two sources together hit the total cap; the refused
// client reads the listener's refusal message.
func TestTotalCap(t *testing.T) {
	needSecondLoopback(t)
	inner := nettest.Listen(t)
	const msg = "-ERR max number of clients reached\r\n"
	l, err := NewListener(inner, Config{MaxConns: 20, MaxPerSource: 16, Refuse: RefuseWith([]byte(msg))})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l)
	addr := l.Addr().String()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	dial := func(src string) (bool, string) {
		t.Helper()
		c, err := dialFrom(src, addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		return greeted(c)
	}
	for i := range 16 {
		if ok, line := dial("127.0.0.1"); !ok {
			t.Fatalf("connection %d from 127.0.0.1 refused: %q", i, line)
		}
	}
	if ok, line := dial("127.0.0.1"); ok || line != msg {
		t.Fatalf("17th from one source: accepted %v, read %q; want the refusal", ok, line)
	}
	for i := range 4 {
		if ok, line := dial("127.0.0.2"); !ok {
			t.Fatalf("connection %d from 127.0.0.2 refused: %q", i, line)
		}
	}
	if ok, line := dial("127.0.0.2"); ok || line != msg {
		t.Fatalf("21st connection: accepted %v, read %q; want the refusal", ok, line)
	}
	s := l.Stats()
	if s.Open != 20 || s.Sources != 2 || s.Accepted != 20 || s.RefusedPerSource != 1 || s.RefusedTotal != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestCloseFreesOnce: closing a connection twice frees one slot.
func TestCloseFreesOnce(t *testing.T) {
	inner := nettest.Listen(t)
	l, err := NewListener(inner, Config{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			done <- c
		}
	}()
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	a, b := <-done, <-done
	defer b.Close()
	if nc, ok := a.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() == nil {
		t.Fatal("no NetConn")
	}
	_ = a.Close()
	_ = a.Close()
	if s := l.Stats(); s.Open != 1 {
		t.Fatalf("open %d after closing one of two (twice)", s.Open)
	}
	_ = l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 9}, "2001:db8:1:2::/64"},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5}, "10.0.0.1"},
		{&net.UnixAddr{Name: "@sock", Net: "unix"}, "@sock"},
		{nil, "?"},
	} {
		if got := SourceKey(tc.addr); got != tc.want {
			t.Errorf("SourceKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestConnCaps(t *testing.T) {
	for _, tc := range []struct {
		nofile     uint64
		http, resp int
	}{
		{1 << 20, DefaultMaxHTTPConns, DefaultMaxRESPConns},
		{20000, 4096, 10000},
		{4096, 1024, 2048},
		{1024, 64, 64},
		{0, 64, 64},
	} {
		h, r := ConnCaps(tc.nofile)
		if h != tc.http || r != tc.resp {
			t.Errorf("ConnCaps(%d) = %d, %d; want %d, %d", tc.nofile, h, r, tc.http, tc.resp)
		}
	}
	if n, err := FileLimit(); err != nil || n == 0 {
		t.Fatalf("FileLimit() = %d, %v", n, err)
	}
}

// BenchmarkAcceptClose dials, accepts and closes over loopback with the
// plain listener and the capped one, to show the cap's share of a
// connection's cost.
func BenchmarkAcceptClose(b *testing.B) {
	for _, capped := range []bool{false, true} {
		name := "plain"
		if capped {
			name = "capped"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			if capped {
				if ln, err = NewListener(ln, Config{MaxConns: 1 << 20}); err != nil {
					b.Fatal(err)
				}
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = c.Close()
				}
			}()
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				_, _ = c.Read(buf)
				_ = c.Close()
			}
		})
	}
}
