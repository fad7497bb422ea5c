package vclock

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// isSentinel reports whether err wraps one of the package's sentinels.
func isSentinel(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrVersion)
}

// seedSets are valid sets for the fuzz corpora.
func seedSets() []Set {
	a, b := act("n1", 1), act("n2", 3)
	s1, _ := Update(Set{}, nil, a, val("x"))
	s2, _ := Update(s1, nil, b, Value{Data: []byte("y"), ContentType: "application/json", Timestamp: -5})
	s3, _ := Update(s2, s1.Context, a, tomb())
	s4, _ := Update(s3, nil, b, Value{Data: []byte("z"), Timestamp: 7, Expires: 1 << 62})
	s5, _ := Expire(s4, 1<<62)
	return []Set{{}, s1, s2, s3, s4, s5, goldenSet, {Context: manyActors(20, 4, 300)}}
}

// addSeedSets adds seedSets' encodings, whole and cut in half, to f.
func addSeedSets(f *testing.F) {
	for _, s := range seedSets() {
		b, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
}

func FuzzDecodeSet(f *testing.F) {
	addSeedSets(f)
	for _, h := range []string{"", "01", "02929090", "0192ddffffffff90", "019291" + "93a1610101" + "91" + "960001c6ffffffff"} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSet(b)
		// DecodeSetOwned decodes the same bytes to the same set, or fails
		// the same way.
		owned, oerr := DecodeSetOwned(bytes.Clone(b))
		if (err == nil) != (oerr == nil) || !owned.Equal(s) {
			t.Fatalf("DecodeSetOwned = %v, %v; DecodeSet = %v, %v", owned, oerr, s, err)
		}
		if err != nil {
			if !isSentinel(err) || !s.Equal(Set{}) {
				t.Fatalf("DecodeSet error %v with set %v", err, s)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded set fails Validate: %v", err)
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded set does not encode: %v", err)
		}
		s2, err := DecodeSet(enc)
		if err != nil || !s2.Equal(s) {
			t.Fatalf("decode(encode(decode(b))) != decode(b): %v", err)
		}
		if enc2, _ := s2.MarshalBinary(); !bytes.Equal(enc, enc2) || s.Digest() != s2.Digest() {
			t.Fatalf("encoding is not canonical")
		}
		if !Sync(s, s).Equal(s) || !Sync(s, Set{}).Equal(s) {
			t.Fatalf("Sync of a decoded set with itself changed it")
		}
	})
}

func FuzzDecodeContext(f *testing.F) {
	for _, s := range seedSets() {
		tok := EncodeContext(s.Context)
		f.Add(tok)
		f.Add(tok + "A")
		if len(tok) > 2 {
			f.Add(tok[:len(tok)-2])
		}
	}
	for _, s := range []string{"", "A", "AQ", "====", "AZEA", "Ad3_____", "Ad0EAQ", strings.Repeat("_", 100), " AQ", "AQ\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		v, err := DecodeContext(tok)
		if err != nil {
			if !isSentinel(err) || v != nil {
				t.Fatalf("DecodeContext error %v with vector %v", err, v)
			}
			return
		}
		if err := v.validate(); err != nil {
			t.Fatalf("decoded vector not canonical: %v", err)
		}
		tok2 := EncodeContext(v)
		v2, err := DecodeContext(tok2)
		if err != nil || !v2.Equal(v) {
			t.Fatalf("decode(encode(decode(s))) != decode(s): %v", err)
		}
		if EncodeContext(v2) != tok2 {
			t.Fatalf("encoding is not canonical")
		}
		if !v.Merge(v).Equal(v) || v.Compare(v) != Equal {
			t.Fatalf("a decoded vector misbehaves")
		}
	})
}

func FuzzDecodeDot(f *testing.F) {
	for _, d := range []Dot{{act("n1", 1), 1}, {act("node-7.example", 1<<40), 1 << 50}} {
		tok := EncodeDot(d)
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
	}
	for _, s := range []string{"", "AQ", "AZOhYQEA", "AZOhYQEB_", "!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		d, err := DecodeDot(tok)
		if err != nil {
			if !isSentinel(err) || d != (Dot{}) {
				t.Fatalf("DecodeDot error %v with dot %v", err, d)
			}
			return
		}
		if !d.valid() {
			t.Fatalf("decoded an invalid dot %v", d)
		}
		tok2 := EncodeDot(d)
		d2, err := DecodeDot(tok2)
		if err != nil || d2 != d || EncodeDot(d2) != tok2 {
			t.Fatalf("decode(encode(decode(s))) != decode(s): %v %v", d2, err)
		}
	})
}
