package connlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/quorumkv/quorumkv/internal/nettest"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCommandTimerDeadlines(t *testing.T) {
	cfg := RESPTimeouts{Idle: 160 * time.Second, Command: Pace{MinRate: 1024, Grace: 10 * time.Second, Window: 10 * time.Second}, MaxCommand: 30 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tm := NewCommandTimer(cfg)
	type step struct {
		at       time.Duration
		buffered int
		done     bool          // CommandDone before this step
		want     time.Duration // the true deadline; what is set is want+slack
		slack    time.Duration
		rearm    bool
	}
	const idleSlack, cmdSlack = 10 * time.Second, 625 * time.Millisecond
	for i, s := range []step{
		{at: 0, want: 160 * time.Second, slack: idleSlack, rearm: true},                                     // idle
		{at: 5 * time.Second, want: 160 * time.Second, slack: idleSlack, rearm: false},                      // idle, within the slack: keep
		{at: 11 * time.Second, want: 171 * time.Second, slack: idleSlack, rearm: true},                      // past what was set: re-arm
		{at: 12 * time.Second, buffered: 100, want: 22 * time.Second, slack: cmdSlack, rearm: true},         // command starts: grace (+100 B, capped at now+Window)
		{at: 13 * time.Second, buffered: 100, want: 22 * time.Second, slack: cmdSlack, rearm: false},        // nothing new
		{at: 14 * time.Second, buffered: 2148, want: 24 * time.Second, slack: cmdSlack, rearm: true},        // 2 KiB more: +2 s, up to now+Window
		{at: 14 * time.Second, buffered: 2148 + 512, want: 24 * time.Second, slack: cmdSlack, rearm: false}, // capped: no change
		{at: 15 * time.Second, buffered: 2148 + 2048, want: 25 * time.Second, slack: cmdSlack, rearm: true},
		{at: 16 * time.Second, done: true, buffered: 10, want: 26 * time.Second, slack: cmdSlack, rearm: true}, // a new command: a new grace
		{at: 17 * time.Second, buffered: 0, want: 177 * time.Second, slack: idleSlack, rearm: true},            // idle again
	} {
		if s.done {
			tm.CommandDone()
		}
		d, rearm := tm.Deadline(at(s.at), s.buffered)
		if rearm != s.rearm {
			t.Fatalf("step %d: rearm %v, want %v", i, rearm, s.rearm)
		}
		if got := d.Sub(t0); got < s.want || got > s.want+s.slack || rearm && got != s.want+s.slack {
			t.Fatalf("step %d: deadline set at %v, want %v (+ up to %v)", i, got, s.want, s.slack)
		}
	}
	if err := tm.Expired(at(200 * time.Second)); !errors.Is(err, ErrIdle) {
		t.Fatalf("expired idle: %v", err)
	}
	// MaxCommand bounds a command that keeps its pace.
	tm = NewCommandTimer(cfg)
	tm.Deadline(at(0), 1)
	var d time.Time
	for s := 1; s <= 40; s++ {
		d, _ = tm.Deadline(at(time.Duration(s)*time.Second), 1+s*4096)
	}
	if d.Sub(t0) != 30*time.Second {
		t.Fatalf("deadline at %v, want MaxCommand (30s)", d.Sub(t0))
	}
	err := tm.Expired(at(30 * time.Second))
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("expired mid-command: %v", err)
	}
	if err := (RESPTimeouts{}).Validate(); err == nil {
		t.Fatal("zero timeouts valid")
	}
	if err := DefaultRESPTimeouts().Validate(); err != nil {
		t.Fatal(err)
	}
	if got := DefaultPartialBytes(1<<30, 1<<20); got != 128<<20 {
		t.Fatalf("DefaultPartialBytes = %d", got)
	}
	if got := DefaultPartialBytes(64<<20, 12<<20); got != 48<<20 {
		t.Fatalf("DefaultPartialBytes small budget = %d", got)
	}
}

// lineServer starts a toy RESP-like server on a real socket and returns a
// connection to it: commands are lines, each answered "+OK"; its read loop
// uses a CommandTimer the way the RESP front's does, and reports why each
// connection ended.
func lineServer(t *testing.T, cfg RESPTimeouts) (c net.Conn, ended chan error) {
	t.Helper()
	ln := nettest.Listen(t)
	ended = make(chan error, 8)
	nettest.Serve(t, ln, func(c net.Conn) {
		tm := NewCommandTimer(cfg)
		var buf []byte
		rd := make([]byte, 4096)
		for {
			if d, ok := tm.Deadline(time.Now(), len(buf)); ok {
				_ = c.SetReadDeadline(d)
			}
			n, err := c.Read(rd)
			buf = answerLines(c, tm, append(buf, rd[:n]...))
			if err != nil {
				report(t, ended, endReason(tm, err))
				return
			}
		}
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, ended
}

// answerLines answers "+OK" to each complete line at the front of buf,
// telling tm each command is done, and returns what is left (an
// unfinished command), moved to the front of buf.
func answerLines(c net.Conn, tm *CommandTimer, buf []byte) []byte {
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return buf
		}
		buf = buf[:copy(buf, buf[i+1:])]
		tm.CommandDone()
		_, _ = c.Write([]byte("+OK\n"))
	}
}

// endReason is why a test server's read loop ended with err: the
// CommandTimer's verdict when the read deadline passed, else err.
func endReason(tm *CommandTimer, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return tm.Expired(time.Now())
	}
	return err
}

// report sends why a connection ended to the test, unless the test has
// ended (then nobody reads ended, and the server must not block).
func report(t *testing.T, ended chan<- error, err error) {
	select {
	case ended <- err:
	case <-t.Context().Done():
	}
}

func waitEnd(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.Copy(io.Discard, c)
	return time.Since(start)
}

func TestRESPIdleConnectionIsClosed(t *testing.T) {
	cfg := RESPTimeouts{Idle: 400 * time.Millisecond, Command: testPace}
	c, ended := lineServer(t, cfg)
	if _, err := fmt.Fprint(c, "PING\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "+OK\n" {
		t.Fatalf("%q %v", line, err)
	}
	took := waitEnd(t, c)
	if err := <-ended; !errors.Is(err, ErrIdle) {
		t.Fatalf("ended with %v, want ErrIdle", err)
	}
	// Idle, plus at most the re-arm slack (Idle/16) and scheduling.
	if took < cfg.Idle || took > cfg.Idle+cfg.Idle/16+time.Second {
		t.Fatalf("closed after %v idle, want about %v", took, cfg.Idle)
	}
}

func TestRESPPartialCommandSlowlorisIsCut(t *testing.T) {
	cfg := RESPTimeouts{Idle: time.Minute, Command: testPace, MaxCommand: time.Minute}
	c, ended := lineServer(t, cfg)
	start := time.Now()
	if _, err := fmt.Fprint(c, "*3\r\n$3\r\nSET\r"); err != nil { // no '\n' yet: a partial command
		t.Fatal(err)
	}
	done := make(chan time.Duration, 1)
	go func() { waitEnd(t, c); done <- time.Since(start) }()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var took time.Duration
loop:
	for {
		select {
		case took = <-done:
			break loop
		case <-tick.C:
			_, _ = c.Write([]byte("x"))
		}
	}
	err := <-ended
	var se *SlowError
	if !errors.As(err, &se) || se.Deadline {
		t.Fatalf("ended with %v, want a *SlowError for the rate", err)
	}
	if took < testPace.Grace || took > testPace.Grace+2*time.Second {
		t.Fatalf("cut after %v, want about %v", took, testPace.Grace)
	}
}

// TestRESPSteadyPipelineIsNotCut: commands arriving steadily, each partial
// for a moment, for longer than Grace and Window together.
func TestRESPSteadyPipelineIsNotCut(t *testing.T) {
	cfg := RESPTimeouts{Idle: time.Minute, Command: testPace, MaxCommand: time.Minute}
	c, ended := lineServer(t, cfg)
	go func() { _, _ = io.Copy(io.Discard, c) }()
	cmd := "SET key " + strings.Repeat("v", 200) + "\n"
	end := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(end) {
		// Half a command, a pause, the other half: 2 KiB/s, above 1 KiB/s.
		if _, err := fmt.Fprint(c, cmd[:100]); err != nil {
			t.Fatalf("cut while keeping the pace: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := fmt.Fprint(c, cmd[100:]); err != nil {
			t.Fatalf("cut while keeping the pace: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-ended:
		t.Fatalf("server ended a connection that kept its pace: %v", err)
	default:
	}
}

// TestRESPMaxCommand: a command arriving faster than the pace but never
// ending is cut at MaxCommand.
func TestRESPMaxCommand(t *testing.T) {
	cfg := RESPTimeouts{Idle: time.Minute, Command: testPace, MaxCommand: 1500 * time.Millisecond}
	c, ended := lineServer(t, cfg)
	start := time.Now()
	for {
		if _, err := c.Write(bytes.Repeat([]byte("a"), 512)); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // 5 KiB/s, no newline ever
		if time.Since(start) > 10*time.Second {
			t.Fatal("never cut")
		}
	}
	err := <-ended
	took := time.Since(start)
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("ended with %v, want ErrDeadline", err)
	}
	if took < cfg.MaxCommand || took > cfg.MaxCommand+2*time.Second {
		t.Fatalf("cut after %v, want about %v", took, cfg.MaxCommand)
	}
}

func BenchmarkCommandTimer(b *testing.B) {
	tm := NewCommandTimer(DefaultRESPTimeouts())
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tm.Deadline(now, 0)
		tm.Deadline(now, 100)
		tm.CommandDone()
	}
}
