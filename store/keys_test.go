package store

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestRecordKeyLayout(t *testing.T) {
	tests := []struct {
		name string
		k    Key
		want []byte
	}{
		{"zero", Key{}, []byte{'r', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"big-endian", Key{Partition: 0x01020304, Hash: 0x05060708090a0b0c, Key: []byte("k")},
			[]byte{'r', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 'k'}},
		{"max", Key{Partition: math.MaxUint32, Hash: math.MaxUint64, Key: []byte{0xff}},
			[]byte{'r', 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendRecordKey(nil, tc.k)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("appendRecordKey = %v, want %v", got, tc.want)
			}
			back, err := parseRecordKey(got)
			if err != nil || back.Partition != tc.k.Partition || back.Hash != tc.k.Hash || !bytes.Equal(back.Key, tc.k.Key) {
				t.Fatalf("parseRecordKey = %+v, %v", back, err)
			}
			if !bytes.HasPrefix(got, partitionPrefix(tc.k.Partition)) {
				t.Fatalf("record key %v lacks its partition prefix", got)
			}
		})
	}
}

// TestRecordKeyOrder: byte order of record keys is (partition, hash, key)
// order, which Scan and the Merkle bucket ranges rely on.
func TestRecordKeyOrder(t *testing.T) {
	k := func(p uint32, h uint64, key []byte) Key { return Key{Partition: p, Hash: h, Key: key} }
	ordered := []Key{
		k(0, 0, nil), k(0, 0, []byte{0}), k(0, 0, []byte{1}), k(0, 1, nil), k(0, 255, nil), k(0, 256, nil),
		k(0, math.MaxUint64, []byte("zz")), k(1, 0, nil), k(256, 0, nil), k(math.MaxUint32, math.MaxUint64, []byte{0xff}),
	}
	for i := 1; i < len(ordered); i++ {
		a, b := appendRecordKey(nil, ordered[i-1]), appendRecordKey(nil, ordered[i])
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("%+v does not sort before %+v", ordered[i-1], ordered[i])
		}
	}
}

func TestParseMalformedKeys(t *testing.T) {
	long := append([]byte{'r', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, MaxKeyLen+1)...)
	for _, b := range [][]byte{nil, {'r'}, {'r', 0, 0, 0, 1}, {'r', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {'h', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, long} {
		if _, err := parseRecordKey(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseRecordKey(%.20v) err = %v, want ErrCorrupt", b, err)
		}
	}
	for _, b := range [][]byte{nil, {'h'}, {'h', 0}, {'h', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {'h', 1, 'a'},
		{'h', 2, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {'h', 200, 'a'}, {'r', 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := parseHintKey(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseHintKey(%v) err = %v, want ErrCorrupt", b, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, {1, 0, 0, 0, 0, 0, 0, 0}, {2, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := parseHintValue(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseHintValue(%v) err = %v, want ErrCorrupt", b, err)
		}
	}
}

func TestHintKeyLayout(t *testing.T) {
	k := Key{Partition: 7, Hash: 9, Key: []byte("key")}
	got := appendHintKey(nil, "n1", k)
	want := []byte{'h', 2, 'n', '1', 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9, 'k', 'e', 'y'}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendHintKey = %v, want %v", got, want)
	}
	target, back, err := parseHintKey(got)
	if err != nil || string(target) != "n1" || back.Partition != 7 || back.Hash != 9 || string(back.Key) != "key" {
		t.Fatalf("parseHintKey = %q %+v %v", target, back, err)
	}
	// A target that is a byte prefix of another has its own key prefix.
	if bytes.HasPrefix(appendHintKey(nil, "ab", k), appendHintPrefix(nil, "a")) {
		t.Fatal("hint space of \"a\" contains the hints of \"ab\"")
	}
	maxTarget := strings.Repeat("x", MaxTargetLen)
	if tg, _, err := parseHintKey(appendHintKey(nil, maxTarget, k)); err != nil || string(tg) != maxTarget {
		t.Fatalf("longest target: %v", err)
	}
}

func TestHintValueLayout(t *testing.T) {
	v := appendHintValue(nil, -5, []byte("set"))
	want := []byte{1, 255, 255, 255, 255, 255, 255, 255, 251, 's', 'e', 't'}
	if !bytes.Equal(v, want) {
		t.Fatalf("appendHintValue = %v, want %v", v, want)
	}
	created, val, err := parseHintValue(v)
	if err != nil || created != -5 || string(val) != "set" {
		t.Fatalf("parseHintValue = %d %q %v", created, val, err)
	}
}

// The fuzz targets cover the parsers of bytes read back from disk: they
// must never panic, must fail with ErrCorrupt, and must round-trip what
// they accept: decode(encode(decode(b))) == decode(b).

// parsed reports whether a fuzz input parsed, failing t on an error other
// than ErrCorrupt.
func parsed(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v is not ErrCorrupt", err)
	}
	return err == nil
}

// encodesBack fails t unless enc, the encoding of what b parsed to, is b;
// it returns enc.
func encodesBack(t *testing.T, b, enc []byte) []byte {
	t.Helper()
	if !bytes.Equal(enc, b) {
		t.Fatalf("encode(decode(%v)) = %v", b, enc)
	}
	return enc
}

func FuzzParseRecordKey(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{'r', 0, 0, 0, 1})
	f.Add(appendRecordKey(nil, Key{Partition: 3, Hash: 99, Key: []byte("key")}))
	f.Add(appendRecordKey(nil, Key{Partition: math.MaxUint32, Hash: math.MaxUint64}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseRecordKey(b)
		if !parsed(t, err) {
			return
		}
		enc := encodesBack(t, b, appendRecordKey(nil, k))
		k2, err := parseRecordKey(enc)
		if err != nil || k2.Partition != k.Partition || k2.Hash != k.Hash || !bytes.Equal(k2.Key, k.Key) {
			t.Fatalf("decode(encode(decode(b))) = %+v, %v; want %+v", k2, err, k)
		}
	})
}

func FuzzParseHintKey(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{'h', 0})
	f.Add([]byte{'h', 255, 'a'})
	f.Add(appendHintKey(nil, "node-1", Key{Partition: 3, Hash: 99, Key: []byte("key")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		target, k, err := parseHintKey(b)
		if !parsed(t, err) {
			return
		}
		if err := validateTarget(string(target)); err != nil {
			t.Fatalf("parsed an invalid target %q: %v", target, err)
		}
		enc := encodesBack(t, b, appendHintKey(nil, string(target), k))
		t2, k2, err := parseHintKey(enc)
		if err != nil || !bytes.Equal(t2, target) || k2.Partition != k.Partition || k2.Hash != k.Hash || !bytes.Equal(k2.Key, k.Key) {
			t.Fatalf("decode(encode(decode(b))) differs: %q %+v %v", t2, k2, err)
		}
	})
}

func FuzzParseHintValue(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(appendHintValue(nil, 1700000000e9, []byte("sibling set")))
	f.Add(appendHintValue(nil, math.MinInt64, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		created, val, err := parseHintValue(b)
		if !parsed(t, err) {
			return
		}
		enc := encodesBack(t, b, appendHintValue(nil, created, val))
		c2, v2, err := parseHintValue(enc)
		if err != nil || c2 != created || !bytes.Equal(v2, val) {
			t.Fatalf("decode(encode(decode(b))) = %d %q %v", c2, v2, err)
		}
	})
}
