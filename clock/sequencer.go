package clock

import (
	"container/heap"
	"encoding/binary"
	"hash/fnv"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sequencer runs events one per instant, for code inside a testing/synctest
// bubble: an event due at an instant when another has already run goes
// 1ns later, and events due at once go in the order of a key the caller
// derives from what they carry, then in the order queued. Since the
// bubble's clock moves on only once every goroutine is blocked, what one
// event starts has finished before the next begins, and which goroutine
// the scheduler happened to run first no longer decides what happens: a
// seed replays the same schedule.
//
// A Sequencer reads the process clock, which outside a bubble is real; it
// still works there but only adds timers. Safe for concurrent use.
type Sequencer struct {
	mu     sync.Mutex
	events seqEvents
	seq    uint64
	timer  *time.Timer
	armed  time.Time // when timer fires; zero when not pending
	last   time.Time // the instant of the last event run
}

// NewSequencer returns an empty Sequencer.
func NewSequencer() *Sequencer { return &Sequencer{} }

// seqEvent is one event waiting in a Sequencer.
type seqEvent struct {
	at   time.Time // when it is due
	key  uint64
	seq  uint64
	fn   func()
	done bool // run or cancelled; guarded by Sequencer.mu
}

type seqEvents []*seqEvent

func (q seqEvents) Len() int { return len(q) }
func (q seqEvents) Less(i, j int) bool {
	a, b := q[i], q[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.seq < b.seq
}
func (q seqEvents) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *seqEvents) Push(x any)   { *q = append(*q, x.(*seqEvent)) }
func (q *seqEvents) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// Key hashes parts into an event key: equal parts, equal keys, on every run.
func Key(parts ...[]byte) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Bag returns b's bytes counted, in byte order: equal for two encodings
// of one value that differ only in the order of their parts, as a map
// encoded in Go's iteration order does. Pass it to Key for such payloads.
func Bag(b []byte) []byte {
	var n [256]uint32
	for _, c := range b {
		n[c]++
	}
	out := make([]byte, 0, 64)
	for c, k := range n {
		if k > 0 {
			out = binary.AppendUvarint(append(out, byte(c)), uint64(k))
		}
	}
	return out
}

// AfterFunc runs f in the Sequencer's own goroutine once d (at least 1ns)
// has passed and its turn has come; f must not block. stop cancels it
// and reports whether it had not run.
func (s *Sequencer) AfterFunc(d time.Duration, key uint64, f func()) (stop func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	now := time.Now()
	e := &seqEvent{at: now.Add(max(d, time.Nanosecond)), key: key, seq: s.seq, fn: f}
	heap.Push(&s.events, e)
	s.armLocked(now)
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		was := !e.done
		e.done = true
		return was
	}
}

// armLocked sets the timer for the next live event: when it is due, but
// never at the instant of the last one run.
func (s *Sequencer) armLocked(now time.Time) {
	for len(s.events) > 0 && s.events[0].done {
		heap.Pop(&s.events)
	}
	if len(s.events) == 0 {
		return
	}
	want := s.events[0].at
	if next := s.last.Add(time.Nanosecond); want.Before(next) {
		want = next
	}
	if !s.armed.IsZero() && !want.Before(s.armed) {
		return
	}
	s.armed = want
	Rearm(&s.timer, want.Sub(now), s.fire)
}

// fire runs the first live event due, unless one ran at this instant, and
// arms the timer for the next.
func (s *Sequencer) fire() {
	s.mu.Lock()
	now := time.Now()
	s.armed = time.Time{}
	for len(s.events) > 0 && s.events[0].done {
		heap.Pop(&s.events)
	}
	if len(s.events) == 0 || now.Before(s.events[0].at) || !now.After(s.last) {
		s.armLocked(now)
		s.mu.Unlock()
		return
	}
	e := heap.Pop(&s.events).(*seqEvent)
	e.done = true
	s.last = now
	s.armLocked(now)
	s.mu.Unlock()
	e.fn()
}

// Clock returns a Clock whose timers, tickers and AfterFuncs fire through
// s, keyed by name (the owner, such as a node id) and their durations.
func (s *Sequencer) Clock(name string) Clock { return seqClock{s: s, name: name} }

type seqClock struct {
	s    *Sequencer
	name string
}

func (c seqClock) Now() time.Time { return time.Now() }

func (c seqClock) NewTimer(d time.Duration) Timer {
	t := &seqTimer{c: c, ch: make(chan time.Time, 1), site: callSite()}
	t.Reset(d)
	return t
}

func (c seqClock) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	t := &seqTimer{c: c, ch: make(chan time.Time, 1), ticker: true, site: callSite()}
	t.Reset(d)
	return timerTicker{t}
}

func (c seqClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &seqTimer{c: c, fn: f, site: callSite()}
	t.Reset(d)
	return t
}

// seqTimer is a timer, ticker (ticker: every period) or AfterFunc (fn) of a
// seqClock.
type seqTimer struct {
	c      seqClock
	ch     chan time.Time
	fn     func()
	ticker bool
	site   string // the code that made it: two timers of one owner made at
	// once in two goroutines get keys of their own

	mu     sync.Mutex
	period time.Duration
	stop   func() bool // the pending event's; nil when none
}

func (t *seqTimer) C() <-chan time.Time { return t.ch }

func (t *seqTimer) key(d time.Duration) uint64 {
	kind := byte('t')
	switch {
	case t.fn != nil:
		kind = 'f'
	case t.ticker:
		kind = 'k'
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(d) >> (8 * i))
	}
	return Key([]byte{kind}, []byte(t.c.name), []byte(t.site), b[:])
}

// scheduleLocked queues the next firing d from now.
func (t *seqTimer) scheduleLocked(d time.Duration) {
	t.stop = t.c.s.AfterFunc(d, t.key(d), t.fired)
}

func (t *seqTimer) fired() {
	t.mu.Lock()
	t.stop = nil
	if t.ticker {
		t.scheduleLocked(t.period)
	}
	t.mu.Unlock()
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.ch <- time.Now():
	default:
	}
}

func (t *seqTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop == nil {
		return false
	}
	pending := t.stop()
	t.stop = nil
	return pending
}

// Reset reschedules the timer d from now (a ticker: every d from now); as
// with time.Timer since Go 1.23, a value not yet received is dropped.
func (t *seqTimer) Reset(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pending := false
	if t.stop != nil {
		pending = t.stop()
	}
	if t.ch != nil {
		select {
		case <-t.ch:
		default:
		}
	}
	t.period = d
	t.scheduleLocked(d)
	return pending
}

// callSite names the first caller outside this package (function and
// line): the same on every run of one binary.
func callSite() string {
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "github.com/quorumkv/quorumkv/clock.") || !more {
			return f.Function + ":" + strconv.Itoa(f.Line)
		}
	}
}
