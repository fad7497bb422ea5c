package ratelog

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is how often one kind of event from one source may log a
// line: rare enough that a flood costs a few lines a minute, often enough
// that an operator watching the log sees an attack within seconds.
const DefaultEvery = 10 * time.Second

// MaxKeys bounds the (event, source) pairs a Limiter remembers. Beyond it,
// events of new sources share the key OtherSources.
const MaxKeys = 1024

// OtherSources is the source a line is counted under once MaxKeys pairs
// are remembered.
const OtherSources = "(other sources)"

// Limiter rate-limits log lines per (event, source). The zero value is not
// usable; call New. Safe for concurrent use.
type Limiter struct {
	log        *slog.Logger
	every      time.Duration
	suppressed atomic.Uint64

	mu sync.Mutex
	m  map[key]*entry
}

type key struct{ event, source string }

type entry struct {
	last       time.Time // when a line was last let through
	suppressed int       // lines held back since
}

// New returns a Limiter writing to log (nil: discard) at most one line per
// (event, source) every interval (<= 0: DefaultEvery).
func New(log *slog.Logger, every time.Duration) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = DefaultEvery
	}
	return &Limiter{log: log, every: every, m: make(map[key]*entry)}
}

// Allow reports whether a line for (event, source) may be written at now
// and, if so, how many were held back since the last one. A line held back
// is counted in Suppressed.
func (l *Limiter) Allow(event, source string, now time.Time) (ok bool, heldBack int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key{event, source}
	e := l.m[k]
	if e == nil {
		if len(l.m) >= MaxKeys {
			l.sweepLocked(now)
		}
		if len(l.m) >= MaxKeys {
			k.source = OtherSources
			e = l.m[k]
		}
		if e == nil {
			l.m[k] = &entry{last: now}
			return true, 0
		}
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		l.suppressed.Add(1)
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// sweepLocked forgets pairs that have been quiet for an interval. Their
// held-back count is lost from the next line (it was at most one
// interval's worth); Suppressed keeps it.
func (l *Limiter) sweepLocked(now time.Time) {
	for k, e := range l.m {
		if now.Sub(e.last) >= l.every {
			delete(l.m, k)
		}
	}
}

// Warn logs msg at Warn level unless (msg, source) logged within the
// interval. The message is the event: keep variable parts in args.
func (l *Limiter) Warn(msg, source string, args ...any) {
	l.Log(slog.LevelWarn, msg, source, args...)
}

// Log is Warn at the given level. A line that follows held-back ones
// carries "repeats" (how many) and "repeats_window" (the interval).
func (l *Limiter) Log(level slog.Level, msg, source string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.logAs(level, msg, source, msg, args)
	}
}

// logAs logs line at level unless the event (event, source) logged within
// the interval.
func (l *Limiter) logAs(level slog.Level, event, source, line string, args []any) {
	ok, n := l.Allow(event, source, time.Now())
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "repeats", n, "repeats_window", l.every)
	}
	l.log.Log(context.Background(), level, line, args...)
}

// Suppressed returns how many lines were held back since New, for a
// metric (a counter).
func (l *Limiter) Suppressed() uint64 { return l.suppressed.Load() }

// Source is the rate-limiting key of a remote address: its IP, so that a
// flood from one host counts once whatever ports it uses. It returns "?"
// for a nil address.
func Source(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	if a == nil {
		return "?"
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
