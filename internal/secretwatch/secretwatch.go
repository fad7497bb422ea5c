// Package secretwatch recognises a cluster secret mismatch in gossip (a
// peer, or the seeds a node joins, using another secret or none) from
// memberlist's log lines and join errors, logs it at a bounded rate and
// reports it for /healthz, /readyz and /status.
package secretwatch

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ErrMismatch is wrapped by a join that failed because the seeds use
// another cluster secret, or none (or this node none where they use one):
// memberlist could not decrypt their gossip, or they refused ours.
var ErrMismatch = errors.New("cluster secret mismatch")

// mismatchSigns are memberlist's words for gossip encrypted under
// another key, or not encrypted where a key is installed, on either side.
var mismatchSigns = []string{
	"no installed keys could decrypt the message",
	"encryption is configured but remote state is not encrypted",
	"remote state is encrypted and encryption is not configured",
}

// IsMismatch reports a memberlist error or log line that means the
// peer's secret differs from ours.
func IsMismatch(s string) bool {
	s = strings.ToLower(s)
	for _, sign := range mismatchSigns {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// LogEvery is the least time between two "cluster secret mismatch"
// log lines: a joiner with the wrong secret retries every JoinRetry, and
// every attempt fails on both sides.
const LogEvery = 10 * time.Second

// Recent is how long after the last undecryptable message /status
// still warns about it.
const Recent = time.Minute

// Watch collects the signs of a secret mismatch seen by one node's
// gossip: memberlist's log lines (as receiver) and join errors (as joiner).
// It logs them, at most once per LogEvery, and reports them to
// /healthz and /status. Safe for concurrent use.
type Watch struct {
	log *slog.Logger
	now func() time.Time

	mu          sync.Mutex
	count       uint64    // messages that showed a mismatch
	last        time.Time // when the last one was seen
	peer        string    // its peer's address, as memberlist gave it
	joinFailing bool      // the last join attempt failed on the secret alone
	lastLog     time.Time
	unlogged    uint64 // seen since the last log line
}

// Status is what a Watch tells /healthz and /status.
type Status struct {
	Count       uint64
	Last        time.Time
	Peer        string
	JoinFailing bool
}

// New returns a Watch logging to log; now nil means time.Now.
func New(log *slog.Logger, now func() time.Time) *Watch {
	if now == nil {
		now = time.Now
	}
	return &Watch{log: log, now: now}
}

// Observe notes one message from peer that showed a mismatch and logs, at
// most once per LogEvery, a line saying so.
func (w *Watch) Observe(peer, detail string) {
	w.mu.Lock()
	now := w.now()
	w.count++
	w.last, w.peer = now, peer
	w.unlogged++
	if !w.lastLog.IsZero() && now.Sub(w.lastLog) < LogEvery {
		w.mu.Unlock()
		return
	}
	n := w.unlogged
	w.unlogged, w.lastLog = 0, now
	w.mu.Unlock()
	w.log.Error("cluster secret mismatch: gossip with a peer that uses another cluster secret (or none) failed; every node needs the same --secret or QUORUMKV_SECRET",
		"peer", peer, "detail", detail, "since_last_report", n)
}

// JoinResult notes the outcome of a join attempt. A failure due to the
// secret alone is returned wrapping ErrMismatch; other errors as
// they are.
func (w *Watch) JoinResult(seeds []string, contacted int, err error) error {
	mismatch := contacted == 0 && err != nil && IsMismatch(err.Error())
	w.mu.Lock()
	w.joinFailing = mismatch
	w.mu.Unlock()
	if !mismatch {
		return err
	}
	w.Observe(strings.Join(seeds, ","), err.Error())
	return fmt.Errorf("%w: the seeds %s use another secret (or none): %v", ErrMismatch, strings.Join(seeds, ","), err)
}

// LogLine is called with each memberlist log line; it reports whether the
// line showed a mismatch (it is then counted, and logged by Observe
// instead).
func (w *Watch) LogLine(line string) bool {
	if !IsMismatch(line) {
		return false
	}
	if strings.Contains(strings.ToLower(line), "failed to join") {
		// The joiner's side: JoinResult counts and reports it.
		return true
	}
	peer := ""
	if i := strings.LastIndex(line, "from="); i >= 0 {
		peer = strings.TrimSpace(line[i+len("from="):])
	}
	w.Observe(peer, line)
	return true
}

// Status is what the Watch has seen.
func (w *Watch) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Status{Count: w.count, Last: w.last, Peer: w.peer, JoinFailing: w.joinFailing}
}
