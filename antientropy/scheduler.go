package antientropy

import (
	"fmt"
	"slices"
	"time"
)

// Job is one exchange for the node to run: compare partition Partition with
// Peer, then repair the differing keys.
type Job[P comparable] struct {
	Partition uint32
	Peer      P
	// Repair is set when the job was picked ahead of schedule because the
	// partition was marked with MarkNeedsRepair.
	Repair bool
}

// Scheduler decides which (partition, peer) exchange a node runs next. It
// runs one exchange at a time; partitions marked as needing repair (hints
// were dropped, an operator asked) go first, oldest mark first; the others
// go in round robin, least recently exchanged first, each once per
// interval, paced evenly over it. Each partition rotates
// through its peers, skipping those not alive.
//
// It has no timers and reads no clock: the node passes the time to every
// call, calls Next when NextWake says so (or on a ticker), runs the job and
// reports with Done. P is the node id type. A Scheduler is not safe for
// concurrent use.
type Scheduler[P comparable] struct {
	interval, backoff time.Duration
	parts             map[uint32]*schedPart[P]
	seq               uint64 // last repair mark number

	running   bool
	job       Job[P]
	jobMark   uint64    // repair mark of the job's partition when picked
	lastStart time.Time // start of the last paced (non-repair) job
	prevStart time.Time // lastStart before the running job, restored if it fails
}

type schedPart[P comparable] struct {
	peers   []P
	next    int       // index of the next peer to try
	last    time.Time // end of the last successful exchange; zero = never
	retryAt time.Time // no attempt before this; zero = none pending
	mark    uint64    // repair mark number; 0 = not marked
}

// NewScheduler returns a Scheduler with no partitions that runs each
// partition once per interval and retries a failed one after backoff. Both
// must be positive (ErrInvalidConfig otherwise).
func NewScheduler[P comparable](interval, backoff time.Duration) (*Scheduler[P], error) {
	if interval <= 0 || backoff <= 0 {
		return nil, fmt.Errorf("%w: scheduler interval %v and backoff %v must be positive", ErrInvalidConfig, interval, backoff)
	}
	return &Scheduler[P]{interval: interval, backoff: backoff, parts: make(map[uint32]*schedPart[P])}, nil
}

// SetPartition registers partition p, replicated with peers (the other
// replicas, in the order to try them; the slice is copied). lastExchange is
// when p last completed an exchange, for example restored from disk; zero
// means never, so p is due at once. For a known partition it replaces the
// peers, and the last-exchange time if lastExchange is later; the repair mark
// and a pending retry are kept.
func (s *Scheduler[P]) SetPartition(p uint32, peers []P, lastExchange time.Time) {
	sp := s.parts[p]
	if sp == nil {
		sp = &schedPart[P]{}
		s.parts[p] = sp
	}
	sp.peers = slices.Clone(peers)
	if len(sp.peers) > 0 {
		sp.next %= len(sp.peers)
	} else {
		sp.next = 0
	}
	if lastExchange.After(sp.last) {
		sp.last = lastExchange
	}
}

// RemovePartition forgets partition p (the node no longer replicates it).
// If p's exchange is running, its Done is still accepted.
func (s *Scheduler[P]) RemovePartition(p uint32) { delete(s.parts, p) }

// MarkNeedsRepair puts partition p ahead of the schedule until an exchange
// of it succeeds after the mark; it is also how an on-demand exchange is
// requested. It reports false if p is unknown.
func (s *Scheduler[P]) MarkNeedsRepair(p uint32) bool {
	sp := s.parts[p]
	if sp == nil {
		return false
	}
	if sp.mark == 0 {
		s.seq++
		sp.mark = s.seq
	}
	sp.retryAt = time.Time{} // on demand means now, even after a failure
	return true
}

// Marked counts the partitions marked with MarkNeedsRepair whose exchange
// has not yet succeeded since (the one running included): the queue of
// repairs that /status reports.
func (s *Scheduler[P]) Marked() int {
	n := 0
	for _, sp := range s.parts {
		if sp.mark != 0 {
			n++
		}
	}
	return n
}

// pace is the spacing of scheduled (non-repair) exchanges: Interval divided
// among the partitions that have peers, so one round takes one Interval.
func (s *Scheduler[P]) pace() time.Duration {
	n := 0
	for _, sp := range s.parts {
		if len(sp.peers) > 0 {
			n++
		}
	}
	if n == 0 {
		return s.interval
	}
	return s.interval / time.Duration(n)
}

// candidate is a partition Next may pick: a repair (ordered by its mark
// number) or a scheduled exchange (ordered by when it became due, then by
// partition).
type candidate struct {
	p      uint32
	repair bool
	key    uint64    // repair: mark number
	due    time.Time // scheduled: when it became due
}

// before reports whether c goes before d: repairs first, oldest mark
// first; then the scheduled ones, longest due first, lower partition on a
// tie.
func (c candidate) before(d candidate) bool {
	switch {
	case c.repair != d.repair:
		return c.repair
	case c.repair:
		return c.key < d.key
	}
	if x := c.due.Compare(d.due); x != 0 {
		return x < 0
	}
	return c.p < d.p
}

// Next returns the exchange to run now, if any, and records it as running:
// the node must call Done when it ends. It returns false while an exchange
// runs, when nothing is due, or when no due partition has a live peer.
// alive reports whether a peer is reachable; nil means all are. A due
// partition whose peers are all down is postponed by the backoff.
//
// Each try is one pass over the partitions for the first candidate, not a
// sort of them all: with Q=1024 and a short interval nearly every partition
// is due at each call, and the sort was most of a replica's anti-entropy
// CPU. A candidate with no live peer is postponed, which takes it out of
// the next pass, so the passes try candidates in the sorted order.
func (s *Scheduler[P]) Next(now time.Time, alive func(P) bool) (Job[P], bool) {
	if s.running {
		return Job[P]{}, false
	}
	paced := s.lastStart.IsZero() || !now.Before(s.lastStart.Add(s.pace()))
	for {
		c, ok := s.first(now, paced)
		if !ok {
			return Job[P]{}, false
		}
		if s.start(c, now, alive) {
			return s.job, true
		}
	}
}

// start starts candidate c's exchange with its next live peer, or, with
// none alive, postpones c by the backoff and reports false.
func (s *Scheduler[P]) start(c candidate, now time.Time, alive func(P) bool) bool {
	sp := s.parts[c.p]
	for k := range len(sp.peers) {
		i := (sp.next + k) % len(sp.peers)
		if alive != nil && !alive(sp.peers[i]) {
			continue
		}
		sp.next = (i + 1) % len(sp.peers)
		s.running = true
		s.job = Job[P]{Partition: c.p, Peer: sp.peers[i], Repair: c.repair}
		s.jobMark = sp.mark
		s.prevStart = s.lastStart
		if !c.repair {
			s.lastStart = now
		}
		return true
	}
	sp.retryAt = now.Add(s.backoff) // no live peer
	return false
}

// first returns the candidate Next tries first at now: a marked partition,
// or with paced a due one, among those with peers and no retry pending.
func (s *Scheduler[P]) first(now time.Time, paced bool) (candidate, bool) {
	var best candidate
	found := false
	for p, sp := range s.parts {
		if len(sp.peers) == 0 || now.Before(sp.retryAt) {
			continue
		}
		var c candidate
		switch {
		case sp.mark != 0:
			c = candidate{p: p, repair: true, key: sp.mark}
		case !paced:
			continue
		default:
			due := sp.last.Add(s.interval)
			if sp.last.IsZero() {
				due = time.Time{}
			}
			if now.Before(due) {
				continue
			}
			c = candidate{p: p, due: due}
		}
		if !found || c.before(best) {
			best, found = c, true
		}
	}
	return best, found
}

// Done ends the running exchange at now. On success (err == nil) the
// partition's last-exchange time becomes now and its repair mark is cleared
// unless it was marked again meanwhile; on failure the partition is retried
// after the backoff, with its next peer, and the attempt does not count
// for pacing. Done without a running exchange does nothing.
func (s *Scheduler[P]) Done(now time.Time, err error) {
	if !s.running {
		return
	}
	s.running = false
	if err != nil {
		// A failed attempt (typically quick: the peer is down) does not use
		// up a pacing slot.
		s.lastStart = s.prevStart
	}
	sp := s.parts[s.job.Partition]
	if sp == nil {
		return // removed while running
	}
	if err != nil {
		sp.retryAt = now.Add(s.backoff)
		return
	}
	sp.last = now
	sp.retryAt = time.Time{}
	if sp.mark == s.jobMark {
		sp.mark = 0
	}
}

// NextWake returns the earliest time at or after now at which Next may
// return a job, assuming the peers are alive; the node sleeps until then (or
// until it marks a partition). It returns false while an exchange runs (wait
// for Done) or when no partition has peers.
func (s *Scheduler[P]) NextWake(now time.Time) (time.Time, bool) {
	if s.running {
		return time.Time{}, false
	}
	var best time.Time
	found := false
	paceAt := time.Time{}
	if !s.lastStart.IsZero() {
		paceAt = s.lastStart.Add(s.pace())
	}
	for _, sp := range s.parts {
		if len(sp.peers) == 0 {
			continue
		}
		t := sp.retryAt
		if sp.mark == 0 {
			if !sp.last.IsZero() {
				t = later(t, sp.last.Add(s.interval))
			}
			t = later(t, paceAt)
		}
		if !found || t.Before(best) {
			best, found = t, true
		}
	}
	if !found {
		return time.Time{}, false
	}
	return later(best, now), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
