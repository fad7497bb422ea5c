package quorum

import (
	"context"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

type readReply struct {
	t   ring.Target
	set vclock.Set
	err error
	// ctxOnly: the reply of a context-only read (goReadContext).
	ctxOnly bool
	// timedOut marks no reply but the request's deadline, which the
	// read's timer (read.fire) queues to Get's loop.
	timedOut bool
	// hedge marks no reply but readHedge passing (readHedge.fire).
	hedge bool
	// isRaw: set is still to be decoded from raw (goReadRaw,
	// readSet.decode); nil raw is an empty set.
	isRaw bool
	raw   []byte
}

// readSet is what a read has gathered: the sync of every answer, fitted
// to the merge caps (Config.Siblings), the answers themselves, for
// RepairTargets, and the siblings the caps dropped.
type readSet struct {
	merged  vclock.Set
	got     []Reply
	dropped []vclock.Sibling
	// raw is the first encoding decode decoded, rawSet its set: a raw
	// reply with the same bytes is that set, undecoded.
	raw    []byte
	rawSet vclock.Set
}

// add takes in one reply; failures bring nothing. The first answer is
// taken as it is and an answer equal to what was gathered changes nothing
// (vclock.Sync of a set with itself is that set), so the common read, of
// replicas that agree, runs no merge.
func (s *readSet) add(rep readReply, p siblings.Policy) {
	s.decode(&rep)
	if rep.err != nil {
		return
	}
	switch {
	case len(s.got) == 0:
		m := p.Fit(rep.set)
		s.merged, s.dropped = m.Set, append(s.dropped, m.Trimmed...)
	case sameSet(rep.set, s.merged):
		// The very set gathered (a raw reply with the first one's bytes,
		// decoded once): equal without comparing its siblings.
	case !rep.set.Equal(s.merged):
		m := p.Merge(s.merged, rep.set)
		s.merged, s.dropped = m.Set, append(s.dropped, m.Trimmed...)
	}
	s.got = append(s.got, Reply{Target: rep.t, Set: rep.set})
}

// sameSet reports whether a and b are the same set in memory: the same
// context and siblings, not copies of them. Sets are never changed in
// place, so such sets are equal.
func sameSet(a, b vclock.Set) bool {
	return len(a.Siblings) == len(b.Siblings) && len(a.Context) == len(b.Context) &&
		(len(a.Siblings) == 0 || &a.Siblings[0] == &b.Siblings[0]) &&
		(len(a.Context) == 0 || &a.Context[0] == &b.Context[0])
}

// read is one read in flight at its coordinator. Until it answers, its
// replies go to the loop in Get through replies; after, deliver takes each
// into rs itself and the last one (or the repair wait running out, in
// expire) decides the repair: no goroutine waits for late replies.
type read struct {
	c   *Coordinator
	key ring.Key
	// replies has room for every call and the deadline's wake-up: a send
	// never blocks. Taken from c.readChans, given back once answered.
	replies chan readReply
	// bg carries the calls and the repair; bg.cancel releases it once
	// the repair is decided (or done).
	bg lazyCtx
	// mu orders deliver against the answer and the repair wait.
	mu       sync.Mutex
	answered bool
	finished bool // repair decided: later replies are dropped
	rs       readSet
	left     int
	// timer runs fire: at the request's deadline until the read answers,
	// then (reset) at the end of the repair wait. One timer for both,
	// instead of a context.WithTimeout per request and a second timer;
	// stopped before it went off, it serves a later request (stopAlarm).
	timer *alarm
	// fired: the deadline's fire ran (before the answer).
	fired bool
	// stale counts fires of the deadline that were already under way
	// when answer rearmed the repair wait on a new timer: each is ignored.
	stale  int
	gotBuf [3]Reply // rs.got's room at N <= 3, in the same allocation
	// targets is the plan's targets' room at N <= 3 (planReadIn).
	targets [3]ring.Target
	// res is Get's answer, in the same allocation: set once, before Get
	// returns, and never touched by late replies or the repair.
	res ReadResult
}

// Get coordinates a read: it asks the N targets (with
// Config.ReadQuorumOnly, R of them first), answers with the sync of the
// first R answers, then waits briefly for the rest and repairs the
// primaries that were behind.
func (c *Coordinator) Get(ctx context.Context, req GetRequest) (*ReadResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	r := c.cfg.Membership.Ring()
	p, err := c.Resolve(r, req.Params)
	if err != nil {
		return nil, err
	}
	rd := &read{c: c}
	plan := planReadIn(rd.targets[:0], r, c.cfg.Membership.Alive, c.cfg.Self, r.KeyOf(req.Key), p)
	if plan.refused != nil {
		return nil, plan.refused
	}
	// The request's deadline: p.Timeout from now, or ctx's if earlier
	// (ctx.Done then ends the wait). No context.WithTimeout: rd's timer
	// wakes the loop at the deadline (fire), and is the repair wait's too.
	now := time.Now()
	deadline := now.Add(p.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	tr := NewReadTracker(p.R, p.PR)
	rd.key = plan.key
	rd.replies = c.readChans.get(len(plan.targets) + 2) // + the deadline's and the hedge's wake-ups
	rd.bg.initDeadline(ctx, deadline)
	rd.rs.got = rd.gotBuf[:0]
	rd.timer = c.startAlarm(deadline.Sub(now), rd)
	rr, raw := c.cfg.Replicas.(RawReader)
	targets := plan.targets
	first := len(targets)
	var hedge *alarm
	if c.cfg.ReadQuorumOnly && max(p.R, p.PR) < len(targets) {
		targets = selfFirst(targets, c.cfg.Self)
		first = max(p.R, p.PR)
		hedge = c.startAlarm(readHedge, (*hedgeFire)(rd))
	}
	next := 0 // the next of targets to ask
	ask := func() {
		t := targets[next]
		next++
		rd.left++
		tr.Add(t.HintFor == "")
		if raw {
			c.goReadRaw(&rd.bg, rr, t, plan.key, rd)
		} else {
			c.goRead(&rd.bg, t, plan.key, rd)
		}
	}
	for next < first {
		ask()
	}
	dec := Pending
	for dec == Pending {
		select {
		case rep := <-rd.replies:
			if rep.timedOut {
				dec = Failed
				continue
			}
			if rep.hedge {
				for next < len(targets) {
					ask()
				}
				continue
			}
			rd.left--
			rd.rs.decode(&rep) // a set that does not decode is a failure
			if rep.err != nil {
				c.log.Debug("replica read failed", "op", "get", "peer", rep.t.Node, "err", rep.err)
				// Ask another before counting the failure, so the tracker
				// does not fail for want of targets it was never given.
				if next < len(targets) {
					ask()
				}
			}
			rd.rs.add(rep, c.cfg.Siblings)
			dec = tr.Record(rep.t.HintFor == "", rep.err)
		case <-ctx.Done():
			dec = Failed
		}
	}
	if hedge != nil {
		c.stopAlarm(hedge) // a fire under way finds the read answered
	}
	answer := rd.rs.merged
	rd.answer(min(c.cfg.ReadRepairWait, time.Until(rd.bg.deadline)))
	if dec != Succeeded {
		return nil, tr.Err()
	}
	// Values past their deadline by this node's clock answer as their
	// tombstones (same dots, so the context is unchanged): absent for
	// every front. The repair sends the sets as the replicas hold them;
	// each replica converts with its own clock and margin.
	answer, _ = vclock.Expire(answer, c.now().UnixNano())
	rd.res = ReadResult{Set: answer, Acks: tr.Acks()}
	return &rd.res, nil
}

// answer hands the replies still outstanding to deliver: those already
// queued are taken here; if some are still out, the repair waits for
// them at most wait (ReadRepairWait, bounded by the calls' deadline),
// counted in c.wg as the repair goroutine it replaces was.
func (rd *read) answer(wait time.Duration) {
	c := rd.c
	c.wg.Add(1)
	rd.mu.Lock()
	rd.answered = true
	// Nothing sends to replies once answered: drained, it serves another
	// request.
	for drained := false; !drained; {
		select {
		case rep := <-rd.replies:
			if rep.timedOut || rep.hedge {
				continue
			}
			rd.left--
			rd.rs.add(rep, c.cfg.Siblings)
		default:
			drained = true
		}
	}
	c.readChans.put(rd.replies)
	rd.replies = nil
	done := rd.left == 0
	switch {
	case done:
		rd.finished = true
		c.stopAlarm(rd.timer) // a fire under way finds the repair decided
	case rd.timer.t.Stop() || rd.fired:
		// Stopped before the deadline, or the deadline's fire ran
		// (its wake-up is above or was Get's): the timer is free.
		rd.timer.t.Reset(max(wait, 0))
	default:
		// The deadline's fire is under way: it will find the read
		// answered and must not end the repair wait, which a new timer
		// times.
		rd.stale++
		rd.timer = c.startAlarm(max(wait, 0), rd)
	}
	rd.mu.Unlock()
	if done {
		rd.finish()
	}
}

// deliver hands a reply to Get's loop, or after the answer takes it in;
// the last one outstanding decides the repair. It is every call's
// completion (goRead) and must not block.
func (rd *read) deliver(rep readReply) {
	rd.mu.Lock()
	if !rd.answered {
		rd.replies <- rep
		rd.mu.Unlock()
		return
	}
	if rd.finished {
		rd.mu.Unlock()
		return
	}
	rd.left--
	rd.rs.add(rep, rd.c.cfg.Siblings)
	done := rd.left == 0
	if done {
		rd.finished = true
		rd.c.stopAlarm(rd.timer)
	}
	rd.mu.Unlock()
	if done {
		rd.finish()
	}
}

// fire is rd.timer's: before the answer, the request's deadline, which
// it hands to Get's loop; after, the end of the repair wait, which ends
// with the replies gathered so far.
func (rd *read) fire() {
	rd.mu.Lock()
	if !rd.answered {
		rd.replies <- readReply{timedOut: true} // its room: sent at most once
		rd.fired = true
		rd.mu.Unlock()
		return
	}
	if rd.stale > 0 {
		rd.stale--
		rd.mu.Unlock()
		return
	}
	done := !rd.finished
	rd.finished = true
	rd.mu.Unlock()
	if done {
		rd.finish()
	}
}

// readHedge is how long a read at Config.ReadQuorumOnly waits for the
// replicas it asked first before it asks the others too, as an
// overwrite's read does (overwriteHedge).
const readHedge = overwriteHedge

// hedgeFire is a read seen by its hedge's alarm: fire wakes Get's loop
// to ask the replicas not asked yet. Pointer-shaped: no allocation.
type hedgeFire read

func (h *hedgeFire) fire() {
	rd := (*read)(h)
	rd.mu.Lock()
	if !rd.answered {
		rd.replies <- readReply{hedge: true} // its room: sent at most once
	}
	rd.mu.Unlock()
}

// selfFirst returns targets with self's, when it is a primary, moved to
// the front (in place: targets is the read's own); the others keep their
// order, primaries before fallbacks.
func selfFirst(targets []ring.Target, self ring.NodeID) []ring.Target {
	for i, t := range targets {
		if t.Node == self && t.HintFor == "" {
			copy(targets[1:i+1], targets[:i])
			targets[0] = t
			break
		}
	}
	return targets
}

// finish runs once per read, after the last reply or the wait: when
// something is to be reported or repaired, a goroutine does it (the rare
// case: replicas that disagree); then the calls' context is released.
func (rd *read) finish() {
	c, rs := rd.c, &rd.rs // rs no longer changes: the repair is decided
	if len(rs.dropped) == 0 || c.cfg.Trimmed == nil {
		if len(RepairTargets(rs.merged, rs.got)) == 0 {
			rd.bg.cancel()
			c.wg.Done()
			return
		}
	}
	go func() {
		defer c.wg.Done()
		defer rd.bg.cancel()
		c.repair(&rd.bg, rd.key, *rs)
	}()
}

// readSink takes a read's replies: its deliver must not block. A *read
// and a readChan are pointer-shaped, so passing either allocates nothing.
type readSink interface{ deliver(readReply) }

// readChan delivers to a channel with room for every call.
type readChan chan readReply

func (ch readChan) deliver(rep readReply) { ch <- rep }

// goRead starts Replicas.Read on t and hands the reply to out (see
// goMerge).
func (c *Coordinator) goRead(ctx context.Context, t ring.Target, k ring.Key, out readSink) {
	c.wg.Add(1)
	if ar, ok := c.cfg.Replicas.(AsyncReplicas); ok {
		ar.ReadAsync(ctx, t, k, func(s vclock.Set, err error) {
			out.deliver(readReply{t: t, set: s, err: err})
			c.wg.Done()
		})
		return
	}
	go func() {
		defer c.wg.Done()
		s, err := c.cfg.Replicas.Read(ctx, t, k)
		out.deliver(readReply{t: t, set: s, err: err})
	}()
}

// repair reports the siblings the read's merge dropped, then sends the
// sync of everything read to each primary that was behind.
func (c *Coordinator) repair(ctx context.Context, k ring.Key, rs readSet) {
	if len(rs.dropped) > 0 && c.cfg.Trimmed != nil {
		c.cfg.Trimmed(k, "", len(rs.merged.Siblings), rs.dropped)
	}
	behind := RepairTargets(rs.merged, rs.got)
	if len(behind) == 0 {
		return
	}
	enc, err := rs.merged.MarshalBinary()
	if err != nil {
		c.log.Warn("read repair: encode set", "err", err)
		return
	}
	for _, t := range behind {
		_, err := c.cfg.Replicas.Merge(ctx, t, k, enc, false)
		if err != nil {
			c.log.Debug("read repair failed", "peer", t.Node, "err", err)
		}
		if c.cfg.OnReadRepair != nil {
			c.cfg.OnReadRepair(t, err)
		}
	}
}
