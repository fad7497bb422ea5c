package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// readArray reads an array of at most 10 integers and returns its length.
func readArray(r *Reader) any {
	n := r.ArrayLen(10)
	for range n {
		r.Uint(math.MaxUint64)
	}
	return n
}

func TestReaderScalars(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(r *Reader) any
		want any
		err  error // nil: success
	}{
		{"uint fixint", []byte{0x7f}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(127), nil},
		{"uint8", []byte{0xcc, 0xff}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(255), nil},
		{"uint64", []byte{0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(0x0102030405060708), nil},
		{"uint from int16", []byte{0xd1, 0x01, 0x00}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(256), nil},
		{"uint negative fixint", []byte{0xff}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(0), ErrMalformed},
		{"uint negative int8", []byte{0xd0, 0x80}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(0), ErrMalformed},
		{"uint over max", []byte{0xcd, 0x01, 0x00}, func(r *Reader) any { return r.Uint(255) }, uint64(0), ErrTooLarge},
		{"uint truncated", []byte{0xce, 0, 0}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(0), ErrMalformed},
		{"uint from float", []byte{0xca, 0, 0, 0, 0}, func(r *Reader) any { return r.Uint(math.MaxUint64) }, uint64(0), ErrMalformed},
		{"int negative fixint", []byte{0xe0}, func(r *Reader) any { return r.Int() }, int64(-32), nil},
		{"int16", []byte{0xd1, 0xff, 0x38}, func(r *Reader) any { return r.Int() }, int64(-200), nil},
		{"int64 min", []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, func(r *Reader) any { return r.Int() }, int64(math.MinInt64), nil},
		{"int from uint64 over int64", []byte{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, func(r *Reader) any { return r.Int() }, int64(0), ErrMalformed},
		{"int from nil", []byte{0xc0}, func(r *Reader) any { return r.Int() }, int64(0), ErrMalformed},
		{"bool true", []byte{0xc3}, func(r *Reader) any { return r.Bool() }, true, nil},
		{"bool from nil", []byte{0xc0}, func(r *Reader) any { return r.Bool() }, false, ErrMalformed},
		{"array", []byte{0x92, 1, 2}, readArray, 2, nil},
		{"array16", append([]byte{0xdc, 0, 3}, 1, 2, 3), readArray, 3, nil},
		{"array over max", []byte{0x92, 1, 2}, func(r *Reader) any { return r.ArrayLen(1) }, 0, ErrTooLarge},
		{"array over the bytes", []byte{0xdd, 0, 0, 0, 5, 1}, func(r *Reader) any { return r.ArrayLen(100) }, 0, ErrMalformed},
		{"array of nil", []byte{0xc0}, func(r *Reader) any { return r.ArrayLen(100) }, 0, ErrMalformed},
		{"bin", []byte{0xc4, 2, 'h', 'i'}, func(r *Reader) any { return string(r.Bin(10)) }, "hi", nil},
		{"bin nil", []byte{0xc0}, func(r *Reader) any { return r.Bin(10) == nil }, true, nil},
		{"bin empty is not nil", []byte{0xc4, 0}, func(r *Reader) any { return r.Bin(10) != nil }, true, nil},
		{"bin from str", []byte{0xa2, 'h', 'i'}, func(r *Reader) any { return r.Bin(10) }, []byte(nil), ErrMalformed},
		{"str", []byte{0xa2, 'h', 'i'}, func(r *Reader) any { return string(r.Str(10)) }, "hi", nil},
		{"str8", append([]byte{0xd9, 40}, bytes.Repeat([]byte{'s'}, 40)...), func(r *Reader) any { return len(r.Str(40)) }, 40, nil},
		{"str from bin", []byte{0xc4, 2, 'h', 'i'}, func(r *Reader) any { return r.Str(10) }, []byte(nil), ErrMalformed},
		{"str nil", []byte{0xc0}, func(r *Reader) any { return r.Str(10) }, []byte(nil), ErrMalformed},
		{"bytes from str", []byte{0xa2, 'h', 'i'}, func(r *Reader) any { return string(r.Bytes(10)) }, "hi", nil},
		{"bytes over max", []byte{0xc4, 3, 'a', 'b', 'c'}, func(r *Reader) any { return r.Bytes(2) }, []byte(nil), ErrTooLarge},
		{"bytes over the input", []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 1}, func(r *Reader) any { return r.Bytes(math.MaxInt) }, []byte(nil), ErrMalformed},
		{"raw byte", []byte{7}, func(r *Reader) any { return r.Byte() }, byte(7), nil},
		{"raw byte of nothing", nil, func(r *Reader) any { return r.Byte() }, byte(0), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.in)
			got := tc.read(&r)
			err := r.End()
			if tc.err == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
			} else if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if b, ok := got.([]byte); ok {
				if w := tc.want.([]byte); !bytes.Equal(b, w) || (b == nil) != (w == nil) {
					t.Fatalf("got %q, want %q", b, w)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %v (%T), want %v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}

// TestReaderErrorSticks: after the first error every read returns a zero
// value and the error stays the first one.
func TestReaderErrorSticks(t *testing.T) {
	r := NewReader([]byte{0xc0, 0x01, 0xc3, 0xa1, 'x'})
	if r.Uint(10) != 0 || r.Err() == nil {
		t.Fatal("nil read as an integer")
	}
	first := r.Err()
	if r.Uint(10) != 0 || r.Bool() || r.Str(10) != nil || r.ArrayLen(10) != 0 || r.IsNil() || r.Err() != first {
		t.Fatal("reads after an error returned values or replaced the error")
	}
	r.Fail(errors.New("later"))
	if r.End() != first {
		t.Fatal("Fail replaced the first error")
	}
}

// A message extended by trailing fields: its length within the range, and
// a trailing field there only when set, so never 0.
func TestReaderArrayInAndSetInt(t *testing.T) {
	for _, tc := range []struct {
		b  []byte
		ok bool
	}{
		{[]byte{0x91, 0x07}, true},
		{[]byte{0x92, 0x07, 0xff}, true},        // the trailing field, -1
		{[]byte{0x92, 0x07, 0x00}, false},       // sent as 0
		{[]byte{0x90}, false},                   // too short
		{[]byte{0x93, 0x07, 0x01, 0x01}, false}, // too long
	} {
		r := NewReader(tc.b)
		if n := r.ArrayIn(1, 2); n == 1 {
			r.Int()
		} else {
			r.Int()
			r.SetInt()
		}
		if err := r.End(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%x: %v, want ok %v", tc.b, err, tc.ok)
		}
	}
}

func TestTooLargeIsMalformed(t *testing.T) {
	if !errors.Is(ErrTooLarge, ErrMalformed) {
		t.Fatal("ErrTooLarge does not wrap ErrMalformed")
	}
}

// TestAppendReadRoundTrip: what the appenders write, the Reader reads back,
// and the appenders pick the shortest form (as the msgpack library does).
func TestAppendReadRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := rapid.Uint64().Draw(t, "u")
		i := rapid.Int64().Draw(t, "i")
		s := rapid.String().Draw(t, "s")
		p := rapid.SliceOfN(rapid.Byte(), 0, 70000).Draw(t, "p")
		n := rapid.IntRange(0, 70000).Draw(t, "n")
		b := AppendUint(nil, u)
		b = AppendInt(b, i)
		b = AppendStr(b, s)
		b = AppendBin(b, p)
		b = AppendBool(b, u%2 == 0)
		b = AppendArrayLen(b, n)
		b = append(b, make([]byte, n)...) // the elements the header claims
		r := NewReader(b)
		if got := r.Uint(math.MaxUint64); got != u {
			t.Fatalf("uint %d, want %d", got, u)
		}
		if got := r.Int(); got != i {
			t.Fatalf("int %d, want %d", got, i)
		}
		if got := r.Str(math.MaxInt); string(got) != s {
			t.Fatalf("str %q, want %q", got, s)
		}
		if got := r.Bin(math.MaxInt); !bytes.Equal(got, p) {
			t.Fatal("bin differs")
		}
		if r.Bool() != (u%2 == 0) {
			t.Fatal("bool differs")
		}
		if got := r.ArrayLen(n); got != n {
			t.Fatalf("array of %d, want %d", got, n)
		}
		if err := r.Err(); err != nil || r.Len() != n {
			t.Fatalf("err %v, %d left", err, r.Len())
		}
		if len(AppendUint(nil, u)) != uintLen(u) {
			t.Fatalf("uint %d took %d bytes", u, len(AppendUint(nil, u)))
		}
	})
}

func uintLen(u uint64) int {
	switch {
	case u <= 0x7f:
		return 1
	case u <= math.MaxUint8:
		return 2
	case u <= math.MaxUint16:
		return 3
	case u <= math.MaxUint32:
		return 5
	}
	return 9
}

// TestReaderDoesNotAllocate: reading, hostile claims included, allocates
// nothing on the success path.
func TestReaderDoesNotAllocate(t *testing.T) {
	msg, _ := (&MergeRequest{Partition: 3, Hash: 1 << 40, Key: []byte("key"), HintFor: "n2", Set: make([]byte, 300)}).Append(nil)
	allocs := testing.AllocsPerRun(100, func() {
		r := NewReader(msg)
		r.Array(6)
		r.Uint(math.MaxUint32)
		r.Uint(math.MaxUint64)
		r.Bytes(MaxKey)
		r.Bytes(MaxNodeID)
		r.Bytes(MaxSet)
		r.Bool()
		if r.End() != nil {
			panic("decode failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per read", allocs)
	}
}

// FuzzReader reads arbitrary bytes with every method in turn: no panic,
// nothing returned longer than the input, and an error wraps ErrMalformed.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x93, 0xcc, 0x80, 0xa1, 'x', 0xc4, 0x01, 0xff})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		for start := range 8 {
			r := NewReader(b)
			for k := start; r.Err() == nil && r.Len() > 0; k++ {
				var got []byte
				switch k % 8 {
				case 0:
					r.Uint(math.MaxUint64)
				case 1:
					r.Int()
				case 2:
					r.Bool()
				case 3:
					r.ArrayLen(math.MaxInt)
				case 4:
					got = r.Bytes(math.MaxInt)
				case 5:
					got = r.Str(16)
				case 6:
					r.IsNil()
					got = r.Bin(1 << 20)
				case 7:
					r.Byte()
				}
				if len(got) > len(b) {
					t.Fatalf("returned %d bytes from %d", len(got), len(b))
				}
			}
			if err := r.Err(); err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		}
	})
}
