package connlimit

import (
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
