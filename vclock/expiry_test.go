package vclock

import (
	"encoding/hex"
	"errors"
	"testing"
)

// A sibling with a deadline carries a seventh field; the six-field
// encoding of a sibling without one is pinned by TestSetEncodingGolden.
func TestExpiresEncoding(t *testing.T) {
	s := Set{
		Context:  vec(ent("n1", 1, 1)),
		Siblings: []Sibling{sib("n1", 1, 1, Value{Data: []byte("v"), Timestamp: 5, Expires: 9})},
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "01" + "92" + "91" + "93a26e310101" + "91" + "970001c40176a0c20509"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding:\n got %s\nwant %s", got, want)
	}
	d, err := DecodeSet(b)
	if err != nil || !d.Equal(s) || d.Siblings[0].Value.Expires != 9 {
		t.Fatalf("DecodeSet = %+v, %v", d, err)
	}
	if d.Digest() == (Set{Context: s.Context, Siblings: []Sibling{sib("n1", 1, 1, Value{Data: []byte("v"), Timestamp: 5})}}).Digest() {
		t.Fatal("the deadline does not change the digest: replicas that disagree on it would look equal")
	}
}

func TestExpiresEncodingRefusesNonCanonical(t *testing.T) {
	for name, h := range map[string]string{
		"zero deadline in seven fields": "01" + "92" + "91" + "93a26e310101" + "91" + "970001c40176a0c20500",
		"negative deadline":             "01" + "92" + "91" + "93a26e310101" + "91" + "970001c40176a0c205ff",
		"eight fields":                  "01" + "92" + "91" + "93a26e310101" + "91" + "980001c40176a0c2050909",
		"five fields":                   "01" + "92" + "91" + "93a26e310101" + "91" + "950001c40176a0c2",
	} {
		b, _ := hex.DecodeString(h)
		if _, err := DecodeSet(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	bad := Set{Context: vec(ent("n1", 1, 1)), Siblings: []Sibling{sib("n1", 1, 1, Value{Expires: -1})}}
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("negative deadline encoded: %v", err)
	}
	if err := bad.Validate(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Validate = %v", err)
	}
}

func TestExpireAndLiveAt(t *testing.T) {
	a, b := act("a", 1), act("b", 1)
	s, _ := Update(Set{}, nil, a, Value{Data: []byte("short"), Expires: 10})
	s, _ = Update(s, nil, b, Value{Data: []byte("long"), Expires: 20})
	tests := []struct {
		now       int64
		live      int
		deleted   bool
		converted int
	}{
		{now: 9, live: 2},
		{now: 10, live: 1, converted: 1}, // the deadline itself is expired
		{now: 19, live: 1, converted: 1},
		{now: 20, live: 0, deleted: true, converted: 2},
	}
	for _, tc := range tests {
		if got := len(s.LiveAt(tc.now)); got != tc.live {
			t.Errorf("now=%d: %d live, want %d", tc.now, got, tc.live)
		}
		if got := s.IsDeletedAt(tc.now); got != tc.deleted {
			t.Errorf("now=%d: IsDeletedAt = %v", tc.now, got)
		}
		e, changed := Expire(s, tc.now)
		if changed != (tc.converted > 0) {
			t.Errorf("now=%d: changed = %v", tc.now, changed)
		}
		tombs := 0
		for _, sb := range e.Siblings {
			if sb.Value.Deleted {
				tombs++
				if sb.Value.Data != nil || sb.Value.Expires == 0 {
					t.Errorf("now=%d: tombstone keeps data or loses its deadline: %+v", tc.now, sb.Value)
				}
			}
		}
		if tombs != tc.converted || !e.Context.Equal(s.Context) || len(e.Siblings) != 2 {
			t.Errorf("now=%d: Expire = %+v", tc.now, e)
		}
		if len(e.Live()) != tc.live {
			t.Errorf("now=%d: the expired set has %d live siblings, want %d", tc.now, len(e.Live()), tc.live)
		}
	}
	if s.Siblings[0].Value.Deleted {
		t.Fatal("Expire modified its argument")
	}
	if at, ok := s.DeadAt(); !ok || at != 20 {
		t.Fatalf("DeadAt = %d, %v", at, ok)
	}
	p, _ := Update(s, nil, a, val("forever"))
	if _, ok := p.DeadAt(); ok {
		t.Fatal("a set with a value that never expires has a DeadAt")
	}
	if _, ok := (Set{}).DeadAt(); ok {
		t.Fatal("the empty set has a DeadAt")
	}
}

// The tombstone an expired value turns into wins against the value in
// Sync from either side, and Sync stays commutative, associative and
// idempotent over the three forms of a set (value, partly and wholly
// expired).
func TestSyncPrefersExpiredForm(t *testing.T) {
	a, b := act("a", 1), act("b", 1)
	s, _ := Update(Set{}, nil, a, Value{Data: []byte("x"), Expires: 10})
	s, _ = Update(s, nil, b, Value{Data: []byte("y"), Expires: 20})
	e1, _ := Expire(s, 10)
	e2, _ := Expire(s, 20)
	forms := []Set{s, e1, e2}
	for _, x := range forms {
		for _, y := range forms {
			if !Sync(x, y).Equal(Sync(y, x)) {
				t.Fatalf("Sync not commutative:\n%+v\n%+v", x, y)
			}
			for _, z := range forms {
				if !Sync(Sync(x, y), z).Equal(Sync(x, Sync(y, z))) {
					t.Fatal("Sync not associative")
				}
			}
		}
		if !Sync(x, x).Equal(x) {
			t.Fatal("Sync not idempotent")
		}
	}
	if got := Sync(s, e1); !got.Equal(e1) {
		t.Fatalf("Sync(value, expired) = %+v, want the expired form", got)
	}
	if got := Sync(e2, s); !got.Equal(e2) {
		t.Fatalf("Sync(expired, value) = %+v, want the expired form", got)
	}
}
