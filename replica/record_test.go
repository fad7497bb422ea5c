package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/vclock"
)

func testSet(t testing.TB, vals ...string) vclock.Set {
	var s vclock.Set
	for i, v := range vals {
		val := vclock.Value{Data: []byte(v)}
		if v == "" {
			val = vclock.Value{Deleted: true}
		}
		s, _ = vclock.Update(s, s.Context, vclock.Actor{Node: "n1", Epoch: uint64(i + 1)}, val)
	}
	return s
}

func TestRecordEnvelope(t *testing.T) {
	live := testSet(t, "a")
	dead := testSet(t, "a", "") // a write of v, then a delete that saw it
	v1 := func(mint uint64, s vclock.Set) []byte {
		b := binary.AppendUvarint([]byte{formatV1}, mint)
		b, err := s.AppendBinary(b)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v2 := func(mint uint64, s vclock.Set) []byte {
		b, err := EncodeRecord(mint, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	confirmed, err := WithTomb(v2(7, dead), TombConfirmed(1234567))
	if err != nil {
		t.Fatal(err)
	}
	fromV1, err := WithTomb(v1(9, dead), TombConfirmed(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		rec      []byte
		mint     uint64
		tomb     uint64
		set      vclock.Set
		wantFail bool
	}{
		{name: "v2 live", rec: v2(3, live), mint: 3, tomb: TombLive, set: live},
		{name: "v2 tombstones unconfirmed", rec: v2(3, dead), mint: 3, tomb: TombUnconfirmed, set: dead},
		{name: "v2 empty set counts as tombstones", rec: v2(0, vclock.Set{}), tomb: TombUnconfirmed},
		{name: "v2 confirmed", rec: confirmed, mint: 7, tomb: 1234567, set: dead},
		{name: "v1 read as unknown", rec: v1(5, live), mint: 5, tomb: TombUnknown, set: live},
		{name: "v1 rewritten confirmed, floor 2", rec: fromV1, mint: 9, tomb: 2, set: dead},
		{name: "empty", rec: nil, wantFail: true},
		{name: "one byte", rec: []byte{2}, wantFail: true},
		{name: "unknown format", rec: []byte{4, 0, 0, 1}, wantFail: true},
		{name: "v3 zero deadline", rec: []byte{3, 0, 0, 0, 1}, wantFail: true},
		{name: "v3 truncated deadline", rec: []byte{3, 0, 0, 0x80}, wantFail: true},
		{name: "v3 deadline past int64", rec: binary.AppendUvarint([]byte{3, 0, 0}, 1<<63), wantFail: true},
		{name: "truncated mint", rec: []byte{2, 0x80}, wantFail: true},
		{name: "truncated tomb", rec: []byte{2, 1, 0x80}, wantFail: true},
		{name: "tomb is the reserved unknown", rec: binary.AppendUvarint([]byte{2, 1}, TombUnknown), wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader(tc.rec)
			if tc.wantFail {
				if err == nil || !errors.Is(err, ErrMalformedRecord) {
					t.Fatalf("parse = %+v, %v; want ErrMalformedRecord", h, err)
				}
				if _, _, err := DecodeRecord(tc.rec); err == nil {
					t.Fatal("DecodeRecord accepted it")
				}
				if SetBytes(tc.rec) != nil {
					t.Fatal("SetBytes of a bad record is not nil")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Mint != tc.mint || h.Tomb != tc.tomb {
				t.Fatalf("header mint %d tomb %d; want %d %d", h.Mint, h.Tomb, tc.mint, tc.tomb)
			}
			mint, s, err := DecodeRecord(tc.rec)
			if err != nil || mint != tc.mint || !s.Equal(tc.set) {
				t.Fatalf("DecodeRecord = %d, %v, %v", mint, s, err)
			}
			if got := len(tc.rec) - len(SetBytes(tc.rec)); got != h.SetOff {
				t.Fatalf("SetBytes says the set starts at %d, header %d", got, h.SetOff)
			}
		})
	}
}

// The trees hash stored bytes at start-up and decoded sets on writes: both
// must give the same digest for every set.
func TestSetBytesDigestMatchesSet(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s vclock.Set
		for i := range rapid.IntRange(0, 6).Draw(t, "writes") {
			node := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "node")
			var ctx vclock.Vector
			if rapid.Bool().Draw(t, "seen") {
				ctx = s.Context
			}
			val := vclock.Value{Data: []byte(rapid.String().Draw(t, "v")), Deleted: rapid.Bool().Draw(t, "del")}
			s, _ = vclock.Update(s, ctx, vclock.Actor{Node: node, Epoch: uint64(i%2 + 1)}, val)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if SetBytesDigest(b) != s.Digest() {
			t.Fatalf("digest of the bytes %x, of the set %x", SetBytesDigest(b), s.Digest())
		}
		rec, err := EncodeRecord(42, s)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(rec)
		if err != nil || !bytes.Equal(rec[h.SetOff:], b) {
			t.Fatalf("record's set bytes differ from the set's encoding (%v)", err)
		}
		if want := tombOf(s); h.Tomb != want {
			t.Fatalf("tomb %d, want %d for deleted=%v", h.Tomb, want, s.IsDeleted())
		}
	})
}

// FuzzParseRecordHeader: records come from disk. Parsing never panics, and
// a record that parses keeps its header and set bytes through WithTomb.
func FuzzParseRecordHeader(f *testing.F) {
	for _, s := range []vclock.Set{{}, testSet(f, "a"), testSet(f, "a", "")} {
		b, _ := EncodeRecord(3, s)
		f.Add(b)
		c, _ := WithTomb(b, TombConfirmed(99))
		f.Add(c)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if h.SetOff > len(b) || h.SetOff < 2 {
			t.Fatalf("set offset %d of %d bytes", h.SetOff, len(b))
		}
		_, _, _ = DecodeRecord(b) // must not panic
		c, err := WithTomb(b, TombConfirmed(5))
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ParseHeader(c)
		if err != nil || h2.Mint != h.Mint || h2.Tomb != 5 || !bytes.Equal(c[h2.SetOff:], b[h.SetOff:]) {
			t.Fatalf("WithTomb changed more than the tomb: %+v %v", h2, err)
		}
	})
}
