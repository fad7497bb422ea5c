package transport

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// logEvery is how often one kind of event from one source may log a line.
// Refused handshakes and bad frames are what an attacker can produce at
// will: without a limit a flood of them fills the disk through the log.
const logEvery = 10 * time.Second

// maxLogKeys bounds the sources the limiter remembers. Beyond it, events
// of new sources share one key per event, so a flood from many addresses
// still logs one line per interval.
const maxLogKeys = 1024

// logLimiter lets through the first line of each (event, source) and then
// at most one per interval; each line it lets through says how many it held
// back since the previous one ("repeats"). Safe for concurrent use.
type logLimiter struct {
	log   *slog.Logger
	every time.Duration

	mu sync.Mutex
	m  map[logKey]*logEntry
}

type logKey struct{ event, source string }

type logEntry struct {
	last       time.Time // when a line was last let through
	suppressed int       // lines held back since
}

func newLogLimiter(log *slog.Logger, every time.Duration) *logLimiter {
	return &logLimiter{log: log, every: every, m: make(map[logKey]*logEntry)}
}

// allow reports whether a line for (event, source) may be written now and,
// if so, how many were held back since the last one.
func (l *logLimiter) allow(event, source string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := logKey{event, source}
	e := l.m[k]
	if e == nil {
		if len(l.m) >= maxLogKeys {
			l.sweepLocked(now)
		}
		if len(l.m) >= maxLogKeys {
			k.source = "(other sources)"
			e = l.m[k]
		}
		if e == nil {
			l.m[k] = &logEntry{last: now}
			return true, 0
		}
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// sweepLocked forgets sources that have been quiet for an interval. Their
// held-back count is lost; it was at most one interval's worth and the
// next line from them starts a new count.
func (l *logLimiter) sweepLocked(now time.Time) {
	for k, e := range l.m {
		if now.Sub(e.last) >= l.every {
			delete(l.m, k)
		}
	}
}

// warn logs msg at Warn level unless (msg, source) logged within the
// interval; the line carries "repeats" when lines were held back.
func (l *logLimiter) warn(msg, source string, args ...any) {
	l.logAt(slog.LevelWarn, msg, source, args...)
}

func (l *logLimiter) logAt(level slog.Level, msg, source string, args ...any) {
	ok, n := l.allow(msg, source, time.Now())
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "repeats", n, "repeats_window", l.every)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// sourceOf is the rate-limiting key of a remote address: its IP, so that
// a flood from one host counts once whatever ports it uses.
func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
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
