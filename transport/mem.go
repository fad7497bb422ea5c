package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

// Any, in place of an address, makes Drop, Delay and Duplicate apply to
// every address on that side.
const Any = "*"

// Link is one direction between two addresses of a MemNetwork. A request
// travels on Link{caller, callee}, its reply on Link{callee, caller}.
type Link struct{ From, To string }

// LinkStats counts the messages offered to one Link.
type LinkStats struct {
	Sent       uint64 // messages offered, duplicates included
	Delivered  uint64 // handed to the handler (requests) or to the caller (replies)
	Dropped    uint64 // lost to a partition, an isolation or Drop
	Duplicated uint64 // extra copies made by Duplicate (also counted in Sent)
	Refused    uint64 // calls to an address with no open transport
	Bytes      uint64 // body bytes offered (an error reply counts 2 + its message)
}

// MemNetwork connects MemTransports in one process and injects faults
// between them on command. Faults act per direction (Link) and on each
// message at the moment it is sent; a partition or isolation is checked
// again when a delayed message arrives. All methods are safe for
// concurrent use.
//
// It uses no sockets and only time.AfterFunc for delays, so a whole
// cluster can run inside a testing/synctest bubble; create the network and
// its transports inside the bubble. There a seed replays the same faults
// when the same messages are sent: each link draws from a random stream
// of its own, so the order in which goroutines send on different links
// does not change what is dropped, distinct latencies per link
// (SetLatency) make messages sent at the same instant arrive in one
// order, and a clock.Sequencer (SetSequencer) delivers one message per
// instant, so that no two deliveries race.
type MemNetwork struct {
	mu       sync.Mutex
	seed     uint64
	rngs     map[Link]*rand.Rand // per link, made on first use
	latency  func(Link) time.Duration
	log      *slog.Logger
	nodes    map[string]*MemTransport
	groups   map[string]int // nil: no partition
	isolated map[string]bool
	drop     map[Link]float64
	dup      map[Link]float64
	delay    map[Link]func(r *rand.Rand) time.Duration
	stats    map[Link]*LinkStats
	seq      *clock.Sequencer // SetSequencer; nil: plain timers
}

// NewMemNetwork returns an empty network whose random choices (drops,
// duplicates, the r passed to delay functions) come from seed. Each link
// has its own sequence, reproducible as far as the order of the messages
// on that link is.
func NewMemNetwork(seed int64) *MemNetwork {
	return &MemNetwork{
		seed:     uint64(seed),
		rngs:     make(map[Link]*rand.Rand),
		log:      slog.New(slog.DiscardHandler),
		nodes:    make(map[string]*MemTransport),
		isolated: make(map[string]bool),
		drop:     make(map[Link]float64),
		dup:      make(map[Link]float64),
		delay:    make(map[Link]func(*rand.Rand) time.Duration),
		stats:    make(map[Link]*LinkStats),
	}
}

// SetLogger sets where handler panics are logged; nil discards them.
func (n *MemNetwork) SetLogger(l *slog.Logger) {
	n.mu.Lock()
	n.log = orDiscard(l)
	n.mu.Unlock()
}

// Listen attaches a node with id and handler h at addr, which must not be
// held by an open transport. Listening again on the address of a closed
// transport models a restart.
func (n *MemNetwork) Listen(addr, id string, h Handler) (*MemTransport, error) {
	if addr == "" || addr == Any {
		return nil, fmt.Errorf("mem listen: invalid address %q", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.nodes[addr]; old != nil && !old.closed.Load() {
		return nil, fmt.Errorf("mem listen %s: address in use", addr)
	}
	t := &MemTransport{
		net:      n,
		addr:     addr,
		id:       id,
		h:        h,
		inbound:  make(map[*memCall]struct{}),
		outbound: make(map[*memCall]struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	n.nodes[addr] = t
	return t, nil
}

// Partition splits the network into groups: messages between addresses of
// different groups are silently lost, so their callers wait until their
// ctx ends. Addresses named in no group form one more group together. It
// replaces any earlier partition; isolations stay.
func (n *MemNetwork) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = make(map[string]int)
	for i, g := range groups {
		for _, a := range g {
			n.groups[a] = i + 1
		}
	}
}

// Isolate cuts addr off from every other address, both ways, until Heal.
func (n *MemNetwork) Isolate(addr string) {
	n.mu.Lock()
	n.isolated[addr] = true
	n.mu.Unlock()
}

// SetLatency gives every message on a link (request, reply, refusal) a
// fixed one-way latency f(link), on top of any Delay; nil (the default)
// means none. Heal keeps it: it is the network, not a fault. f is called
// under the network's lock and must not call back into it.
func (n *MemNetwork) SetLatency(f func(Link) time.Duration) {
	n.mu.Lock()
	n.latency = f
	n.mu.Unlock()
}

// Heal removes partitions, isolations, drops, delays and duplication.
// Messages already delayed still arrive. Stats are kept, and so is the
// latency (SetLatency).
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
	clear(n.isolated)
	clear(n.drop)
	clear(n.dup)
	clear(n.delay)
}

// Drop loses each message from `from` to `to` with probability p (0
// removes the rule). Either side may be Any.
func (n *MemNetwork) Drop(from, to string, p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	setRule(n.drop, Link{from, to}, p)
}

// Duplicate delivers each request from `from` to `to` twice with
// probability p: the handler runs twice and the caller gets the first
// reply. Replies are never duplicated (the caller would not notice). Either
// side may be Any.
func (n *MemNetwork) Duplicate(from, to string, p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	setRule(n.dup, Link{from, to}, p)
}

// Delay holds each message from `from` to `to` for d(r), sampled per
// message with the link's seeded r (under the network's lock: d must not call
// back into the network). Varying delays reorder messages. nil removes the
// rule; negative durations count as 0. Either side may be Any.
func (n *MemNetwork) Delay(from, to string, d func(r *rand.Rand) time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d == nil {
		delete(n.delay, Link{from, to})
		return
	}
	n.delay[Link{from, to}] = d
}

// Stats returns a copy of the counters of every link that carried or
// refused a message.
func (n *MemNetwork) Stats() map[Link]LinkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[Link]LinkStats, len(n.stats))
	for l, s := range n.stats {
		out[l] = *s
	}
	return out
}

// ResetStats zeroes every counter.
func (n *MemNetwork) ResetStats() {
	n.mu.Lock()
	clear(n.stats)
	n.mu.Unlock()
}

func setRule(m map[Link]float64, l Link, p float64) {
	if p <= 0 {
		delete(m, l)
		return
	}
	m[l] = min(p, 1)
}

// lookup finds the most specific rule for l: exact, then from->Any, then
// Any->to, then Any->Any.
func lookup[V any](m map[Link]V, l Link) (V, bool) {
	for _, k := range [...]Link{l, {l.From, Any}, {Any, l.To}, {Any, Any}} {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func (n *MemNetwork) statsLocked(l Link) *LinkStats {
	s := n.stats[l]
	if s == nil {
		s = new(LinkStats)
		n.stats[l] = s
	}
	return s
}

// cutLocked reports whether a partition or isolation separates a and b.
func (n *MemNetwork) cutLocked(a, b string) bool {
	if a == b {
		return false
	}
	if n.isolated[a] || n.isolated[b] {
		return true
	}
	return n.groups != nil && n.groups[a] != n.groups[b]
}

// rngLocked returns l's random stream: seeded by the network's seed and
// the link, so it does not depend on what other links drew.
func (n *MemNetwork) rngLocked(l Link) *rand.Rand {
	r := n.rngs[l]
	if r == nil {
		h := fnv.New64a()
		h.Write([]byte(l.From))
		h.Write([]byte{0})
		h.Write([]byte(l.To))
		r = rand.New(rand.NewPCG(n.seed, h.Sum64()))
		n.rngs[l] = r
	}
	return r
}

// chanceLocked draws against the rule for l in m.
func (n *MemNetwork) chanceLocked(m map[Link]float64, l Link) bool {
	p, ok := lookup(m, l)
	return ok && n.rngLocked(l).Float64() < p
}

// delayLocked is how long a message on l takes: its latency plus any
// Delay rule's draw.
func (n *MemNetwork) delayLocked(l Link) time.Duration {
	d := n.latencyLocked(l)
	if f, ok := lookup(n.delay, l); ok {
		d += max(f(n.rngLocked(l)), 0)
	}
	return d
}

func (n *MemNetwork) latencyLocked(l Link) time.Duration {
	if n.latency == nil {
		return 0
	}
	return max(n.latency(l), 0)
}

// after runs f after d, at once when d is 0.
func after(d time.Duration, f func()) {
	if d <= 0 {
		f()
		return
	}
	time.AfterFunc(d, f)
}

// MemTransport is one node's end of a MemNetwork. It implements Transport.
// A closed MemTransport behaves like a dead process: calls to it fail at
// once with ErrUnreachable (connection refused), calls waiting on it fail
// with ErrConnLost, and its handlers' ctx is cancelled.
type MemTransport struct {
	net  *MemNetwork
	addr string
	id   string
	h    Handler

	ctx    context.Context // lifetime; parent of handler ctxs
	cancel context.CancelFunc
	closed atomic.Bool

	mu       sync.Mutex
	inbound  map[*memCall]struct{} // calls to us not yet answered
	outbound map[*memCall]struct{} // our calls in flight
	wg       sync.WaitGroup        // running handlers
	once     sync.Once
}

var _ Transport = (*MemTransport)(nil)

// memCall is one call in flight; its first result wins.
type memCall struct {
	src, dst *MemTransport
	m        Method
	key      uint64      // the request's ordering key (SetSequencer)
	done     chan result // cap 1
	finished atomic.Bool
}

func (c *memCall) finish(r result) {
	if c.finished.CompareAndSwap(false, true) {
		c.done <- r
	}
}

// LocalAddr returns the address given to Listen.
func (t *MemTransport) LocalAddr() string { return t.addr }

// Call sends a copy of body to the transport at addr through the network's
// faults and waits for the reply or ctx's end. A call lost to a partition
// or drop waits for ctx: without a deadline it waits until t is closed.
func (t *MemTransport) Call(ctx context.Context, addr string, m Method, body []byte) ([]byte, error) {
	if m == 0 {
		return nil, ErrInvalidMethod
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("call %s: %w", addr, err)
	}
	if t.closed.Load() {
		return nil, fmt.Errorf("call %s: %w", addr, ErrClosed)
	}
	n := t.net
	req := bytes.Clone(body) // the caller may reuse body once Call returns
	link := Link{t.addr, addr}

	n.mu.Lock()
	st := n.statsLocked(link)
	if n.cutLocked(t.addr, addr) {
		st.Sent++
		st.Dropped++
		st.Bytes += uint64(len(body))
		n.mu.Unlock()
		return nil, t.waitLost(ctx, addr)
	}
	dst := n.nodes[addr]
	if dst == nil || dst.closed.Load() {
		st.Refused++
		// A refusal comes back after a round trip.
		rtt := n.latencyLocked(link) + n.latencyLocked(Link{addr, t.addr})
		n.mu.Unlock()
		if err := n.sleep(ctx, rtt, msgKey('x', link, m, body), t.ctx.Done()); err != nil {
			return nil, fmt.Errorf("call %s: %w", addr, err)
		}
		return nil, &unreachableError{addr: addr, cause: errors.New("connection refused")}
	}
	copies := 1
	if n.chanceLocked(n.dup, link) {
		copies = 2
		st.Duplicated++
	}
	var delays [2]time.Duration
	var lost [2]bool
	for i := range copies {
		st.Sent++
		st.Bytes += uint64(len(body))
		if n.chanceLocked(n.drop, link) {
			st.Dropped++
			lost[i] = true
			continue
		}
		delays[i] = n.delayLocked(link)
	}
	ordered := n.seq != nil
	n.mu.Unlock()

	c := &memCall{src: t, dst: dst, m: m, done: make(chan result, 1)}
	if ordered {
		c.key = msgKey('q', link, m, body)
	}
	if !t.track(c, true) {
		return nil, fmt.Errorf("call %s: %w", addr, ErrClosed)
	}
	defer t.untrack(c, true)
	if !dst.track(c, false) {
		return nil, &unreachableError{addr: addr, cause: errors.New("connection refused")}
	}
	defer dst.untrack(c, false)

	deadline, hasDeadline := ctx.Deadline()
	// Each delivery gets its own memory, all copied before the first is
	// scheduled: a handler may write its reply over its request (ServeRPC's
	// reply may alias body), so the first delivery, given req itself, may
	// run while req would still be read for a later copy (a data race
	// seen in node's TestQuorumDuplicatesReorderingAndRestart).
	bodies := make([][]byte, copies)
	for i := range copies {
		if bodies[i] = req; i > 0 {
			bodies[i] = bytes.Clone(req)
		}
	}
	for i := range copies {
		if lost[i] {
			continue
		}
		b := bodies[i]
		n.after(delays[i], c.key, func() { n.deliver(c, m, b, deadline, hasDeadline) })
	}
	select {
	case r := <-c.done:
		return r.body, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("call %s: %w", addr, ctx.Err())
	}
}

// waitLost is a call whose request vanished: nothing will answer it.
func (t *MemTransport) waitLost(ctx context.Context, addr string) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("call %s: %w", addr, ctx.Err())
	case <-t.ctx.Done():
		return fmt.Errorf("call %s: %w", addr, ErrClosed)
	}
}

// deliver hands one copy of a request to the callee's handler.
func (n *MemNetwork) deliver(c *memCall, m Method, body []byte, deadline time.Time, hasDeadline bool) {
	src, dst := c.src, c.dst
	n.mu.Lock()
	st := n.statsLocked(Link{src.addr, dst.addr})
	if n.cutLocked(src.addr, dst.addr) {
		st.Dropped++
		n.mu.Unlock()
		return
	}
	st.Delivered++
	log := n.log
	n.mu.Unlock()
	dst.spawn(func() {
		ctx := dst.ctx
		if hasDeadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		resp, rerr := runHandler(ctx, dst.h, log, src.id, m, body)
		if dst.closed.Load() {
			return // a dead process sends nothing
		}
		n.reply(c, resp, rerr)
	})
}

// reply sends a handler's answer back through the network's faults.
func (n *MemNetwork) reply(c *memCall, resp []byte, rerr *RemoteError) {
	var r result
	size := len(resp)
	if rerr != nil {
		r.err = &RemoteError{Code: rerr.Code, Msg: rerr.Msg}
		size = 2 + len(rerr.Msg)
	} else {
		r.body = bytes.Clone(resp)
	}
	link := Link{c.dst.addr, c.src.addr}
	n.mu.Lock()
	st := n.statsLocked(link)
	st.Sent++
	st.Bytes += uint64(size)
	if n.cutLocked(link.From, link.To) || n.chanceLocked(n.drop, link) {
		st.Dropped++
		n.mu.Unlock()
		return
	}
	d := n.delayLocked(link)
	var key uint64
	if n.seq != nil {
		key = msgKey('r', link, c.m, r.body, []byte(fmt.Sprint(r.err))) ^ c.key
	}
	n.mu.Unlock()
	// The answer has left the callee: its death no longer fails the call.
	c.dst.untrack(c, false)
	n.after(d, key, func() {
		n.mu.Lock()
		if n.cutLocked(link.From, link.To) {
			st.Dropped++
			n.mu.Unlock()
			return
		}
		st.Delivered++
		n.mu.Unlock()
		c.finish(r)
	})
}

// track records c as one of t's outgoing (out) or incoming calls, unless t
// is closed.
func (t *MemTransport) track(c *memCall, out bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	if out {
		t.outbound[c] = struct{}{}
	} else {
		t.inbound[c] = struct{}{}
	}
	return true
}

func (t *MemTransport) untrack(c *memCall, out bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if out {
		delete(t.outbound, c)
	} else {
		delete(t.inbound, c)
	}
}

// spawn runs a handler goroutine that Close waits for, unless t is closed.
func (t *MemTransport) spawn(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// Close kills the node: calls to it fail with ErrUnreachable from now on,
// calls it was serving fail with ErrConnLost, its own calls in flight fail
// with ErrClosed, and its handlers' ctx is cancelled. Close waits for its
// handlers to return. It is idempotent and always returns nil.
func (t *MemTransport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed.Store(true)
		in, out := t.inbound, t.outbound
		t.inbound, t.outbound = make(map[*memCall]struct{}), make(map[*memCall]struct{})
		t.mu.Unlock()
		t.cancel()
		// With a Sequencer each failure is an event of its own, ordered
		// by its call's key, not by the maps' iteration order.
		for c := range in {
			t.net.fail(c, 'l', result{err: &connLostError{addr: t.addr, cause: errors.New("peer closed")}})
		}
		for c := range out {
			t.net.fail(c, 'c', result{err: fmt.Errorf("call %s: %w", c.dst.addr, ErrClosed)})
		}
		t.wg.Wait()
	})
	return nil
}
