package vclock

import (
	"bytes"
	"cmp"
	"fmt"
	"math"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// Encoded is a set's encoding that CheckSet has checked: DecodeSet of it
// succeeds. It tells what a replica needs to store the set as it came (a
// peer's merge), without decoding it into a Set and encoding it again.
// It aliases the checked bytes, which must not change while it is used.
type Encoded struct {
	b []byte
	// asIs: the bytes are the canonical encoding (MarshalBinary of their
	// decode) and the summary below is filled in. When false the set was
	// decoded (set) to check it: a shape CheckSet does not summarize.
	asIs   bool
	set    Set
	hasSet bool
	// siblings, the sum of their Data and content type lengths, the
	// earliest deadline of a live sibling (0: none), the latest (dead,
	// DeadAt's, when deadOK) and whether every sibling is a tombstone.
	siblings int
	nctx     int
	// ctxAt and ctxEnd delimit the context's entries, sibAt is where the
	// first sibling starts.
	ctxAt, ctxEnd, sibAt int
	valueBytes           int64
	firstExpires         int64
	dead                 int64
	deadOK               bool
	deleted              bool
}

// checkActors is the largest context CheckSet summarizes itself; a larger
// one (rare: an actor per node incarnation that wrote the key) is decoded.
const checkActors = 32

// CheckSet checks b as DecodeSet would, returning the same errors, and
// describes the set without building it when it can (no allocation): the
// replica's check of a peer's set it may store as it came (AsIs).
func CheckSet(b []byte) (Encoded, error) {
	e, err := checkSet(b)
	if err != nil {
		return Encoded{}, fmt.Errorf("decode set: %w", err)
	}
	return e, nil
}

func checkSet(b []byte) (Encoded, error) {
	e := Encoded{b: b, asIs: true, deleted: true}
	r, err := formatReader(b, setFormatV1)
	if err != nil {
		return Encoded{}, err
	}
	r.Array(2)
	e.asIs = wireErr(&r) == nil && b[1] == 0x92
	at := len(b) - r.Len()
	n, err := readCount(&r, MaxActors, minEntryRaw)
	if err != nil {
		return Encoded{}, fmt.Errorf("context: %w", err)
	}
	if n > checkActors {
		return decoded(b)
	}
	e.asIs = e.asIs && canonicalArray(b[at:len(b)-r.Len()], n)
	e.nctx, e.ctxAt = n, len(b)-r.Len()
	start := r
	if _, err := checkVector(&r, n); err != nil {
		return Encoded{}, fmt.Errorf("context: %w", err)
	}
	var counters [checkActors]uint64
	for i := range n { // checked: no error
		at := len(b) - start.Len()
		node, epoch, counter, _ := readEntryRaw(&start)
		counters[i] = counter
		e.asIs = e.asIs && canonicalEntry(b[at:len(b)-start.Len()], node, epoch, counter)
	}
	e.ctxEnd = len(b) - r.Len()
	ns, err := readCount(&r, MaxSiblings, minSiblingRaw)
	if err != nil {
		return Encoded{}, err
	}
	e.sibAt = len(b) - r.Len()
	e.asIs = e.asIs && canonicalArray(b[e.ctxEnd:e.sibAt], ns)
	var prevK, prevCounter uint64
	for i := range ns {
		at := len(b) - r.Len()
		var sib rawSibling
		if err := readSiblingRaw(&r, nil, counters[:n], &sib); err != nil {
			return Encoded{}, fmt.Errorf("sibling %d: %w", i, err)
		}
		if i > 0 && (sib.k < prevK || sib.k == prevK && sib.counter <= prevCounter) {
			return Encoded{}, fmt.Errorf("sibling %d: unsorted or duplicate dot: %w", i, ErrMalformed)
		}
		prevK, prevCounter = sib.k, sib.counter
		e.asIs = e.asIs && canonicalSibling(b[at:len(b)-r.Len()], &sib)
		e.add(&sib)
	}
	if err := readEnd(&r); err != nil {
		return Encoded{}, err
	}
	return e, nil
}

// decoded is the Encoded of b checked by decoding it.
func decoded(b []byte) (Encoded, error) {
	s, err := decodeSet(b, false)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{b: b, set: s, hasSet: true}, nil
}

// add counts sib into e's summary.
func (e *Encoded) add(sib *rawSibling) {
	e.siblings++
	e.valueBytes += int64(len(sib.data) + len(sib.ct))
	if sib.deleted {
		return
	}
	e.deleted = false
	switch {
	case sib.expires == 0:
		e.deadOK = false
		e.dead = -1 // some live sibling never expires
	case e.dead >= 0:
		e.dead = max(e.dead, sib.expires)
		e.deadOK = true
	}
	if sib.expires != 0 && (e.firstExpires == 0 || sib.expires < e.firstExpires) {
		e.firstExpires = sib.expires
	}
}

// canonicalArray reports whether raw is the header AppendArrayLen writes
// for n elements.
func canonicalArray(raw []byte, n int) bool {
	var t [5]byte
	return bytes.Equal(raw, wire.AppendArrayLen(t[:0], n))
}

// canonicalEntry reports whether raw, from which readEntryRaw read node,
// epoch and counter, is what appendEntry writes for them.
func canonicalEntry(raw, node []byte, epoch, counter uint64) bool {
	var t [1 + 9 + 9]byte
	c := append(t[:0], 0x90|entryFields)
	raw, ok := skipHead(raw, wire.AppendStrHeader(c, len(node)), len(node))
	c = wire.AppendUint(t[:0], epoch)
	return ok && same(raw, wire.AppendUint(c, counter))
}

// canonicalSibling reports whether raw, from which readSiblingRaw read
// sib, is what appendSet writes for it.
func canonicalSibling(raw []byte, sib *rawSibling) bool {
	var t [1 + 9 + 9 + 5]byte
	c := append(t[:0], 0x90|byte(sib.fields))
	c = wire.AppendUint(c, sib.k)
	c = wire.AppendUint(c, sib.counter)
	raw, ok := skipHead(raw, wire.AppendBinHeader(c, len(sib.data)), len(sib.data))
	if !ok {
		return false
	}
	if raw, ok = skipHead(raw, wire.AppendStrHeader(t[:0], len(sib.ct)), len(sib.ct)); !ok {
		return false
	}
	c = wire.AppendBool(t[:0], sib.deleted)
	c = wire.AppendInt(c, sib.ts)
	if sib.fields == siblingFieldsExpires {
		c = wire.AppendInt(c, sib.expires)
	}
	return same(raw, c)
}

// skipHead reports whether raw starts with head, the canonical encoding
// of what was read from raw up to a payload of n bytes, and returns what
// follows the payload. The payload needs no comparing: the reader took
// it from there, after a header that is head.
func skipHead(raw, head []byte, n int) ([]byte, bool) {
	if len(raw)-len(head) < n || !same(raw[:len(head)], head) {
		return nil, false
	}
	return raw[len(head)+n:], true
}

// same is bytes.Equal for the few bytes of a header or a scalar, without
// the call into the runtime's comparison.
func same(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var diff byte
	for i, c := range a {
		diff |= c ^ b[i]
	}
	return diff == 0
}

// Bytes returns the encoding e describes.
func (e Encoded) Bytes() []byte { return e.b }

// AsIs reports whether the bytes are the set's canonical encoding, which
// a record may hold as they are (encoding their decode would give them
// back), and the summary methods below answer. When false, Decode.
func (e Encoded) AsIs() bool { return e.asIs }

// Decode returns the set, as DecodeSet of the bytes.
func (e Encoded) Decode() (Set, error) {
	if e.hasSet {
		return e.set, nil
	}
	return DecodeSet(e.b)
}

// Siblings returns the set's number of siblings (AsIs only).
func (e Encoded) Siblings() int { return e.siblings }

// ValueBytes returns the total length of the siblings' Data and content
// types (AsIs only).
func (e Encoded) ValueBytes() int64 { return e.valueBytes }

// IsDeleted is Set.IsDeleted of the set (AsIs only).
func (e Encoded) IsDeleted() bool { return e.deleted }

// DeadAt is Set.DeadAt of the set (AsIs only).
func (e Encoded) DeadAt() (at int64, ok bool) {
	if !e.deadOK {
		return 0, false
	}
	return e.dead, true
}

// ExpiresBy reports whether a live sibling's deadline is at or before
// now, which Expire(set, now) would turn into its tombstone (AsIs only).
func (e Encoded) ExpiresBy(now int64) bool { return e.firstExpires != 0 && e.firstExpires <= now }

// Supersedes is Supersedes of the set against the set encoded in enc,
// read from e's bytes (AsIs only): enc's context and e's, both in actor
// order, and e's siblings, in dot order, are each read once.
func (e Encoded) Supersedes(enc []byte) (bool, error) {
	if !e.asIs || e.siblings == 0 {
		return false, nil
	}
	in := wire.NewReader(e.b[e.ctxAt:e.ctxEnd])
	sibs := wire.NewReader(e.b[e.sibAt:])
	k := -1 // e's context entry read last (inNode, inEpoch, inCounter)
	var inNode []byte
	var inEpoch, inCounter uint64
	sibK, sibCounter := readDot(&sibs) // e's sibling read last
	nsib := 1
	return supersedes(enc, func(node []byte, epoch, counter uint64) bool {
		c := -1
		if k >= 0 {
			c = compareRawActors(inNode, inEpoch, node, epoch)
		}
		for c < 0 && k+1 < e.nctx {
			inNode, inEpoch, inCounter, _ = readEntryRaw(&in) // checked: no error
			k++
			c = compareRawActors(inNode, inEpoch, node, epoch)
		}
		if c != 0 || inCounter < counter {
			return false // an actor e has not seen, or not this far: e does not descend
		}
		// e's first sibling of actor k is its oldest one of it.
		for sibK < uint64(k) && nsib < e.siblings {
			sibK, sibCounter = readDot(&sibs)
			nsib++
		}
		return sibK != uint64(k) || sibCounter > counter // else enc has seen this dot: Sync may drop it
	})
}

// readDot reads a sibling (checked already) for its actor index and
// counter, skipping the rest.
func readDot(r *wire.Reader) (k, counter uint64) {
	fields := r.ArrayLen(siblingFieldsExpires)
	k, counter = r.Uint(math.MaxUint64), r.Uint(math.MaxUint64)
	r.Bin(math.MaxInt)
	r.Str(math.MaxInt)
	r.Bool()
	for range fields - 5 { // the timestamp, and a deadline
		r.Int()
	}
	return k, counter
}

// compareRawActors orders actors read from encodings as compareActors does.
func compareRawActors(node []byte, epoch uint64, node2 []byte, epoch2 uint64) int {
	if c := bytes.Compare(node, node2); c != 0 {
		return c
	}
	return cmp.Compare(epoch, epoch2)
}
