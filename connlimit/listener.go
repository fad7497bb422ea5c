package connlimit

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/internal/ratelog"
)

// Reason says why a connection was refused.
type Reason int

// Reasons of refusal.
const (
	// RefusedTotal: MaxConns connections were open.
	RefusedTotal Reason = iota + 1
	// RefusedPerSource: the source already had MaxPerSource open.
	RefusedPerSource
)

func (r Reason) String() string {
	switch r {
	case RefusedTotal:
		return "connection cap"
	case RefusedPerSource:
		return "per-source cap"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// MinPerSource is the least per-source share DefaultPerSource gives, so a
// small cap still lets one client host open a pool of connections.
const MinPerSource = 16

// DefaultPerSource is the per-source share of a total cap:
// max(MinPerSource, total/8). An eighth means at least eight hosts (or
// /64 networks) must join to fill the listener, while one host's
// connection pool (tens) fits with room to spare.
func DefaultPerSource(total int) int { return max(MinPerSource, total/8) }

// Config configures a Listener.
type Config struct {
	// Name names the listener in log lines ("http", "resp").
	Name string
	// MaxConns caps open connections; must be > 0.
	MaxConns int
	// MaxPerSource caps open connections from one source (SourceKey);
	// 0 means DefaultPerSource(MaxConns); at most MaxConns.
	MaxPerSource int
	// Log, if set, gets one rate-limited warning per refusal reason and
	// source ("connection refused"); nil: no log.
	Log *ratelog.Limiter
	// Refuse, if set, is called with each refused connection just before
	// it is closed, to say why (RESP: "-ERR max number of clients
	// reached"). It runs on the accepting goroutine: it must be quick;
	// RefuseWith writes under a short deadline.
	Refuse func(c net.Conn, why Reason)
}

// Validate reports a bad field. It never changes c.
func (c Config) Validate() error {
	switch {
	case c.MaxConns <= 0:
		return fmt.Errorf("connlimit: max connections %d: must be > 0", c.MaxConns)
	case c.MaxPerSource < 0 || c.MaxPerSource > c.MaxConns:
		return fmt.Errorf("connlimit: max connections per source %d: must be 0 (default) to %d", c.MaxPerSource, c.MaxConns)
	}
	return nil
}

// Listener wraps a net.Listener and caps the connections it hands out, in
// total and per source. Excess connections are accepted from the kernel
// and closed at once (so the backlog drains and the client learns at
// once), counted and logged at a limited rate; Accept never returns them.
// A connection's slot is freed when it is closed. Safe for concurrent use.
type Listener struct {
	net.Listener
	cfg       Config
	perSource int

	mu      sync.Mutex
	open    int
	sources map[string]int

	accepted, refusedTotal, refusedSource atomic.Uint64
}

// NewListener wraps ln. Closing the Listener closes ln.
func NewListener(ln net.Listener, cfg Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Listener{Listener: ln, cfg: cfg, perSource: cfg.MaxPerSource, sources: make(map[string]int)}
	if l.perSource == 0 {
		l.perSource = min(DefaultPerSource(cfg.MaxConns), cfg.MaxConns)
	}
	return l, nil
}

// Accept returns the next connection within the caps. Errors of the
// wrapped listener are returned as they are (net/http and the RESP accept
// loop back off on temporary ones such as EMFILE).
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := SourceKey(nc.RemoteAddr())
		l.mu.Lock()
		var why Reason
		switch {
		case l.open >= l.cfg.MaxConns:
			why = RefusedTotal
		case l.sources[src] >= l.perSource:
			why = RefusedPerSource
		default:
			l.open++
			l.sources[src]++
		}
		open, fromSrc := l.open, l.sources[src]
		l.mu.Unlock()
		if why == 0 {
			l.accepted.Add(1)
			return &conn{Conn: nc, l: l, source: src}, nil
		}
		l.refuse(nc, src, why, open, fromSrc)
	}
}

func (l *Listener) refuse(nc net.Conn, src string, why Reason, open, fromSrc int) {
	if why == RefusedTotal {
		l.refusedTotal.Add(1)
	} else {
		l.refusedSource.Add(1)
	}
	if l.cfg.Log != nil {
		l.cfg.Log.Warn("connection refused: "+why.String(), src, "listener", l.cfg.Name, "source", src,
			"open", open, "open_from_source", fromSrc, "max_conns", l.cfg.MaxConns, "max_per_source", l.perSource)
	}
	if l.cfg.Refuse != nil {
		l.cfg.Refuse(nc, why)
	} else if tc, ok := nc.(*net.TCPConn); ok {
		// Reset rather than a graceful close: nothing is owed to the
		// client, and the kernel frees the socket at once (no TIME_WAIT
		// here). Not after a refusal message, which a reset would discard.
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// RefuseWith returns a Config.Refuse that writes msg to a refused
// connection, giving up after 50 ms (a fresh socket's send buffer takes a
// short message at once; a peer that does not read cannot hold the
// accepting goroutine).
func RefuseWith(msg []byte) func(net.Conn, Reason) {
	return func(c net.Conn, _ Reason) {
		_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = c.Write(msg)
	}
}

func (l *Listener) release(src string) {
	l.mu.Lock()
	l.open--
	if n := l.sources[src] - 1; n > 0 {
		l.sources[src] = n
	} else {
		delete(l.sources, src)
	}
	l.mu.Unlock()
}

// ListenerStats is a snapshot of a Listener, for metrics.
type ListenerStats struct {
	// Open is the connections open now, Sources how many sources they
	// come from.
	Open, Sources int
	// MaxConns and MaxPerSource are the caps.
	MaxConns, MaxPerSource int
	// Accepted counts connections handed out; RefusedTotal and
	// RefusedPerSource those closed at accept, by reason.
	Accepted, RefusedTotal, RefusedPerSource uint64
}

// Stats returns a snapshot.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	open, sources := l.open, len(l.sources)
	l.mu.Unlock()
	return ListenerStats{Open: open, Sources: sources, MaxConns: l.cfg.MaxConns, MaxPerSource: l.perSource,
		Accepted: l.accepted.Load(), RefusedTotal: l.refusedTotal.Load(), RefusedPerSource: l.refusedSource.Load()}
}

// conn frees its slot once, on the first Close.
type conn struct {
	net.Conn
	l      *Listener
	source string
	closed atomic.Bool
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.source)
	}
	return err
}

// NetConn returns the wrapped connection (as tls.Conn.NetConn does).
func (c *conn) NetConn() net.Conn { return c.Conn }

// SourceKey is the default source of a remote address: the IPv4 address,
// or the /64 network of an IPv6 address (one host usually holds a whole
// /64, so counting addresses would let it open 2^64 shares). Addresses it
// cannot parse are their own source.
func SourceKey(a net.Addr) string {
	var ap netip.AddrPort
	switch t := a.(type) {
	case *net.TCPAddr:
		ap = t.AddrPort()
	case nil:
		return "?"
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return a.String()
		}
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() || !ip.IsValid() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}
