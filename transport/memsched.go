package transport

import (
	"context"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

// SetSequencer makes the network deliver every message (request, reply,
// refusal, the failures Close causes) through s, one per instant, in the
// order of when it is due and then of what it carries (link, method,
// bodies), not of which goroutine sent it first: for a cluster inside a
// testing/synctest bubble, so that a seed replays the same schedule (see
// clock.Sequencer). Each message then takes at least 1ns. Call it before
// the first message; nil (the default) delivers on plain timers.
func (n *MemNetwork) SetSequencer(s *clock.Sequencer) {
	n.mu.Lock()
	n.seq = s
	n.mu.Unlock()
}

// sequencer returns the network's Sequencer, nil when none.
func (n *MemNetwork) sequencer() *clock.Sequencer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seq
}

// msgKey is the ordering key of a message of kind on link l: a hash of
// what it carries, the same on every run. Bodies count as bags of bytes
// (clock.Bag): some encode maps in Go's random iteration order.
func msgKey(kind byte, l Link, m Method, bodies ...[]byte) uint64 {
	parts := [][]byte{{kind, byte(m)}, []byte(l.From), []byte(l.To)}
	for _, b := range bodies {
		parts = append(parts, clock.Bag(b))
	}
	return clock.Key(parts...)
}

// after runs f after d: through the Sequencer (key orders it among the
// events due at once) when the network has one, else at once when d is 0
// and on a timer otherwise.
func (n *MemNetwork) after(d time.Duration, key uint64, f func()) {
	if s := n.sequencer(); s != nil {
		s.AfterFunc(d, key, f)
		return
	}
	after(d, f)
}

// sleep waits d (a refusal's round trip) unless ctx ends or stop closes;
// with a Sequencer the wake-up is an event with key.
func (n *MemNetwork) sleep(ctx context.Context, d time.Duration, key uint64, stop <-chan struct{}) error {
	if n.sequencer() == nil {
		if d <= 0 {
			return nil
		}
		return sleep(ctx, d, stop)
	}
	woke := make(chan struct{})
	n.after(d, key, func() { close(woke) })
	select {
	case <-woke:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrClosed
	}
}

// fail ends call c with r: at once, or with a Sequencer as an event of
// its own (kind tells apart the failures of one call).
func (n *MemNetwork) fail(c *memCall, kind byte, r result) {
	if n.sequencer() == nil {
		c.finish(r)
		return
	}
	n.after(0, c.key^uint64(kind), func() { c.finish(r) })
}
