package resp

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countingListener counts the Write calls on the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{nc, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Issue 16: the replies to a pipeline that arrived in one read go out in
// one write (the buffer is flushed when no complete command is left in the
// reader, not after each reply), and a lone command's reply is written at
// once.
func TestPipelinedRepliesShareOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	s := New(countingListener{ln, &writes}, nil, Config{MaxKeySize: 1 << 10, MaxValueSize: 1 << 20,
		Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	s.Serve()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	}()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)

	// A lone command is answered at once, in one write.
	if _, err := io.WriteString(nc, "PING\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", line, err)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("%d writes for one PING, want 1", n)
	}

	const n = 200
	if _, err := io.WriteString(nc, strings.Repeat("*1\r\n$4\r\nPING\r\n", n)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if line, err := br.ReadString('\n'); err != nil || line != "+PONG\r\n" {
			t.Fatalf("reply %d: %q, %v", i, line, err)
		}
	}
	// 200 commands of 14 bytes arrive in one segment on loopback, usually
	// read at once; a read may still split them, so allow a few writes.
	if got := writes.Load() - 1; got > 4 {
		t.Fatalf("%d writes for %d pipelined PINGs, want them coalesced (at most 4)", got, n)
	} else {
		t.Logf("%d pipelined PINGs answered in %d write(s)", n, got)
	}
}
