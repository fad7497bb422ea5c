package vclock

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// Format-version bytes. Each encoding starts with one; a decoder refuses any
// other with ErrVersion. ONLY ADD new versions; never reuse a number.
const (
	setFormatV1     = 0x01
	contextFormatV1 = 0x01
	dotFormatV1     = 0x01
)

// Encoded shapes (all msgpack, after the version byte):
//
//	set:     [ [entry...], [sibling...] ]
//	context: [entry...]
//	dot:     entry
//	entry:   [node str, epoch uint, counter uint]
//	sibling: [actor uint, counter uint, data bin, content type str, deleted bool, timestamp int]
//	       | [actor uint, counter uint, data bin, content type str, deleted bool, timestamp int, expires int]
//
// A sibling with a deadline (Value.Expires, never 0 there) has the seventh
// field; one without has six, so sets without deadlines encode exactly as
// they did before deadlines existed. An older release refuses a seven-field
// sibling as malformed.
//
// A sibling names its actor by index into the set's context: the actor must
// be there anyway (the context covers every sibling), and node ids are not
// repeated per sibling.
const (
	entryFields          = 3
	siblingFields        = 6
	siblingFieldsExpires = 7
	// minEntryRaw and minSiblingRaw are the shortest encodings of an entry
	// and a sibling; a claimed count is checked against remaining/min.
	minEntryRaw   = 1 + 2 + 1 + 1 // fixarray, fixstr of one byte, epoch, counter
	minSiblingRaw = 1 + 6         // fixarray, six one-byte fields (nil Data)
)

var b64 = base64.RawURLEncoding.Strict()

// MarshalBinary returns the canonical encoding of s: a format-version byte,
// then msgpack. Two equal sets always encode to the same bytes. It returns
// ErrMalformed or ErrTooLarge if s fails Validate.
func (s Set) MarshalBinary() ([]byte, error) {
	b, err := s.AppendBinary(make([]byte, 0, s.sizeHint()))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendBinary appends the encoding of MarshalBinary to b. On error it
// returns b unchanged.
func (s Set) AppendBinary(b []byte) ([]byte, error) {
	out, err := appendSet(b, s, nil)
	if err != nil {
		return b, fmt.Errorf("encode set: %w", err)
	}
	return out, nil
}

// UnmarshalBinary sets *s to DecodeSet(b). On error *s is unchanged.
func (s *Set) UnmarshalBinary(b []byte) error {
	d, err := DecodeSet(b)
	if err != nil {
		return err
	}
	*s = d
	return nil
}

// Digest returns the xxhash64 of the canonical encoding of s, for
// anti-entropy: equal sets have equal digests on every node. It never returns
// 0, which callers may use for "absent". A set that fails Validate gets a
// digest of no meaning. The encoding is hashed in pieces, not built whole.
func (s Set) Digest() uint64 {
	var h xxhash.Digest
	h.Reset()
	var scratch [512]byte
	b, _ := appendSet(scratch[:0], s, &h) // an invalid set hashes to something; documented
	_, _ = h.Write(b)
	if d := h.Sum64(); d != 0 {
		return d
	}
	return 1
}

// sizeHint estimates the encoded size of s, to allocate once.
func (s Set) sizeHint() int {
	n := 16 + len(s.Context)*24
	for _, sib := range s.Siblings {
		n += 24 + len(sib.Value.ContentType) + len(sib.Value.Data)
	}
	return n
}

const (
	// hashFlush is how many pending bytes the hashing encoder lets gather
	// in its buffer before it hashes them, so Digest's stack buffer suffices.
	hashFlush = 256
	// hashDirect is the Data size from which the hashing encoder hashes Data
	// in place rather than copying it into the buffer.
	hashDirect = 128
)

// appendSet appends the encoding of s to b, checking what Validate checks.
// With h set it hashes instead: it writes to h what it would have appended
// and returns only the bytes not yet written.
func appendSet(b []byte, s Set, h *xxhash.Digest) ([]byte, error) {
	if err := s.Context.validate(); err != nil {
		return b, err
	}
	if len(s.Siblings) > MaxSiblings {
		return b, ErrTooLarge
	}
	flush := func(b []byte) []byte {
		if h != nil && len(b) >= hashFlush {
			_, _ = h.Write(b)
			return b[:0]
		}
		return b
	}
	b = append(b, setFormatV1)
	b = wire.AppendArrayLen(b, 2)
	b = wire.AppendArrayLen(b, len(s.Context))
	for _, e := range s.Context {
		b = flush(appendEntry(b, e))
	}
	b = wire.AppendArrayLen(b, len(s.Siblings))
	k := 0 // cursor into s.Context: siblings and entries share the actor order
	for i, sib := range s.Siblings {
		v := sib.Value
		if len(v.ContentType) > MaxContentTypeLen || uint64(len(v.Data)) > maxBinLen {
			return b, ErrTooLarge
		}
		if i > 0 && compareDots(s.Siblings[i-1].Dot, sib.Dot) >= 0 {
			return b, ErrMalformed
		}
		for k < len(s.Context) && compareActors(s.Context[k].Actor, sib.Dot.Actor) < 0 {
			k++
		}
		if k == len(s.Context) || s.Context[k].Actor != sib.Dot.Actor ||
			sib.Dot.Counter == 0 || sib.Dot.Counter > s.Context[k].Counter {
			return b, ErrMalformed // not covered by the context
		}
		if v.Expires < 0 {
			return b, ErrMalformed
		}
		if v.Expires != 0 {
			b = append(b, 0x90|siblingFieldsExpires)
		} else {
			b = append(b, 0x90|siblingFields)
		}
		b = wire.AppendUint(b, uint64(k))
		b = wire.AppendUint(b, sib.Dot.Counter)
		b = wire.AppendBinHeader(b, len(v.Data))
		if h != nil && len(v.Data) >= hashDirect {
			_, _ = h.Write(b)
			_, _ = h.Write(v.Data)
			b = b[:0]
		} else {
			b = append(b, v.Data...)
		}
		b = wire.AppendStr(b, v.ContentType)
		b = wire.AppendBool(b, v.Deleted)
		b = wire.AppendInt(b, v.Timestamp)
		if v.Expires != 0 {
			b = wire.AppendInt(b, v.Expires)
		}
		b = flush(b)
	}
	return b, nil
}

func appendEntry(b []byte, e Entry) []byte {
	b = append(b, 0x90|entryFields)
	b = wire.AppendStr(b, e.Actor.Node)
	b = wire.AppendUint(b, e.Actor.Epoch)
	return wire.AppendUint(b, e.Counter)
}

func appendVector(b []byte, v Vector) []byte {
	b = wire.AppendArrayLen(b, len(v))
	for _, e := range v {
		b = appendEntry(b, e)
	}
	return b
}

// DecodeSet decodes an encoding made by MarshalBinary, from untrusted bytes.
// It returns a canonical set or an error wrapping ErrVersion, ErrTooLarge or
// ErrMalformed; it never panics, and allocates no more than a small multiple
// of len(b). The result does not alias b.
func DecodeSet(b []byte) (Set, error) {
	s, err := decodeSet(b, false)
	if err != nil {
		return Set{}, fmt.Errorf("decode set: %w", err)
	}
	return s, nil
}

// DecodeSetOwned is DecodeSet for bytes the caller hands over: the
// siblings' Data alias b instead of a copy of it (one allocation and one
// copy less per decode), so b must not be changed or reused afterwards.
// A quorum read's replies are such bytes.
func DecodeSetOwned(b []byte) (Set, error) {
	s, err := decodeSet(b, true)
	if err != nil {
		return Set{}, fmt.Errorf("decode set: %w", err)
	}
	return s, nil
}

func decodeSet(b []byte, alias bool) (Set, error) {
	r, err := formatReader(b, setFormatV1)
	if err != nil {
		return Set{}, err
	}
	r.Array(2)
	n, err := readCount(&r, MaxActors, minEntryRaw)
	if err != nil {
		return Set{}, fmt.Errorf("context: %w", err)
	}
	start := r
	names, err := checkVector(&r, n)
	if err != nil {
		return Set{}, fmt.Errorf("context: %w", err)
	}
	ns, err := readCount(&r, MaxSiblings, minSiblingRaw)
	if err != nil {
		return Set{}, err
	}
	// The siblings' Data is at most the rest of the input: a small set
	// takes it from the allocation of its context and siblings.
	dataMax := 0
	if !alias && ns > 0 {
		dataMax = r.Len()
	}
	ctx, sibs, buf := newSetSlices(n, ns, dataMax)
	ctx = fillVector(start, ctx[:n], names)
	if sibs, err = readSiblings(&r, ctx, sibs[:ns], buf, alias); err != nil {
		return Set{}, err
	}
	if err := readEnd(&r); err != nil {
		return Set{}, err
	}
	return Set{Context: ctx, Siblings: sibs}, nil
}

// wireErr reports r's failure as this package's bare sentinels: a decode
// of untrusted bytes (a client's context, a peer's set) says what kind of
// failure it was, not where, and allocates little.
func wireErr(r *wire.Reader) error {
	switch failed, tooLarge := r.Failure(); {
	case !failed:
		return nil
	case tooLarge:
		return ErrTooLarge
	}
	return ErrMalformed
}

// readCount reads the length of an array of at most limit elements, each
// at least minRaw bytes: a count the remaining input cannot hold is
// ErrMalformed before anything is allocated for it.
func readCount(r *wire.Reader, limit, minRaw int) (int, error) {
	n := r.ArrayLen(limit)
	if err := wireErr(r); err != nil {
		return 0, err
	}
	if n > r.Len()/minRaw {
		return 0, ErrMalformed
	}
	return n, nil
}

// readVector reads a canonical vector: sorted actors, valid nodes, counters
// in 1..MaxCounter. All node ids share one allocation: a first pass checks
// the entries and sums their lengths, later passes (over input already
// checked) copy the ids and slice them out.
func readVector(r *wire.Reader) (Vector, error) {
	n, err := readCount(r, MaxActors, minEntryRaw)
	if n == 0 || err != nil {
		return nil, err
	}
	start := *r
	names, err := checkVector(r, n)
	if err != nil {
		return nil, err
	}
	return fillVector(start, make(Vector, n), names), nil
}

// checkVector is readVector's first pass over the n entries r reads: it
// checks them and returns the total length of their node ids.
func checkVector(r *wire.Reader, n int) (total int, err error) {
	var prev []byte
	var prevEpoch uint64
	for i := range n {
		node, epoch, _, err := readEntryRaw(r)
		if err != nil {
			return 0, fmt.Errorf("entry %d: %w", i, err)
		}
		if i > 0 {
			c := bytes.Compare(prev, node)
			if c > 0 || c == 0 && prevEpoch >= epoch {
				return 0, fmt.Errorf("entry %d: unsorted or duplicate actor: %w", i, ErrMalformed)
			}
		}
		prev, prevEpoch = node, epoch
		total += len(node)
	}
	return total, nil
}

// fillVector sets v's entries from the len(v) entries start reads, which
// checkVector has checked (names: the total length of their node ids),
// and returns v (nil when empty).
func fillVector(start wire.Reader, v Vector, names int) Vector {
	if len(v) == 0 {
		return nil
	}
	w := start
	if internedAll(&w, v) {
		return v
	}
	var sb strings.Builder
	sb.Grow(names)
	w = start
	for range v {
		node, _, _, _ := readEntryRaw(&w)
		sb.Write(node)
	}
	all, off := sb.String(), 0
	w = start
	for i := range v {
		node, epoch, counter, _ := readEntryRaw(&w)
		v[i] = Entry{Actor: Actor{Node: all[off : off+len(node)], Epoch: epoch}, Counter: counter}
		off += len(node)
	}
	intern(v)
	return v
}

// maxInterned bounds the node ids kept by intern: a cluster has a few;
// past the bound (ids from a long history, or made up by a peer), decodes
// copy the ids they do not find, as they would without the table.
const maxInterned = 256

// interned holds the node ids decodes have met, read without a lock: a
// map never changed once stored (intern stores a copy with the new ids).
var (
	interned   atomic.Pointer[map[string]string]
	internedMu sync.Mutex
)

// internedAll sets v's entries from those r reads (checked already by
// checkVector), their node ids from the table, when it has every id, and
// reports whether it did: the vector then costs no allocation for its ids.
func internedAll(r *wire.Reader, v Vector) bool {
	m := interned.Load()
	if m == nil {
		return false
	}
	for i := range v {
		node, epoch, counter, _ := readEntryRaw(r)
		s, ok := (*m)[string(node)]
		if !ok {
			return false
		}
		v[i] = Entry{Actor: Actor{Node: s, Epoch: epoch}, Counter: counter}
	}
	return true
}

// intern adds v's node ids to the table, while it has room. A full
// table is seen without the lock, so that once it is full (a peer sending
// made-up ids, say) a decode that misses it costs no lock.
func intern(v Vector) {
	if m := interned.Load(); m != nil && len(*m) >= maxInterned {
		return
	}
	internedMu.Lock()
	defer internedMu.Unlock()
	old := interned.Load()
	var m map[string]string
	if old != nil {
		m = *old
	}
	missing := 0
	for _, e := range v {
		if _, ok := m[e.Actor.Node]; !ok {
			missing++
		}
	}
	if missing == 0 || len(m)+missing > maxInterned {
		return
	}
	next := make(map[string]string, len(m)+missing)
	for k, s := range m {
		next[k] = s
	}
	for _, e := range v {
		s := strings.Clone(e.Actor.Node) // not a slice of the vector's shared ids
		next[s] = s
	}
	interned.Store(&next)
}

// readEntryRaw reads one entry, returning the node id as a subslice of the
// input.
func readEntryRaw(r *wire.Reader) (node []byte, epoch, counter uint64, err error) {
	r.Array(entryFields)
	node = r.Str(math.MaxInt)
	if err := wireErr(r); err != nil {
		return nil, 0, 0, err
	}
	if len(node) == 0 || len(node) > MaxNodeLen {
		return nil, 0, 0, fmt.Errorf("node id of %d bytes: %w", len(node), ErrMalformed)
	}
	epoch = r.Uint(math.MaxUint64)
	counter = r.Uint(math.MaxUint64)
	if err := wireErr(r); err != nil {
		return nil, 0, 0, err
	}
	if counter == 0 {
		return nil, 0, 0, fmt.Errorf("zero counter: %w", ErrMalformed)
	}
	if counter > MaxCounter {
		return nil, 0, 0, ErrTooLarge
	}
	return node, epoch, counter, nil
}

func readEntry(r *wire.Reader) (Entry, error) {
	node, epoch, counter, err := readEntryRaw(r)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Actor: Actor{Node: string(node), Epoch: epoch}, Counter: counter}, nil
}

// commonTypes are content types decoded without allocating a string.
var commonTypes = [...]string{"application/octet-stream", "text/plain; charset=utf-8", "application/json", "text/plain"}

// contentType returns p as a string, reusing prev or a common type when equal.
func contentType(p []byte, prev string) string {
	if string(p) == prev {
		return prev
	}
	for _, t := range commonTypes {
		if string(p) == t {
			return t
		}
	}
	return string(p)
}

// readSiblings reads the len(sibs) siblings of a set whose context is ctx
// into sibs (nil when there are none). Unless alias, their Data is copied
// into buf when it fits there, else into a buffer of its own.
func readSiblings(r *wire.Reader, ctx Vector, sibs []Sibling, buf []byte, alias bool) ([]Sibling, error) {
	if len(sibs) == 0 {
		return nil, nil
	}
	var err error
	total := 0 // bytes of Data, copied into one buffer at the end
	prevType := ""
	for i := range sibs {
		if sibs[i], err = readSibling(r, ctx, prevType); err != nil {
			return nil, fmt.Errorf("sibling %d: %w", i, err)
		}
		if i > 0 && compareDots(sibs[i-1].Dot, sibs[i].Dot) >= 0 {
			return nil, fmt.Errorf("sibling %d: unsorted or duplicate dot: %w", i, ErrMalformed)
		}
		prevType = sibs[i].Value.ContentType
		total += len(sibs[i].Value.Data)
	}
	if alias {
		// Data aliases the input, as the caller allows; each slice is
		// capped (readSibling), so an append cannot run into what follows.
		return sibs, nil
	}
	// Data still aliases the input; copy it all into one buffer, capping each
	// slice so an append by the caller cannot run into the next sibling's.
	if cap(buf) < total {
		buf = make([]byte, 0, total)
	}
	for i := range sibs {
		if d := sibs[i].Value.Data; len(d) > 0 {
			start := len(buf)
			buf = append(buf, d...)
			sibs[i].Value.Data = buf[start:len(buf):len(buf)]
		}
	}
	return sibs, nil
}

// readSibling reads one sibling; prevType is the previous sibling's content
// type, reused rather than allocated again when equal.
func readSibling(r *wire.Reader, ctx Vector, prevType string) (Sibling, error) {
	var sib rawSibling
	if err := readSiblingRaw(r, ctx, nil, &sib); err != nil {
		return Sibling{}, err
	}
	if len(sib.data) == 0 {
		sib.data = nil
	}
	return Sibling{
		Dot:   Dot{Actor: ctx[sib.k].Actor, Counter: sib.counter},
		Value: Value{Data: sib.data, ContentType: contentType(sib.ct, prevType), Deleted: sib.deleted, Timestamp: sib.ts, Expires: sib.expires},
	}, nil
}

// rawSibling is a sibling as read: its actor as an index into the set's
// context, its data and content type aliasing the input.
type rawSibling struct {
	fields      int
	k, counter  uint64
	data, ct    []byte
	deleted     bool
	ts, expires int64
}

// readSiblingRaw reads one sibling into sib, of a set whose context is
// ctx, or, when ctx is nil, whose context's counters are counters
// (CheckSet's copy of them).
func readSiblingRaw(r *wire.Reader, ctx Vector, counters []uint64, sib *rawSibling) error {
	sib.fields = r.ArrayLen(math.MaxInt)
	if err := wireErr(r); err != nil {
		return err
	}
	if sib.fields != siblingFields && sib.fields != siblingFieldsExpires {
		return fmt.Errorf("sibling of %d fields: %w", sib.fields, ErrMalformed)
	}
	sib.k = r.Uint(math.MaxUint64)
	if err := wireErr(r); err != nil {
		return err
	}
	n := len(counters)
	if ctx != nil {
		n = len(ctx)
	}
	if sib.k >= uint64(n) {
		return fmt.Errorf("actor index %d of %d: %w", sib.k, n, ErrMalformed)
	}
	sib.counter = r.Uint(math.MaxUint64)
	if err := wireErr(r); err != nil {
		return err
	}
	var covered uint64 // the context's counter of the sibling's actor
	if ctx != nil {
		covered = ctx[sib.k].Counter
	} else {
		covered = counters[sib.k]
	}
	if sib.counter == 0 || sib.counter > covered {
		return fmt.Errorf("counter %d not covered by the context: %w", sib.counter, ErrMalformed)
	}
	sib.data = r.Bin(math.MaxInt)
	sib.ct = r.Str(math.MaxInt)
	if err := wireErr(r); err != nil {
		return err
	}
	if len(sib.ct) > MaxContentTypeLen {
		return ErrTooLarge
	}
	sib.deleted = r.Bool()
	sib.ts = r.Int()
	if sib.fields == siblingFieldsExpires {
		sib.expires = r.Int()
	}
	if err := wireErr(r); err != nil {
		return err
	}
	if sib.fields == siblingFieldsExpires && sib.expires <= 0 {
		// Canonical: no deadline is six fields; deadlines are after 1970.
		return fmt.Errorf("deadline %d: %w", sib.expires, ErrMalformed)
	}
	return nil
}

// EncodeContext returns the causal context token for v: URL-safe base64
// without padding of a format-version byte and msgpack. The empty vector
// encodes as "". v must be canonical; a vector within the limits always
// decodes with DecodeContext.
func EncodeContext(v Vector) string {
	if len(v) == 0 {
		return ""
	}
	var scratch [1024]byte // about 80 actors with short node ids
	raw := append(scratch[:0], contextFormatV1)
	return encodeToken(appendVector(raw, v))
}

// encodeToken returns the base64 of raw with a single allocation.
func encodeToken(raw []byte) string {
	var sb strings.Builder
	sb.Grow(b64.EncodedLen(len(raw)))
	var chunk [256]byte
	const step = len(chunk) / 4 * 3 // whole 3-byte groups until the tail
	for len(raw) > 0 {
		n := min(step, len(raw))
		b64.Encode(chunk[:], raw[:n])
		sb.Write(chunk[:b64.EncodedLen(n)])
		raw = raw[n:]
	}
	return sb.String()
}

// decodeToken checks and base64-decodes a token of at most maxLen characters
// into scratch if it fits.
func decodeToken(s string, maxLen int, scratch []byte) ([]byte, error) {
	if len(s) > maxLen {
		return nil, ErrTooLarge
	}
	for i := 0; i < len(s); i++ { // the decoder would skip '\r' and '\n'
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, ErrMalformed
		}
	}
	n := b64.DecodedLen(len(s))
	dst := scratch
	if n > len(dst) {
		dst = make([]byte, n)
	}
	n, err := b64.Decode(dst, []byte(s))
	if err != nil {
		return nil, ErrMalformed
	}
	return dst[:n], nil
}

// formatReader starts reading an encoding (a set, a token's raw bytes):
// its format-version byte, which must be version. The Reader is returned
// by value so that the caller's buffer it reads (a token's scratch) stays
// on the caller's stack.
func formatReader(b []byte, version byte) (wire.Reader, error) {
	r := wire.NewReader(b)
	ver := r.Byte()
	if err := wireErr(&r); err != nil {
		return r, err
	}
	if ver != version {
		return r, ErrVersion
	}
	return r, nil
}

// readEnd checks that the encoding has been read to its end.
func readEnd(r *wire.Reader) error {
	r.End()
	return wireErr(r)
}

// errTokenBody is decodeTokenInto's answer to an into it cannot fill (a
// mistake of this package, not of the input). It does not quote into, so
// that into does not escape.
var errTokenBody = errors.New("vclock: no token body of that type")

// decodeTokenInto decodes a token of the given format version into
// *into (a *Vector for a context, an *Entry for a dot) and checks that it
// ends there. scratch is as for decodeToken. The body is read by direct
// calls, not through a function value, so that the Reader and the
// caller's scratch stay on the stack.
func decodeTokenInto(s string, maxLen int, version byte, scratch []byte, into any) error {
	raw, err := decodeToken(s, maxLen, scratch)
	if err != nil {
		return err
	}
	r, err := formatReader(raw, version)
	if err != nil {
		return err
	}
	switch p := into.(type) {
	case *Vector:
		*p, err = readVector(&r)
	case *Entry:
		*p, err = readEntry(&r)
	default:
		return errTokenBody
	}
	if err != nil {
		return err
	}
	return readEnd(&r)
}

// DecodeContext decodes a token from EncodeContext, from untrusted input
// (a client header). "" is the empty context. It checks the length before
// decoding anything and returns a canonical vector or an error wrapping
// ErrTooLarge, ErrVersion or ErrMalformed; it never panics.
func DecodeContext(s string) (Vector, error) {
	if s == "" {
		return nil, nil
	}
	var scratch [512]byte
	var v Vector
	if err := decodeTokenInto(s, MaxContextLen, contextFormatV1, scratch[:], &v); err != nil {
		return nil, fmt.Errorf("decode context: %w", err)
	}
	return v, nil
}

// EncodeDot returns a compact URL- and header-safe token for d (base64 of a
// version byte and msgpack), e.g. for returning the dot of a write over HTTP.
func EncodeDot(d Dot) string {
	var scratch [64]byte
	raw := append(scratch[:0], dotFormatV1)
	return encodeToken(appendEntry(raw, Entry(d)))
}

// DecodeDot decodes a token from EncodeDot, from untrusted input. It returns
// an error wrapping ErrTooLarge, ErrVersion or ErrMalformed for anything but a
// valid dot; it never panics.
func DecodeDot(s string) (Dot, error) {
	var scratch [64]byte
	var e Entry
	if err := decodeTokenInto(s, maxDotLen, dotFormatV1, scratch[:], &e); err != nil {
		return Dot{}, fmt.Errorf("decode dot: %w", err)
	}
	return Dot(e), nil
}
