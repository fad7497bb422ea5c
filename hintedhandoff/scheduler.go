package hintedhandoff

import (
	"maps"
	"slices"
	"time"
)

// Result is how a delivery pass over one target's hints ended.
type Result int

const (
	// Drained: every hint the pass read was delivered (or was changed
	// meanwhile and stays for the next pass). The target's backoff resets.
	Drained Result = iota + 1
	// Failed: the target refused, timed out or was unreachable, or some
	// hint could not be delivered. The target is left alone for a backoff
	// delay that grows with consecutive failures.
	Failed
	// Interrupted: the node is shutting down; nothing is learnt about the
	// target.
	Interrupted
)

// String names the result for logs.
func (r Result) String() string {
	switch r {
	case Drained:
		return "drained"
	case Failed:
		return "failed"
	case Interrupted:
		return "interrupted"
	}
	return "unknown"
}

// Scheduler keeps the delivery state of each target: whether a pass is
// running (never more than one per target), consecutive failures and when
// the next attempt may start, what was delivered, failed and dropped, and
// when a drop was last reported (so that a full target logs once per
// period, not once per refused write). It reads no clock: every call takes
// the time. Not safe for concurrent use.
type Scheduler struct {
	backoff  Backoff
	logEvery time.Duration
	targets  map[string]*target
}

type target struct {
	running    bool
	failures   int
	retryAt    time.Time // zero: no backoff
	lastErr    string
	delivered  uint64
	failed     uint64
	dropped    [4]uint64 // by DropReason
	lastReport time.Time // of a drop
	unreported int       // drops since lastReport
	lastExpiry time.Time
}

// NewScheduler returns a Scheduler that backs off by b and reports drops
// for a target at most once per logEvery (zero or less: every drop).
func NewScheduler(b Backoff, logEvery time.Duration) *Scheduler {
	return &Scheduler{backoff: b, logEvery: logEvery, targets: make(map[string]*target)}
}

func (s *Scheduler) get(id string) *target {
	t := s.targets[id]
	if t == nil {
		t = &target{}
		s.targets[id] = t
	}
	return t
}

// Plan returns, in the order given, the targets of pending on which a pass
// should start now: no pass running, no backoff pending at now, and
// eligible (for example, gossip sees the target alive; nil means all are).
// It marks them running; the caller must call Finish for each. eligible is
// called only for targets otherwise ready.
func (s *Scheduler) Plan(now time.Time, pending []string, eligible func(string) bool) []string {
	var out []string
	for _, id := range pending {
		t := s.get(id)
		if t.running || (!t.retryAt.IsZero() && now.Before(t.retryAt)) {
			continue
		}
		if eligible != nil && !eligible(id) {
			continue
		}
		t.running = true
		out = append(out, id)
	}
	return out
}

// Finish ends the running pass on id with res at now, and returns when the
// next pass may start (zero: at once). After Failed, that is now plus the
// backoff delay for the consecutive failures so far, with jitter in [0, 1)
// from the caller; err (may be nil) is kept for Status. Drained resets the
// failure count; Interrupted changes nothing but the running flag.
func (s *Scheduler) Finish(id string, now time.Time, res Result, jitter float64, err error) time.Time {
	t := s.get(id)
	t.running = false
	switch res {
	case Drained:
		t.failures, t.retryAt, t.lastErr = 0, time.Time{}, ""
	case Failed:
		t.failures++
		t.retryAt = now.Add(s.backoff.Delay(t.failures, jitter))
		if err != nil {
			t.lastErr = err.Error()
		}
	}
	return t.retryAt
}

// Revive clears id's backoff because the target was just seen alive
// (Dynamo delivers when the owner is back): the next Plan may start a pass
// at once. A running pass is not affected.
func (s *Scheduler) Revive(id string) {
	if t := s.targets[id]; t != nil {
		t.failures, t.retryAt = 0, time.Time{}
	}
}

// Delivered counts n hints acknowledged by id's destinations and failed
// counts m attempts that were not.
func (s *Scheduler) Delivered(id string, n, m int) {
	t := s.get(id)
	t.delivered += uint64(max(n, 0))
	t.failed += uint64(max(m, 0))
}

// Dropped counts n hints for id dropped for reason at now. report is true
// when the caller should log now (the first drop for id, then at most once
// per logEvery); since is then the number of drops, this one included, not
// yet reported.
func (s *Scheduler) Dropped(id string, reason DropReason, n int, now time.Time) (report bool, since int) {
	t := s.get(id)
	if reason > 0 && int(reason) < len(t.dropped) {
		t.dropped[reason] += uint64(max(n, 0))
	}
	t.unreported += n
	if !t.lastReport.IsZero() && now.Sub(t.lastReport) < s.logEvery {
		return false, 0
	}
	since, t.unreported, t.lastReport = t.unreported, 0, now
	return true, since
}

// ExpiryDue applies l.Expiry to id with the time of its previous expiry
// run, and records now as the latest run when it says to run.
func (s *Scheduler) ExpiryDue(id string, l Limits, h Held, now time.Time) (cutoff time.Time, run bool) {
	t := s.get(id)
	cutoff, run = l.Expiry(h, now, t.lastExpiry)
	if run {
		t.lastExpiry = now
	}
	return cutoff, run
}

// TargetState is one target's delivery state, for status pages.
type TargetState struct {
	Running   bool          // a pass is running
	Failures  int           // consecutive failed passes
	RetryIn   time.Duration // until the next pass may start; 0: now
	LastError string        // of the last failed pass, "" after a drained one
	Delivered uint64
	Failed    uint64
	Dropped   map[string]uint64 // by DropReason.String, only reasons seen
}

// State returns id's state at now (the zero TargetState for an unknown
// target).
func (s *Scheduler) State(id string, now time.Time) TargetState {
	t := s.targets[id]
	if t == nil {
		return TargetState{}
	}
	st := TargetState{Running: t.running, Failures: t.failures, LastError: t.lastErr,
		Delivered: t.delivered, Failed: t.failed}
	if !t.retryAt.IsZero() && t.retryAt.After(now) {
		st.RetryIn = t.retryAt.Sub(now)
	}
	for _, r := range DropReasons {
		if v := t.dropped[r]; v > 0 {
			if st.Dropped == nil {
				st.Dropped = make(map[string]uint64)
			}
			st.Dropped[r.String()] = v
		}
	}
	return st
}

// Targets returns every target the Scheduler has state for, sorted.
func (s *Scheduler) Targets() []string {
	return slices.Sorted(maps.Keys(s.targets))
}
