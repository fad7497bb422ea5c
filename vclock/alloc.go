package vclock

// Small sets are the common case: a key written by a few actors, holding
// one sibling or two. Their context, their siblings and (for a decode
// that copies it) their Data share one allocation rather than taking one
// each. Every slice is capped at its own array, so an append to one
// reallocates rather than running into another.

// smallActors is the context size the shared allocations hold.
const smallActors = 4

type (
	small1 struct {
		c [smallActors]Entry
		s [1]Sibling
	}
	small2 struct {
		c [smallActors]Entry
		s [2]Sibling
	}
	// The byte arrays come last: they hold no pointers, so the collector
	// does not scan them.
	small1d160 struct {
		c [smallActors]Entry
		s [1]Sibling
		d [160]byte
	}
	small1d288 struct {
		c [smallActors]Entry
		s [1]Sibling
		d [288]byte
	}
)

// newSetSlices returns an empty context of capacity nctx and an empty
// sibling slice of capacity nsib (nil for 0), sharing one allocation
// when they are small. With data > 0 it also returns an empty buffer of
// capacity data from that allocation, when one holds it; buf is nil
// otherwise (and when data is 0), and the caller makes its own.
func newSetSlices(nctx, nsib, data int) (ctx Vector, sibs []Sibling, buf []byte) {
	if nctx > 0 && nctx <= smallActors {
		switch {
		case nsib == 1 && data > 0 && data <= 160:
			p := new(small1d160)
			return p.c[:0:nctx], p.s[:0:1], p.d[:0:data]
		case nsib == 1 && data > 160 && data <= 288:
			p := new(small1d288)
			return p.c[:0:nctx], p.s[:0:1], p.d[:0:data]
		case nsib == 1:
			p := new(small1)
			return p.c[:0:nctx], p.s[:0:1], nil
		case nsib == 2:
			p := new(small2)
			return p.c[:0:nctx], p.s[:0:2], nil
		}
	}
	if nctx > 0 {
		ctx = make(Vector, 0, nctx)
	}
	if nsib > 0 {
		sibs = make([]Sibling, 0, nsib)
	}
	return ctx, sibs, nil
}
