package vclock

import (
	"encoding/binary"
	"math"
)

// A minimal msgpack writer and reader for the few shapes this package
// encodes. Hand-rolled rather than github.com/vmihailenco/msgpack/v5 so that
// encoding appends to the caller's buffer with no reflection, and decoding
// checks every length against the bytes remaining before it allocates. The
// output is plain msgpack; codec_test.go checks both directions against the
// msgpack library. The writer always picks the shortest form; the reader
// accepts any form of the expected type.

const (
	mpNil     = 0xc0
	mpFalse   = 0xc2
	mpTrue    = 0xc3
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpUint8   = 0xcc
	mpUint16  = 0xcd
	mpUint32  = 0xce
	mpUint64  = 0xcf
	mpInt8    = 0xd0
	mpInt16   = 0xd1
	mpInt32   = 0xd2
	mpInt64   = 0xd3
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
)

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
	}
}

func appendUint(b []byte, u uint64) []byte {
	switch {
	case u <= 0x7f:
		return append(b, byte(u))
	case u <= math.MaxUint8:
		return append(b, mpUint8, byte(u))
	case u <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(u))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), u)
	}
}

func appendInt(b []byte, i int64) []byte {
	switch {
	case i >= 0:
		return appendUint(b, uint64(i))
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, mpInt8, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(i))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(i))
	}
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// appendStr writes a str header and s; callers check len(s) <= MaxUint32.
func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

// appendBinHeader writes a bin header for n bytes; callers check n <= MaxUint32.
func appendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
}

// reader walks untrusted msgpack bytes. Every method returns ErrMalformed
// (unwrapped; callers add context) on a wrong type or a short input, and
// nothing it returns is longer than the input left.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) byte1() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrMalformed
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// next returns the next n bytes, a subslice of the input.
func (r *reader) next(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, ErrMalformed
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

// uintN reads a big-endian unsigned integer of n (1, 2, 4 or 8) bytes.
func (r *reader) uintN(n int) (uint64, error) {
	p, err := r.next(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	default:
		return binary.BigEndian.Uint64(p), nil
	}
}

// arrayLen reads an array header. The count is only a claim: callers check
// it against their limit and remaining() before sizing anything by it.
func (r *reader) arrayLen() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == mpArray16:
		n, err = r.uintN(2)
	case c == mpArray32:
		n, err = r.uintN(4)
	default:
		return 0, ErrMalformed
	}
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt32 { // past every limit; keeps int(n) positive on 32-bit
		return 0, ErrTooLarge
	}
	return int(n), nil
}

// int64v reads any msgpack integer that fits an int64.
func (r *reader) int64v() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	var u uint64
	switch c {
	case mpUint8, mpInt8:
		u, err = r.uintN(1)
	case mpUint16, mpInt16:
		u, err = r.uintN(2)
	case mpUint32, mpInt32:
		u, err = r.uintN(4)
	case mpUint64, mpInt64:
		u, err = r.uintN(8)
	default:
		return 0, ErrMalformed
	}
	if err != nil {
		return 0, err
	}
	switch c {
	case mpInt8:
		return int64(int8(u)), nil
	case mpInt16:
		return int64(int16(u)), nil
	case mpInt32:
		return int64(int32(u)), nil
	case mpInt64:
		return int64(u), nil
	case mpUint64:
		if u > math.MaxInt64 {
			return 0, ErrMalformed
		}
	}
	return int64(u), nil
}

// uint64v reads any msgpack integer that is not negative.
func (r *reader) uint64v() (uint64, error) {
	if r.off < len(r.b) {
		switch c := r.b[r.off]; {
		case c <= 0x7f: // positive fixint, the common case
			r.off++
			return uint64(c), nil
		case c == mpUint64:
			r.off++
			return r.uintN(8)
		}
	}
	i, err := r.int64v()
	if err != nil {
		return 0, err
	}
	if i < 0 {
		return 0, ErrMalformed
	}
	return uint64(i), nil
}

// strBytes reads a str and returns its bytes (a subslice of the input).
func (r *reader) strBytes() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == mpStr8:
		n, err = r.uintN(1)
	case c == mpStr16:
		n, err = r.uintN(2)
	case c == mpStr32:
		n, err = r.uintN(4)
	default:
		return nil, ErrMalformed
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(r.remaining()) {
		return nil, ErrMalformed
	}
	return r.next(int(n))
}

// binBytes reads a bin (or nil, as empty) and returns its bytes (a subslice
// of the input).
func (r *reader) binBytes() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch c {
	case mpNil:
		return nil, nil
	case mpBin8:
		n, err = r.uintN(1)
	case mpBin16:
		n, err = r.uintN(2)
	case mpBin32:
		n, err = r.uintN(4)
	default:
		return nil, ErrMalformed
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(r.remaining()) {
		return nil, ErrMalformed
	}
	return r.next(int(n))
}

func (r *reader) boolv() (bool, error) {
	c, err := r.byte1()
	if err != nil {
		return false, err
	}
	switch c {
	case mpFalse:
		return false, nil
	case mpTrue:
		return true, nil
	}
	return false, ErrMalformed
}
