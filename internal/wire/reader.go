package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Decoding errors. Every error a Reader or a message decoder returns wraps
// ErrMalformed; one over a size limit wraps ErrTooLarge as well.
var (
	// ErrMalformed reports bytes that are not the expected msgpack.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrTooLarge reports a count, length or integer over the limit the
	// caller gave. It wraps ErrMalformed.
	ErrTooLarge = fmt.Errorf("%w: over a size limit", ErrMalformed)
)

// msgpack type codes this package reads and writes.
const (
	codeNil     = 0xc0
	codeNever   = 0xc1 // never used by msgpack: what a read past the end sees
	codeFalse   = 0xc2
	codeTrue    = 0xc3
	codeBin8    = 0xc4
	codeBin16   = 0xc5
	codeBin32   = 0xc6
	codeUint8   = 0xcc
	codeUint16  = 0xcd
	codeUint32  = 0xce
	codeUint64  = 0xcf
	codeInt8    = 0xd0
	codeInt16   = 0xd1
	codeInt32   = 0xd2
	codeInt64   = 0xd3
	codeStr8    = 0xd9
	codeStr16   = 0xda
	codeStr32   = 0xdb
	codeArray16 = 0xdc
	codeArray32 = 0xdd
)

// Reader reads msgpack from untrusted bytes, the one decoder of every
// node-to-node message, stored record and client token. It never panics
// and never allocates on success: byte strings it returns alias the input,
// and every claimed count or length is checked against the bytes left (and
// the caller's limit) before the caller can size anything by it.
//
// The first error sticks: later reads return zero values and Err reports
// it, so a decoder reads field after field and checks once (End), or checks
// Err where a value decides what to read next. Integers may come in any
// msgpack width, as the msgpack library writes and reads them.
type Reader struct {
	b   []byte
	off int
	err error
}

// A failed Reader has consumed its input (off == len(b)): the fast paths
// below need no error check, since they find no byte left to read.

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err returns the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Failure reports whether a read failed and whether that was over a
// limit. Unlike Err it hands out nothing of the Reader, so a caller that
// maps failures to its own sentinels keeps the input it reads off the heap.
func (r *Reader) Failure() (failed, tooLarge bool) {
	if r.err == nil {
		return false, false
	}
	e, ok := r.err.(*decodeError)
	return true, ok && e.tooLarge
}

// Len returns the number of bytes not read yet (0 after a failure).
func (r *Reader) Len() int { return len(r.b) - r.off }

// End returns the first error, or one for bytes left unread.
func (r *Reader) End() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail(ErrMalformed, "%d trailing bytes", uint64(len(r.b)-r.off))
	}
	return r.err
}

// Fail records err (which should wrap ErrMalformed) unless an error is
// recorded already, so a decoder's own checks stick like the Reader's.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
		r.off = len(r.b)
	}
}

// fail records a decoding error unless one is recorded already. format is
// a constant with one %d per arg; the message is built only if asked for,
// so a failed decode costs one small allocation.
//
//go:noinline
func (r *Reader) fail(kind error, format string, args ...uint64) {
	if r.err == nil {
		e := &decodeError{tooLarge: kind == ErrTooLarge, format: format, off: r.off, nargs: len(args)}
		copy(e.args[:], args)
		r.err = e
		r.off = len(r.b)
	}
}

// decodeError is a Reader failure.
type decodeError struct {
	tooLarge bool
	format   string
	args     [3]uint64
	nargs    int
	off      int
}

func (e *decodeError) Error() string {
	kind := ErrMalformed
	if e.tooLarge {
		kind = ErrTooLarge
	}
	args := make([]any, e.nargs)
	for i := range args {
		args[i] = e.args[i]
	}
	return fmt.Sprintf("%v: %s at byte %d", kind, fmt.Sprintf(e.format, args...), e.off)
}

// Is matches ErrMalformed, and ErrTooLarge for an error over a limit.
func (e *decodeError) Is(target error) bool {
	return target == ErrMalformed || (e.tooLarge && target == ErrTooLarge)
}

// take returns the next n bytes (a subslice of the input, capacity capped).
func (r *Reader) take(n uint64) []byte {
	if n > uint64(len(r.b)-r.off) {
		r.fail(ErrMalformed, "%d bytes wanted, %d left", n, uint64(len(r.b)-r.off))
		return nil
	}
	p := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return p
}

func (r *Reader) code() byte {
	if r.off >= len(r.b) {
		r.fail(ErrMalformed, "truncated")
		return codeNever
	}
	c := r.b[r.off]
	r.off++
	return c
}

// be reads a big-endian unsigned integer of n (1, 2, 4 or 8) bytes.
func (r *Reader) be(n uint64) uint64 {
	p := r.take(n)
	switch len(p) {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	case 8:
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// Byte reads one raw byte (a format-version byte before the msgpack).
func (r *Reader) Byte() byte {
	if r.off < len(r.b) {
		c := r.b[r.off]
		r.off++
		return c
	}
	r.fail(ErrMalformed, "truncated")
	return 0
}

// ArrayLen reads an array header of at most max elements, each of which
// takes at least one of the bytes left. nil is not an array.
func (r *Reader) ArrayLen(max int) int {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c >= 0x90 && c <= 0x9f {
			n := int(c & 0x0f)
			if n <= max && n < len(r.b)-r.off {
				r.off++
				return n
			}
		}
	}
	return r.arrayLenSlow(max)
}

func (r *Reader) arrayLenSlow(max int) int {
	c := r.code()
	var n uint64
	switch {
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == codeArray16:
		n = r.be(2)
	case c == codeArray32:
		n = r.be(4)
	default:
		r.fail(ErrMalformed, "want an array, got 0x%02x", uint64(c))
		return 0
	}
	switch {
	case r.err != nil:
		return 0
	case n > uint64(max):
		r.fail(ErrTooLarge, "array of %d elements, limit %d", n, uint64(max))
		return 0
	case n > uint64(r.Len()):
		r.fail(ErrMalformed, "array of %d elements in %d bytes", n, uint64(r.Len()))
		return 0
	}
	return int(n)
}

// Array reads an array header of exactly n elements.
func (r *Reader) Array(n int) {
	if got := r.ArrayLen(math.MaxInt); got != n && r.err == nil {
		r.fail(ErrMalformed, "array of %d elements, want %d", uint64(got), uint64(n))
	}
}

// ArrayIn reads an array header of min to max elements and returns how
// many: the header of a message that later releases extended with trailing
// fields, each sent only when set (so that a release that predates a field,
// and refuses a longer array, never receives it).
func (r *Reader) ArrayIn(min, max int) int {
	n := r.ArrayLen(math.MaxInt)
	if (n < min || n > max) && r.err == nil {
		r.fail(ErrMalformed, "array of %d elements, want %d to %d", uint64(n), uint64(min), uint64(max))
	}
	return n
}

// Uint reads a non-negative integer of any width, at most max.
func (r *Reader) Uint(max uint64) uint64 {
	var v uint64
	b := r.b[r.off:]
	switch {
	case len(b) > 0 && b[0] <= 0x7f: // positive fixint, the common case
		v = uint64(b[0])
		r.off++
	case len(b) > 8 && b[0] == codeUint64: // epochs and hashes
		v = binary.BigEndian.Uint64(b[1:9])
		r.off += 9
	case len(b) > 1 && b[0] == codeUint8:
		v = uint64(b[1])
		r.off += 2
	default:
		return r.uintSlow(max)
	}
	if v > max {
		r.fail(ErrTooLarge, "integer %d over %d", v, max)
		return 0
	}
	return v
}

func (r *Reader) uintSlow(max uint64) uint64 {
	c := r.code()
	var v uint64
	switch {
	case c <= 0x7f:
		v = uint64(c)
	case c >= codeUint8 && c <= codeUint64:
		v = r.be(1 << (c - codeUint8))
	case c >= codeInt8 && c <= codeInt64:
		n := uint64(1) << (c - codeInt8)
		v = r.be(n)
		if v>>(8*n-1)&1 == 1 {
			r.fail(ErrMalformed, "negative integer")
			return 0
		}
	default:
		r.fail(ErrMalformed, "want an unsigned integer, got 0x%02x", uint64(c))
		return 0
	}
	if v > max {
		r.fail(ErrTooLarge, "integer %d over %d", v, max)
		return 0
	}
	return v
}

// Int reads any integer that fits an int64.
func (r *Reader) Int() int64 {
	b := r.b[r.off:]
	if len(b) > 0 && (b[0] <= 0x7f || b[0] >= 0xe0) { // fixints, the common case
		r.off++
		return int64(int8(b[0]))
	}
	return r.intSlow()
}

func (r *Reader) intSlow() int64 {
	c := r.code()
	switch {
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0: // negative fixint
		return int64(int8(c))
	case c >= codeUint8 && c <= codeUint64:
		v := r.be(1 << (c - codeUint8))
		if v > math.MaxInt64 {
			r.fail(ErrMalformed, "integer %d over int64", v)
			return 0
		}
		return int64(v)
	case c == codeInt8:
		return int64(int8(r.be(1)))
	case c == codeInt16:
		return int64(int16(r.be(2)))
	case c == codeInt32:
		return int64(int32(r.be(4)))
	case c == codeInt64:
		return int64(r.be(8))
	}
	r.fail(ErrMalformed, "want an integer, got 0x%02x", uint64(c))
	return 0
}

// SetInt reads such a trailing field (see ArrayIn): one that is there only
// when set, so 0 is malformed.
func (r *Reader) SetInt() int64 {
	v := r.Int()
	if v == 0 && r.err == nil {
		r.fail(ErrMalformed, "optional field sent as 0")
	}
	return v
}

// Bool reads true or false.
func (r *Reader) Bool() bool {
	if r.off < len(r.b) {
		switch r.b[r.off] {
		case codeFalse:
			r.off++
			return false
		case codeTrue:
			r.off++
			return true
		}
	}
	c := r.code()
	r.fail(ErrMalformed, "want a bool, got 0x%02x", uint64(c))
	return false
}

// IsNil consumes a nil and reports true if the next value is nil; otherwise
// it reads nothing.
func (r *Reader) IsNil() bool {
	if r.off < len(r.b) && r.b[r.off] == codeNil {
		r.off++
		return true
	}
	return false
}

// Bin reads a bin of at most max bytes, or nil (returned as nil).
func (r *Reader) Bin(max int) []byte { return r.raw(max, true, false) }

// Str reads a str of at most max bytes.
func (r *Reader) Str(max int) []byte { return r.raw(max, false, true) }

// Bytes reads a bin or a str of at most max bytes, or nil (returned as
// nil), as the msgpack library reads both into []byte and string fields.
func (r *Reader) Bytes(max int) []byte { return r.raw(max, true, true) }

// raw reads a byte string. An empty one is returned empty, not nil: only a
// msgpack nil reads as nil.
func (r *Reader) raw(max int, bin, str bool) []byte {
	var n uint64
	b := r.b[r.off:]
	switch {
	case len(b) > 0 && str && b[0] >= 0xa0 && b[0] <= 0xbf:
		n = uint64(b[0] & 0x1f)
		r.off++
	case len(b) > 1 && bin && b[0] == codeBin8:
		n = uint64(b[1])
		r.off += 2
	default:
		return r.rawSlow(max, bin, str)
	}
	if n > uint64(max) {
		r.fail(ErrTooLarge, "byte string of %d bytes, limit %d", n, uint64(max))
		return nil
	}
	return r.take(n)
}

func (r *Reader) rawSlow(max int, bin, str bool) []byte {
	c := r.code()
	var n uint64
	switch {
	case bin && c == codeNil:
		return nil
	case str && c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case bin && c >= codeBin8 && c <= codeBin32:
		n = r.be(1 << (c - codeBin8))
	case str && c >= codeStr8 && c <= codeStr32:
		n = r.be(1 << (c - codeStr8))
	default:
		r.fail(ErrMalformed, "want a byte string, got 0x%02x", uint64(c))
		return nil
	}
	switch {
	case r.err != nil:
		return nil
	case n > uint64(max):
		r.fail(ErrTooLarge, "byte string of %d bytes, limit %d", n, uint64(max))
		return nil
	}
	return r.take(n)
}

// MapErr turns an error of this package into one of a caller's own
// sentinels: an error over a limit wraps tooLarge, any other malformed (and
// both still match this package's). It returns other errors, nil included,
// unchanged.
func MapErr(err, malformed, tooLarge error) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return &mappedError{sentinel: tooLarge, err: err}
	case errors.Is(err, ErrMalformed):
		return &mappedError{sentinel: malformed, err: err}
	}
	return err
}

type mappedError struct{ sentinel, err error }

func (e *mappedError) Error() string        { return e.sentinel.Error() + ": " + e.err.Error() }
func (e *mappedError) Is(target error) bool { return target == e.sentinel }
func (e *mappedError) Unwrap() error        { return e.err }
