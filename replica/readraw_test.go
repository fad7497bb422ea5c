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
