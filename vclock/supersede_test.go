package vclock

import (
	"errors"
	"testing"
)

// TestSupersedes checks the fast merge decision on the cases a replica
// meets: a newer write over its copy (outright), a stale or repeated
// set, a concurrent write, and a copy whose encoding is damaged.
func TestSupersedes(t *testing.T) {
	n1, n2 := Actor{Node: "n1", Epoch: 1}, Actor{Node: "n2", Epoch: 3}
	v := func(s string) Value { return Value{Data: []byte(s), Timestamp: 1} }
	s1, _ := Update(Set{}, nil, n1, v("a"))     // n1:1
	s2, _ := Update(s1, s1.Context, n1, v("b")) // n1:2 over n1:1
	c2, _ := Update(s1, nil, n2, v("c"))        // n2:1 beside n1:1 (blind)
	s3, _ := Update(c2, c2.Context, n1, v("d")) // n1:2 over both
	x2, _ := Update(s1, s1.Context, n2, v("x")) // n2:1 over n1:1, concurrent with s2
	tomb, _ := Update(s2, s2.Context, n2, Value{Deleted: true, Timestamp: 2})
	enc := func(s Set) []byte {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		in, cur  Set
		outright bool
	}{
		{"newer write over the copy", s2, s1, true},
		{"write over two siblings", s3, c2, true},
		{"a tombstone over a value", tomb, s2, true},
		{"the same set again", s2, s2, false},
		{"a stale set", s1, s2, false},
		{"a concurrent write", x2, s2, false},
		{"a blind write beside the copy", c2, s2, false},
		{"a set with no sibling", Set{Context: s2.Context}, s1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Supersedes(tc.in, enc(tc.cur))
			if err != nil || got != tc.outright {
				t.Fatalf("Supersedes = %v, %v; want %v", got, err, tc.outright)
			}
			if got && !Sync(tc.cur, tc.in).Equal(tc.in) {
				t.Fatalf("said outright, but Sync = %v", Sync(tc.cur, tc.in))
			}
		})
	}
	for _, bad := range [][]byte{nil, {0x7f}, enc(s2)[:3], {setFormatV1, 0x92, 0x92, 0x93}} {
		if _, err := Supersedes(s2, bad); err == nil {
			t.Errorf("Supersedes(%x) = nil error", bad)
		}
	}
	if _, err := Supersedes(s2, []byte{0x7f, 0x92}); !errors.Is(err, ErrVersion) {
		t.Errorf("unknown format: %v, want ErrVersion", err)
	}
	e := enc(c2)
	if n := testing.AllocsPerRun(100, func() { _, _ = Supersedes(s3, e) }); n != 0 {
		t.Errorf("Supersedes allocates %.0f times, want 0", n)
	}
}

// TestAppendContextOnly checks the context-only answer on the edges the
// property test (checkAlgebra) does not reach: the empty set, a set with
// deadlines, and encodings that do not parse, which leave b unchanged.
func TestAppendContextOnly(t *testing.T) {
	n1 := Actor{Node: "n1", Epoch: 1}
	s, _ := Update(Set{}, nil, n1, Value{Data: []byte("a"), Timestamp: 1, Expires: 5})
	s, _ = Update(s, nil, Actor{Node: "n2", Epoch: 2}, Value{Data: []byte("b"), Timestamp: 2})
	for _, in := range []Set{{}, s} {
		enc, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		co, err := AppendContextOnly(nil, enc)
		if err != nil {
			t.Fatalf("%v: %v", in, err)
		}
		if got, err := DecodeSet(co); err != nil || !got.Equal(Set{Context: in.Context}) || len(got.Siblings) != 0 {
			t.Fatalf("%v: context-only decodes to %v, %v", in, got, err)
		}
	}
	enc, _ := s.MarshalBinary()
	for _, bad := range [][]byte{nil, {2}, enc[:4], {setFormatV1, 0x92, 0x9f}} {
		if b, err := AppendContextOnly([]byte("x"), bad); err == nil || string(b) != "x" {
			t.Errorf("AppendContextOnly(%x) = %q, %v; want an error and b unchanged", bad, b, err)
		}
	}
}
