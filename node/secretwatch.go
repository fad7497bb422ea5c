package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ErrSecretMismatch is wrapped by a join that failed because the seeds use
// another cluster secret, or none (or this node none where they use one):
// memberlist could not decrypt their gossip, or they refused ours.
var ErrSecretMismatch = errors.New("cluster secret mismatch")

// secretMismatchSigns are memberlist's words for gossip encrypted under
// another key, or not encrypted where a key is installed, on either side.
var secretMismatchSigns = []string{
	"no installed keys could decrypt the message",
	"encryption is configured but remote state is not encrypted",
	"remote state is encrypted and encryption is not configured",
}

// isSecretMismatch reports a memberlist error or log line that means the
// peer's secret differs from ours.
func isSecretMismatch(s string) bool {
	s = strings.ToLower(s)
	for _, sign := range secretMismatchSigns {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// secretLogEvery is the least time between two "cluster secret mismatch"
// log lines: a joiner with the wrong secret retries every JoinRetry, and
// every attempt fails on both sides.
const secretLogEvery = 10 * time.Second

// secretRecent is how long after the last undecryptable message /status
// still warns about it.
const secretRecent = time.Minute

// secretWatch collects the signs of a secret mismatch seen by one node's
// gossip: memberlist's log lines (as receiver) and join errors (as joiner).
// It logs them, at most once per secretLogEvery, and reports them to
// /healthz and /status. Safe for concurrent use.
type secretWatch struct {
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

// secretStatus is what secretWatch tells /healthz and /status.
type secretStatus struct {
	Count       uint64
	Last        time.Time
	Peer        string
	JoinFailing bool
}

func newSecretWatch(log *slog.Logger, now func() time.Time) *secretWatch {
	if now == nil {
		now = time.Now
	}
	return &secretWatch{log: log, now: now}
}

// observe notes one message from peer that showed a mismatch and logs, at
// most once per secretLogEvery, a line saying so.
func (w *secretWatch) observe(peer, detail string) {
	w.mu.Lock()
	now := w.now()
	w.count++
	w.last, w.peer = now, peer
	w.unlogged++
	if !w.lastLog.IsZero() && now.Sub(w.lastLog) < secretLogEvery {
		w.mu.Unlock()
		return
	}
	n := w.unlogged
	w.unlogged, w.lastLog = 0, now
	w.mu.Unlock()
	w.log.Error("cluster secret mismatch: gossip with a peer that uses another cluster secret (or none) failed; every node needs the same --secret or QUORUMKV_SECRET",
		"peer", peer, "detail", detail, "since_last_report", n)
}

// joinResult notes the outcome of a join attempt. A failure due to the
// secret alone is returned wrapping ErrSecretMismatch; other errors as
// they are.
func (w *secretWatch) joinResult(seeds []string, contacted int, err error) error {
	mismatch := contacted == 0 && err != nil && isSecretMismatch(err.Error())
	w.mu.Lock()
	w.joinFailing = mismatch
	w.mu.Unlock()
	if !mismatch {
		return err
	}
	w.observe(strings.Join(seeds, ","), err.Error())
	return fmt.Errorf("%w: the seeds %s use another secret (or none): %v", ErrSecretMismatch, strings.Join(seeds, ","), err)
}

// logLine is called with each memberlist log line; it reports whether the
// line showed a mismatch (it is then counted, and logged by observe
// instead).
func (w *secretWatch) logLine(line string) bool {
	if !isSecretMismatch(line) {
		return false
	}
	if strings.Contains(strings.ToLower(line), "failed to join") {
		// The joiner's side: joinResult counts and reports it.
		return true
	}
	peer := ""
	if i := strings.LastIndex(line, "from="); i >= 0 {
		peer = strings.TrimSpace(line[i+len("from="):])
	}
	w.observe(peer, line)
	return true
}

func (w *secretWatch) status() secretStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return secretStatus{Count: w.count, Last: w.last, Peer: w.peer, JoinFailing: w.joinFailing}
}
