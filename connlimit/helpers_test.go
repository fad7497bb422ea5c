package connlimit

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/logtest"
	"github.com/quorumkv/quorumkv/internal/nettest"
	"github.com/quorumkv/quorumkv/internal/waitfor"
)

func newLog(t *testing.T) (*slog.Logger, *logtest.Buffer) { return logtest.New(t, slog.LevelInfo) }

// eventually waits for cond with a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, 15*time.Second, what, cond)
}

// dialFrom dials addr from the loopback address src (127.0.0.2 is a
// source distinct from 127.0.0.1 on Linux without any setup).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.Dial("tcp", addr)
}

// rawRequest dials addr and writes req, a request written by hand so the
// test controls every byte that follows; start is the time just before the
// write. The connection closes at cleanup.
func rawRequest(t *testing.T, addr, req string) (c net.Conn, start time.Time) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	start = time.Now()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c, start
}

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("counting file descriptors needs /proc (Linux)")
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// needSecondLoopback skips unless 127.0.0.2 can be used as a source (it
// can on Linux without any setup).
func needSecondLoopback(t *testing.T) {
	t.Helper()
	ln := nettest.Listen(t)
	c, err := dialFrom("127.0.0.2", ln.Addr().String())
	if err != nil {
		t.Skipf("127.0.0.2 is not usable as a source address here: %v", err)
	}
	_ = c.Close()
}
