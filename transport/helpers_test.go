package transport

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/logtest"
	"github.com/quorumkv/quorumkv/internal/nettest"
	"github.com/quorumkv/quorumkv/internal/waitfor"
)

// logBuf collects log output so tests can assert on log lines, and echoes
// it to the test's output (shown only on failure).
type logBuf struct{ *logtest.Buffer }

// waitLog waits until the log holds substr.
func (l *logBuf) waitLog(t *testing.T, substr string) {
	t.Helper()
	eventually(t, "log line "+substr, func() bool { return strings.Contains(l.String(), substr) })
}

func newLog(t *testing.T) (*slog.Logger, *logBuf) {
	log, b := logtest.New(t, slog.LevelDebug)
	return log, &logBuf{b}
}

func testConfig(t *testing.T, id string, h Handler) (Config, *logBuf) {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Secret = []byte("test secret")
	cfg.Handler = h
	cfg.BackoffMin = 5 * time.Millisecond
	cfg.BackoffMax = 50 * time.Millisecond
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.IOTimeout = 2 * time.Second
	var lb *logBuf
	cfg.Logger, lb = newLog(t)
	return cfg, lb
}

func listen(t *testing.T, cfg Config) *TCP {
	t.Helper()
	tr, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// pair starts a server transport serving h and a client transport, both
// from testConfig and closed when the test ends; adjust, if not nil, edits
// their configs first. It returns them and the server's log.
func pair(t *testing.T, h Handler, adjust func(srv, cli *Config)) (srv, cli *TCP, srvLog *logBuf) {
	t.Helper()
	scfg, srvLog := testConfig(t, "server", h)
	ccfg, _ := testConfig(t, "client", nil)
	if adjust != nil {
		adjust(&scfg, &ccfg)
	}
	return listen(t, scfg), listen(t, ccfg), srvLog
}

// startClients starts a client transport for each id, from testConfig edited
// by adjust, closed when the test ends.
func startClients(t *testing.T, adjust func(*Config), ids ...string) []*TCP {
	t.Helper()
	var out []*TCP
	for _, id := range ids {
		cfg, _ := testConfig(t, id, nil)
		adjust(&cfg)
		out = append(out, listen(t, cfg))
	}
	return out
}

// gauge counts the handlers running and the most that ran at once.
type gauge struct{ running, peak atomic.Int64 }

// enter counts one more running and returns how many run now.
func (g *gauge) enter() int64 {
	n := g.running.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return n
}

func (g *gauge) leave() { g.running.Add(-1) }

// echo replies with the method number followed by the body.
var echo = HandlerFunc(func(_ context.Context, _ string, m Method, body []byte) ([]byte, error) {
	return append([]byte{byte(m)}, body...), nil
})

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, 10*time.Second, what, cond)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustIs(t *testing.T, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %v does not match %v", err, target)
		}
	}
}

// pendingCalls counts the calls pending on tr's connections to addr.
func pendingCalls(tr *TCP, addr string) int {
	tr.peersMu.RLock()
	p := tr.peers[addr]
	tr.peersMu.RUnlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		c.mu.Lock()
		n += c.pending.n
		c.mu.Unlock()
	}
	return n
}

// liveConns counts tr's registered connections in the given role.
func liveConns(tr *TCP, client bool) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for c := range tr.conns {
		if c.client == client {
			n++
		}
	}
	return n
}

// fakeListener serves every connection to a fresh 127.0.0.1 port with
// serve (then closes it) until the test ends, and returns the address.
func fakeListener(t *testing.T, serve func(nc net.Conn)) string {
	t.Helper()
	ln := nettest.Listen(t)
	nettest.Serve(t, ln, func(nc net.Conn) {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		serve(nc)
	})
	return ln.Addr().String()
}
