package quorum

import "sync"

// chanRoom is the capacity of the reply channels requests reuse: room
// for every reply of a read, and of a write at N <= 3 (its targets, its
// checked merges sent again, its deadline's wake-up and the spares of a
// ring of up to a dozen members).
const chanRoom = 16

// chanPool keeps the reply channels of requests that answered, for the
// next ones: a channel of replies that hold pointers costs two
// allocations. A request takes one with room for every reply it can get
// (get), and gives it back (put) only once nothing can send to it any more
// (answered, under its mutex) and it is drained.
type chanPool[T any] struct{ p sync.Pool }

// get returns an empty channel with room for at least room replies.
func (cp *chanPool[T]) get(room int) chan T {
	if room > chanRoom {
		return make(chan T, room)
	}
	if ch, ok := cp.p.Get().(chan T); ok {
		return ch
	}
	return make(chan T, chanRoom)
}

// put keeps ch, empty and no longer sent to, for a later get.
func (cp *chanPool[T]) put(ch chan T) {
	if cap(ch) == chanRoom && len(ch) == 0 {
		cp.p.Put(ch)
	}
}
