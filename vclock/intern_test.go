package vclock

import (
	"fmt"
	"testing"
)

// TestInternTableIsBounded decodes contexts of more distinct node ids than
// the table holds: every decode is still exact, the table stops at
// maxInterned, and ids past it are decoded as copies, not table entries.
func TestInternTableIsBounded(t *testing.T) {
	for i := range maxInterned + 64 {
		want := Vector{{Actor: Actor{Node: fmt.Sprintf("intern-bound-%04d", i), Epoch: 1}, Counter: uint64(i + 1)}}
		got, err := DecodeContext(EncodeContext(want))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != want[0] {
			t.Fatalf("decoded %v, want %v", got, want)
		}
	}
	m := interned.Load()
	if m == nil || len(*m) > maxInterned {
		t.Fatalf("table holds %v ids, want at most %d", m, maxInterned)
	}
	if len(*m) < maxInterned {
		t.Fatalf("table holds %d ids after %d distinct ones, want it full (%d)", len(*m), maxInterned+64, maxInterned)
	}
	last := fmt.Sprintf("intern-bound-%04d", maxInterned+63)
	if _, ok := (*m)[last]; ok {
		t.Fatalf("%s is in the full table", last)
	}
	// A full table still serves the ids it has.
	first := (*m)
	for id := range first {
		v := Vector{{Actor: Actor{Node: id, Epoch: 2}, Counter: 7}}
		got, err := DecodeContext(EncodeContext(v))
		if err != nil || len(got) != 1 || got[0] != v[0] {
			t.Fatalf("decode of interned id %q: %v, %v", id, got, err)
		}
		break
	}
}
