package ratelog

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLineKey(t *testing.T) {
	for _, tc := range []struct{ line, event, source string }{
		{"memberlist: Failed to decode ping request: msgpack: invalid code=d9 decoding string/bytes length [pos 17] from=10.0.0.7:7946",
			"memberlist: Failed to decode ping request", "10.0.0.7"},
		{"memberlist: Received invalid msgType (9) from=10.0.0.7:50021",
			"memberlist: Received invalid msgType (#)", "10.0.0.7"},
		{"memberlist: Got ping for unexpected node 'evil-3' from=[2001:db8::1]:7946",
			"memberlist: Got ping for unexpected node *", "2001:db8::1"},
		{"memberlist: Got invalid checksum for UDP packet: 1a2b3c4d, deadbeef",
			"memberlist: Got invalid checksum for UDP packet", ""},
		{"memberlist: Too many pending push/pull requests",
			"memberlist: Too many pending push/pull requests", ""},
		{"memberlist: discarding packet with unacceptable label \"x\": from=<unknown address>",
			"memberlist: discarding packet with unacceptable label *", "?"},
	} {
		event, source := LineKey(tc.line)
		if event != tc.event || source != tc.source {
			t.Errorf("LineKey(%q) = %q, %q; want %q, %q", tc.line, event, source, tc.event, tc.source)
		}
	}
	if e, _ := LineKey(strings.Repeat("x", 500)); len(e) > maxEventLen {
		t.Fatalf("event of %d bytes", len(e))
	}
}

// TestJunkGossipFlood: 3,000 junk packets from three hosts, every one
// different in its bytes, log one line per host and kind.
func TestJunkGossipFlood(t *testing.T) {
	log, lb := newLog(t)
	l := New(log, time.Minute)
	for i := range 3000 {
		host := fmt.Sprintf("192.0.2.%d", i%3)
		l.LogLine(slog.LevelError, fmt.Sprintf("memberlist: Failed to decode ping request: msgpack: invalid code=%x [pos %d] from=%s:%d", i, i*7, host, 1024+i))
		l.LogLine(slog.LevelError, fmt.Sprintf("memberlist: Received invalid msgType (%d) from=%s:%d", i%250, host, 1024+i))
	}
	if got := strings.Count(lb.String(), "\n"); got != 6 {
		t.Fatalf("%d lines for 6,000 junk packets from 3 hosts, want 6:\n%s", got, lb)
	}
	if l.Suppressed() != 6000-6 {
		t.Fatalf("Suppressed = %d", l.Suppressed())
	}
	if !strings.Contains(lb.String(), "from=192.0.2.1:1025") {
		t.Fatalf("the line is not logged as written:\n%s", lb)
	}
}

func BenchmarkLogLineSuppressed(b *testing.B) {
	l := New(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	line := "memberlist: Failed to decode ping request: msgpack: invalid code=d9 [pos 17] from=10.0.0.7:7946"
	l.LogLine(slog.LevelError, line) // logged; every later one is held back
	b.ReportAllocs()
	for b.Loop() {
		l.LogLine(slog.LevelError, line)
	}
}

// FuzzLineKey: lines carry text an attacker chose (the error of decoding
// its packet): the key never panics, stays short, and is stable.
func FuzzLineKey(f *testing.F) {
	for _, s := range []string{
		"memberlist: Failed to decode ping request: msgpack: invalid code=d9 [pos 17] from=10.0.0.7:7946",
		"memberlist: Got ping for unexpected node 'evil from=[::1]:1",
		"from=", "'", "\"", ": : :", "from=<unknown address>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e1, s1 := LineKey(line)
		e2, s2 := LineKey(line)
		if e1 != e2 || s1 != s2 {
			t.Fatal("LineKey not deterministic")
		}
		if len(e1) > maxEventLen {
			t.Fatalf("event of %d bytes", len(e1))
		}
		if len(s1) > len(line) {
			t.Fatalf("source %q longer than the line", s1)
		}
	})
}
