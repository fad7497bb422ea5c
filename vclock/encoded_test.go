package vclock

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// checkEncoded holds CheckSet of b to DecodeSet of b: the same verdict
// and sentinel, the same set, and, when AsIs, bytes that are the set's
// encoding and a summary that is the set's. A canonical encoding of a
// context CheckSet summarizes must be AsIs.
func checkEncoded(t interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
}, b []byte) {
	t.Helper()
	s, err := DecodeSet(b)
	e, cerr := CheckSet(b)
	if (err == nil) != (cerr == nil) {
		t.Fatalf("CheckSet error %v, DecodeSet error %v", cerr, err)
	}
	if err != nil {
		for _, sentinel := range []error{ErrMalformed, ErrTooLarge, ErrVersion} {
			if errors.Is(err, sentinel) != errors.Is(cerr, sentinel) {
				t.Fatalf("CheckSet error %v, DecodeSet error %v", cerr, err)
			}
		}
		return
	}
	if got, err := e.Decode(); err != nil || !got.Equal(s) || !bytes.Equal(e.Bytes(), b) {
		t.Fatalf("Decode = %v, %v; DecodeSet = %v", got, err, s)
	}
	enc, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	canonical := bytes.Equal(enc, b)
	if e.AsIs() != (canonical && len(s.Context) <= checkActors) {
		t.Fatalf("AsIs = %v; canonical %v, %d actors", e.AsIs(), canonical, len(s.Context))
	}
	if !e.AsIs() {
		return
	}
	at, ok := s.DeadAt()
	gotAt, gotOK := e.DeadAt()
	var values int64
	for _, sib := range s.Siblings {
		values += int64(len(sib.Value.Data) + len(sib.Value.ContentType))
	}
	if e.Siblings() != len(s.Siblings) || e.ValueBytes() != values || e.IsDeleted() != s.IsDeleted() || gotAt != at || gotOK != ok {
		t.Fatalf("summary %d siblings, %d bytes, deleted %v, dead %d %v; set %d, %d, %v, %d %v",
			e.Siblings(), e.ValueBytes(), e.IsDeleted(), gotAt, gotOK, len(s.Siblings), values, s.IsDeleted(), at, ok)
	}
	for _, sib := range s.Siblings {
		for _, now := range []int64{sib.Value.Expires - 1, sib.Value.Expires, sib.Value.Expires + 1} {
			if _, changed := Expire(s, now); e.ExpiresBy(now) != changed {
				t.Fatalf("ExpiresBy(%d) = %v, Expire changes: %v", now, e.ExpiresBy(now), changed)
			}
		}
	}
}

func FuzzCheckSet(f *testing.F) {
	addSeedSets(f)
	for _, b := range nonCanonical() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkEncoded(t, b) })
}

// nonCanonical returns valid encodings that are not canonical: each
// decodes, and encoding the result gives other bytes.
func nonCanonical() [][]byte {
	return [][]byte{
		hexSet("dc0002", "91", "93a1610102", "90"),                        // array16 header of the set
		hexSet("92", "dc0001", "93a1610102", "90"),                        // array16 context
		hexSet("92", "91", "93d90161"+"0102", "90"),                       // str8 node id of one byte
		hexSet("92", "91", "93a161"+"cc01"+"02", "90"),                    // uint8 epoch of 1
		hexSet("92", "91", "93a161"+"d1012c"+"02", "90"),                  // int16 epoch of 300
		hexSet("92", "91", "93a16101"+"cd0002", "90"),                     // uint16 counter of 2
		hexSet("92", "91", "93a1610102", "dc0001", "960001c40178a0c200"),  // array16 siblings
		hexSet("92", "91", "93a1610102", "91", "960001c0a0c200"),          // nil data
		hexSet("92", "91", "93a1610102", "91", "960001c50001"+"78a0c200"), // bin16 data
		hexSet("92", "91", "93a1610102", "91", "960001c40178d900c200"),    // str8 content type
		hexSet("92", "91", "93a1610102", "91", "960001c40178a0c2d000"),    // int8 timestamp 0
		hexSet("92", "91", "93a1610102", "91", "960001c40178a0c2d1ffff"),  // int16 timestamp -1
		hexSet("92", "91", "93a1610102", "91", "970001c40178a0c200d005"),  // int8 deadline 5
	}
}

// TestCheckSetNonCanonical checks that CheckSet tells valid but
// non-canonical encodings (a peer's own msgpack) from canonical ones:
// a record must never hold bytes that differ from what the replica
// would have encoded.
func TestCheckSetNonCanonical(t *testing.T) {
	for _, b := range nonCanonical() {
		e, err := CheckSet(b)
		if err != nil || e.AsIs() {
			t.Errorf("%x: AsIs %v, %v; want a non-canonical set", b, e.AsIs(), err)
		}
		checkEncoded(t, b)
	}
	for _, s := range seedSets() {
		b, _ := s.MarshalBinary()
		checkEncoded(t, b)
	}
}

// TestCheckSetProperty holds CheckSet to DecodeSet on random sets, and on
// them cut short or with a byte changed.
func TestCheckSetProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSet(t, "set")
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		checkEncoded(t, b)
		i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
		checkEncoded(t, b[:i])
		bad := bytes.Clone(b)
		bad[i] = rapid.Byte().Draw(t, "byte")
		checkEncoded(t, bad)
	})
}

// TestEncodedSupersedes holds Encoded.Supersedes to Supersedes, on sets
// written over a stored one (outright or not) and unrelated ones.
func TestEncodedSupersedes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cur := drawSet(t, "cur")
		in := drawSet(t, "in")
		if rapid.Bool().Draw(t, "derived") {
			ctx := cur.Context
			if rapid.Bool().Draw(t, "partial") && len(ctx) > 0 {
				ctx = ctx[:rapid.IntRange(0, len(ctx)-1).Draw(t, "keep")]
			}
			nodes := []string{"n1", "n2", "a", "zz"}
			a := Actor{Node: rapid.SampledFrom(nodes).Draw(t, "node"), Epoch: rapid.Uint64Range(0, 3).Draw(t, "epoch")}
			in, _ = Update(cur, ctx, a, Value{Data: []byte("v"), Timestamp: 1})
			if rapid.Bool().Draw(t, "again") {
				b := Actor{Node: rapid.SampledFrom(nodes).Draw(t, "node2"), Epoch: 1}
				in, _ = Update(in, nil, b, Value{Deleted: true})
			}
		}
		ib, _ := in.MarshalBinary()
		cb, _ := cur.MarshalBinary()
		e, err := CheckSet(ib)
		if err != nil || !e.AsIs() {
			t.Fatalf("CheckSet = %v, %v", e.AsIs(), err)
		}
		want, werr := Supersedes(in, cb)
		got, gerr := e.Supersedes(cb)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("Encoded.Supersedes = %v, %v; Supersedes = %v, %v", got, gerr, want, werr)
		}
		if got && !Sync(cur, in).Equal(in) {
			t.Fatalf("outright, but Sync = %v", Sync(cur, in))
		}
	})
}

func TestCheckSetAllocs(t *testing.T) {
	s := seedSets()[4]
	b, _ := s.MarshalBinary()
	cur, _ := seedSets()[1].MarshalBinary()
	var e Encoded
	if n := testing.AllocsPerRun(100, func() { e, _ = CheckSet(b) }); n != 0 {
		t.Errorf("CheckSet allocates %.0f times, want 0", n)
	}
	if !e.AsIs() {
		t.Fatal("seed set not AsIs")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = e.Supersedes(cur) }); n != 0 {
		t.Errorf("Encoded.Supersedes allocates %.0f times, want 0", n)
	}
}
