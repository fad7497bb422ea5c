package membudget

import "context"

// Hold is what one owner holds in a Budget, resized as its need grows and
// shrinks: a connection's read buffer, a body read in pieces, a reply being
// built. It remembers its size, so the owner cannot release more than it
// took. The zero Hold (and one on a nil Budget) holds nothing and costs
// nothing. Not safe for concurrent use; a Hold is a value, copy it only
// before use.
type Hold struct {
	b *Budget
	n int64
}

// NewHold returns an empty Hold on b (nil: unaccounted).
func (b *Budget) NewHold() Hold { return Hold{b: b} }

// Limit returns the limit of the hold's budget (0: unaccounted).
func (h *Hold) Limit() int64 { return h.b.Limit() }

// Size returns the bytes held.
func (h *Hold) Size() int64 { return h.n }

// Resize makes the hold n bytes: growing takes the difference with Take
// (waiting as Take does, in the small requests' lane if n is small: see
// Config.SmallRequest; on error the hold keeps its size), shrinking
// releases it.
func (h *Hold) Resize(ctx context.Context, n int64) error {
	n = max(n, 0)
	switch {
	case n > h.n:
		if err := h.b.take(ctx, n-h.n, n); err != nil {
			return err
		}
	case n < h.n:
		h.b.Release(h.n - n)
	}
	h.n = n
	return nil
}

// ForceResize is Resize without waiting: growth is added with Force, for
// memory that already exists.
func (h *Hold) ForceResize(n int64) {
	n = max(n, 0)
	switch {
	case n > h.n:
		h.b.Force(n - h.n)
	case n < h.n:
		h.b.Release(h.n - n)
	}
	h.n = n
}

// Release returns everything held; the Hold can be used again.
func (h *Hold) Release() {
	h.b.Release(h.n)
	h.n = 0
}
