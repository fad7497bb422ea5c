package connlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/nettest"
	"github.com/quorumkv/quorumkv/membudget"
)

// baseBuf is the read buffer every connection has without asking (the
// RESP front's respReadBuf); only growth past it is charged.
const baseBuf = 16 << 10

// partialServer is lineServer with the RESP front's memory discipline: a
// connection's read buffer grows to hold an unfinished command, and the
// growth past baseBuf is charged to the partial-command budget through a
// membudget.Hold; a connection that cannot get room answers -BUSY and
// closes (an unfinished command cannot be skipped).
func partialServer(t *testing.T, cfg RESPTimeouts, partial *membudget.Budget) (addr string, ended chan error) {
	t.Helper()
	ln := nettest.Listen(t)
	ended = make(chan error, 64)
	nettest.Serve(t, ln, func(c net.Conn) {
		hold := partial.NewHold()
		defer hold.Release()
		tm := NewCommandTimer(cfg)
		buf := make([]byte, 0, baseBuf)
		for {
			if d, ok := tm.Deadline(time.Now(), len(buf)); ok {
				_ = c.SetReadDeadline(d)
			}
			if len(buf) == cap(buf) {
				grown := 2 * cap(buf)
				if err := hold.Resize(t.Context(), int64(grown-baseBuf)); err != nil {
					_, _ = fmt.Fprintf(c, "-BUSY %v\n", err)
					report(t, ended, err)
					return
				}
				nb := make([]byte, len(buf), grown)
				copy(nb, buf)
				buf = nb
			}
			n, err := c.Read(buf[len(buf):cap(buf)])
			buf = answerLines(c, tm, buf[:len(buf)+n])
			if len(buf) == 0 && cap(buf) > baseBuf { // idle: back to the base buffer
				buf = make([]byte, 0, baseBuf)
				hold.Release()
			}
			if err != nil {
				report(t, ended, endReason(tm, err))
				return
			}
		}
	})
	return ln.Addr().String(), ended
}

// TestHalfSentCommandsShareACap: 20 clients each send 1 MiB of a command
// and stall (issue 14: 800 such connections took 1.2 GB). The bytes
// buffered for them never exceed the partial-command budget; clients that
// find it full are refused with -BUSY after MaxWait, the others are cut
// by the command pace; a client sending small commands is served
// throughout, and everything is released at the end.
func TestHalfSentCommandsShareACap(t *testing.T) {
	node, err := membudget.New(membudget.Config{Limit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	partial, err := membudget.New(membudget.Config{Limit: 4 << 20, MaxWait: 200 * time.Millisecond, Parent: node})
	if err != nil {
		t.Fatal(err)
	}
	cfg := RESPTimeouts{Idle: time.Minute, Command: testPace, MaxCommand: time.Minute}
	addr, ended := partialServer(t, cfg, partial)

	const attackers = 20
	var wg sync.WaitGroup
	for range attackers {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go func() { _, _ = c.Write(bytes.Repeat([]byte("v"), 1<<20)) }() // no newline, then silence
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, _ = io.Copy(io.Discard, c) // until the server hangs up
		})
	}
	// An ordinary client meanwhile.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	for i := range 20 {
		start := time.Now()
		if _, err := fmt.Fprintf(c, "SET k%d v\n", i); err != nil {
			t.Fatal(err)
		}
		if line, err := rd.ReadString('\n'); err != nil || line != "+OK\n" {
			t.Fatalf("ordinary command %d during the attack: %q, %v", i, line, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("ordinary command %d took %v", i, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	var busy, slow int
	for range attackers {
		switch err := <-ended; {
		case errors.Is(err, membudget.ErrBusy):
			busy++
		case errors.Is(err, ErrTooSlow):
			slow++
		default:
			t.Errorf("attacker's connection ended with %v", err)
		}
	}
	ps, ns := partial.Stats(), node.Stats()
	t.Logf("%d refused busy, %d cut as too slow; partial budget peak %d KiB of %d KiB; node budget peak %d KiB",
		busy, slow, ps.Peak>>10, ps.Limit>>10, ns.Peak>>10)
	if ps.Peak > ps.Limit || ns.Peak > ps.Limit {
		t.Fatalf("buffered %d bytes for unfinished commands, cap %d", max(ps.Peak, ns.Peak), ps.Limit)
	}
	if busy == 0 || slow == 0 {
		t.Fatalf("%d busy, %d slow: want both (the cap holds 3 of 20 half-sent 1 MiB commands)", busy, slow)
	}
	eventually(t, "buffers released", func() bool { return partial.Stats().InUse == 0 && node.Stats().InUse == 0 })
	if ps.Refused != uint64(busy) {
		t.Fatalf("partial budget counts %d refusals, the server saw %d", ps.Refused, busy)
	}
}
