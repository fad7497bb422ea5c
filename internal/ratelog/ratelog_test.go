package ratelog

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/logtest"
)

func newLog(t *testing.T) (*slog.Logger, *logtest.Buffer) { return logtest.New(t, slog.LevelInfo) }

func TestAllowOnePerEventSourceAndInterval(t *testing.T) {
	log, _ := newLog(t)
	l := New(log, time.Second)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		if ok, _ := l.Allow("bad", "1.2.3.4", t0.Add(time.Duration(i)*time.Millisecond)); ok != (i == 0) {
			t.Fatalf("event %d allowed = %v", i, ok)
		}
	}
	if ok, _ := l.Allow("bad", "5.6.7.8", t0); !ok {
		t.Fatal("another source was held back")
	}
	if ok, _ := l.Allow("other", "1.2.3.4", t0); !ok {
		t.Fatal("another event was held back")
	}
	ok, n := l.Allow("bad", "1.2.3.4", t0.Add(time.Second))
	if !ok || n != 4 {
		t.Fatalf("after the interval: allowed %v with %d held back, want true, 4", ok, n)
	}
	if got := l.Suppressed(); got != 4 {
		t.Fatalf("Suppressed = %d, want 4", got)
	}
	// The count restarts after a line is let through.
	if ok, _ := l.Allow("bad", "1.2.3.4", t0.Add(1500*time.Millisecond)); ok {
		t.Fatal("second line within the new interval let through")
	}
	if ok, n := l.Allow("bad", "1.2.3.4", t0.Add(2*time.Second)); !ok || n != 1 {
		t.Fatalf("third interval: allowed %v with %d held back, want true, 1", ok, n)
	}
}

func TestMemoryIsBoundedUnderAFloodOfSources(t *testing.T) {
	log, _ := newLog(t)
	l := New(log, time.Second)
	t0 := time.Unix(1000, 0)
	let := 0
	for i := range 4 * MaxKeys {
		if ok, _ := l.Allow("flood", net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), t0); ok {
			let++
		}
	}
	if len(l.m) > MaxKeys+1 {
		t.Fatalf("%d keys remembered, cap %d", len(l.m), MaxKeys)
	}
	// MaxKeys sources get their first line, then one shared line for the rest.
	if let != MaxKeys+1 {
		t.Fatalf("%d lines let through for %d sources in one interval, want %d", let, 4*MaxKeys, MaxKeys+1)
	}
	// Once the old ones are quiet for an interval they are forgotten and
	// new sources get their own keys again.
	if ok, _ := l.Allow("flood", "192.0.2.1", t0.Add(time.Second)); !ok {
		t.Fatal("a new source after the interval was held back")
	}
	if _, ok := l.m[key{"flood", "192.0.2.1"}]; !ok {
		t.Fatal("the new source shares the overflow key after a sweep")
	}
}

func TestWarnWritesRepeats(t *testing.T) {
	log, lb := newLog(t)
	l := New(log, 50*time.Millisecond)
	for range 3 {
		l.Warn("shown", "x", "k", "v")
	}
	if got := strings.Count(lb.String(), "shown"); got != 1 {
		t.Fatalf("%d lines for three warnings within the interval:\n%s", got, lb)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(lb.String(), "shown") < 2 && time.Now().Before(deadline) {
		l.Warn("shown", "x", "k", "v")
		time.Sleep(5 * time.Millisecond)
	}
	out := lb.String()
	if !strings.Contains(out, "repeats=") || !strings.Contains(out, "repeats_window=50ms") {
		t.Fatalf("the second line does not say how many were held back:\n%s", out)
	}
}

func TestDisabledLevelCostsNothing(t *testing.T) {
	log, lb := newLog(t)
	l := New(log, time.Minute)
	for range 10 {
		l.Log(slog.LevelDebug, "debug line", "x")
	}
	if lb.String() != "" || l.Suppressed() != 0 || len(l.m) != 0 {
		t.Fatalf("a disabled level was counted or logged: %q, %d suppressed", lb, l.Suppressed())
	}
}

func TestNilLoggerAndDefaults(t *testing.T) {
	l := New(nil, 0)
	if l.every != DefaultEvery {
		t.Fatalf("interval %v, want %v", l.every, DefaultEvery)
	}
	l.Warn("nothing", "x") // must not panic
}

func TestConcurrentUse(t *testing.T) {
	log, lb := newLog(t)
	l := New(log, time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.Warn("busy", net.IPv4(10, 0, byte(g), byte(i%4)).String())
			}
		})
	}
	wg.Wait()
	if got := strings.Count(lb.String(), "busy"); got != 32 {
		t.Fatalf("%d lines, want one per source (32)", got)
	}
	if got := l.Suppressed(); got != 8000-32 {
		t.Fatalf("Suppressed = %d, want %d", got, 8000-32)
	}
}

func TestSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5}, "127.0.0.2"},
		{"tcp6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5}, "2001:db8::1"},
		{"udp", &net.UDPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 7946}, "10.1.2.3"},
		{"unix", &net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "/tmp/s"},
		{"nil", nil, "?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Source(tc.addr); got != tc.want {
				t.Fatalf("Source(%v) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(slog.New(slog.DiscardHandler), time.Second)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("event", "10.0.0.1", now)
	}
}
