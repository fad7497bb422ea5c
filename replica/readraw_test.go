package replica

import (
	"bytes"
	"testing"

	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
)

// ReadLocalRaw answers the encoding of the set ReadLocal gives, record or
// hint, as a copy that stays valid (and unchanged) after later writes;
// nothing held: nil.
func TestReadLocalRawIsReadLocalEncoded(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	ctx := t.Context()
	if b, err := f.rep.ReadLocalRaw("", key("k")); b != nil || err != nil {
		t.Fatalf("ReadLocalRaw of an absent key: %x, %v; want nil, nil", b, err)
	}
	if _, err := f.rep.MergeSet(ctx, "", key("k"), testSet(t, "a", "b"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rep.MergeSet(ctx, "n3", key("k"), testSet(t, "h"), false); err != nil {
		t.Fatal(err)
	}
	for _, hintFor := range []string{"", "n3", "n4"} {
		want, _, err := f.rep.ReadLocal(hintFor, key("k"))
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := want.MarshalBinary()
		b, err := f.rep.ReadLocalRaw(hintFor, key("k"))
		if err != nil || !bytes.Equal(b, enc) {
			t.Fatalf("ReadLocalRaw(%q) = %x, %v; want %x, the encoding of %v", hintFor, b, err, enc, want)
		}
		kept := bytes.Clone(b)
		blind, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n2", Epoch: 7}, val(hintFor+"x"))
		if _, err := f.rep.MergeSet(ctx, "", key("k"), blind, false); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, kept) {
			t.Fatalf("ReadLocalRaw(%q)'s bytes changed with a later write", hintFor)
		}
	}
}

// BenchmarkReadLocal is the coordinator's read of its own copy, over
// 1,000 keys holding one 100-byte sibling each: decoded (ReadLocal) or
// copied out as bytes (ReadLocalRaw).
func BenchmarkReadLocal(b *testing.B) {
	r, keys := benchReplica(b, "n1", 1000)
	for i, k := range keys {
		s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n2", Epoch: 1}, vclock.Value{Data: make([]byte, 100), Timestamp: int64(i + 1)})
		if _, err := r.MergeSet(b.Context(), "", k, s, false); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if s, found, err := r.ReadLocal("", keys[i%len(keys)]); err != nil || !found || len(s.Siblings) != 1 {
				b.Fatal(s, found, err)
			}
			i++
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if set, err := r.ReadLocalRaw("", keys[i%len(keys)]); err != nil || len(set) == 0 {
				b.Fatal(set, err)
			}
			i++
		}
	})
}
