package wire

import (
	"encoding/binary"
	"math"
)

// The Append functions write msgpack to the end of b and return the
// extended slice, with no reflection and no allocation beyond b's growth.
// Unless their name says Fixed, they pick the shortest form, as the msgpack
// library does; the Fixed ones write the full width the library gives
// uint8, uint32, uint64 and int64 struct fields, so messages that were once
// encoded by the library keep their bytes.

// AppendArrayLen appends an array header of n elements.
func AppendArrayLen(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeArray16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, codeArray32), uint32(n))
	}
}

// AppendUint appends u in its shortest form.
func AppendUint(b []byte, u uint64) []byte {
	switch {
	case u <= 0x7f:
		return append(b, byte(u))
	case u <= math.MaxUint8:
		return append(b, codeUint8, byte(u))
	case u <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeUint16), uint16(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, codeUint32), uint32(u))
	default:
		return binary.BigEndian.AppendUint64(append(b, codeUint64), u)
	}
}

// AppendInt appends i in its shortest form.
func AppendInt(b []byte, i int64) []byte {
	switch {
	case i >= 0:
		return AppendUint(b, uint64(i))
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, codeInt8, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, codeInt16), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, codeInt32), uint32(i))
	default:
		return binary.BigEndian.AppendUint64(append(b, codeInt64), uint64(i))
	}
}

// AppendUint8Fixed appends v as a uint8 (2 bytes).
func AppendUint8Fixed(b []byte, v uint8) []byte { return append(b, codeUint8, v) }

// AppendUint32Fixed appends v as a uint32 (5 bytes).
func AppendUint32Fixed(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, codeUint32), v)
}

// AppendUint64Fixed appends v as a uint64 (9 bytes).
func AppendUint64Fixed(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, codeUint64), v)
}

// AppendInt64Fixed appends v as an int64 (9 bytes).
func AppendInt64Fixed(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, codeInt64), uint64(v))
}

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, codeTrue)
	}
	return append(b, codeFalse)
}

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, codeNil) }

// AppendStr appends s as a str; callers keep len(s) within uint32.
func AppendStr(b []byte, s string) []byte { return append(AppendStrHeader(b, len(s)), s...) }

// AppendStrHeader appends the header of a str of n bytes; callers keep n
// within uint32 and append the bytes.
func AppendStrHeader(b []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, codeStr8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeStr16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, codeStr32), uint32(n))
	}
}

// AppendBinHeader appends the header of a bin of n bytes; callers keep n
// within uint32 and append the bytes.
func AppendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, codeBin8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, codeBin16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, codeBin32), uint32(n))
	}
}

// AppendBin appends p as a bin, and a nil p as nil, as the msgpack library
// encodes a []byte.
func AppendBin(b []byte, p []byte) []byte {
	if p == nil {
		return AppendNil(b)
	}
	return append(AppendBinHeader(b, len(p)), p...)
}
