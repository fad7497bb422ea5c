package memberauth

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzVerify: a record decoded from any gossip bytes is verified without
// panicking; whatever is accepted is within the bounds, and nothing but
// n1's key can change n1's record.
func FuzzVerify(f *testing.F) {
	n1, n2 := identity(f, "n1", 1), identity(f, "n2", 2)
	r1 := sign(f, n1, Record{ID: "n1", RPC: "a:1", Version: 5, Incarnation: 7})
	pins := state{"n1": r1, "n2": sign(f, n2, Record{ID: "n2", Version: 1})}
	rm, _ := n2.SignRemoval(r1, "ops", true)
	for _, r := range []Record{r1, rm, pins["n2"], {ID: "n1"}} {
		b, _ := msgpack.Marshal(&r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if msgpack.Unmarshal(b, &r) != nil {
			return
		}
		err := Verify(r, pins.lookup, Policy{})
		if err != nil {
			return
		}
		if checkBounds(r) != nil {
			t.Fatal("accepted out of bounds")
		}
		if r.ID == "n1" && r.Signer == "" && r.Key != n1.Public() {
			t.Fatalf("n1's record accepted under another key: %+v", r)
		}
		if r.ID == "n1" && r.Signer != "" && (r.Signer != "n2" || r.Key != r1.Key) {
			t.Fatalf("removal of n1 accepted from %q", r.Signer)
		}
		Filter(map[string]Record{r.ID: r}, pins.lookup, Policy{RekeyNewIncarnation: true})
	})
}

// FuzzVerifyUnsigned: with AcceptUnsigned, no record replaces a signed
// pin without its key, and a removal is still only a signed one.
func FuzzVerifyUnsigned(f *testing.F) {
	n1 := identity(f, "n1", 1)
	r1 := sign(f, n1, Record{ID: "n1", RPC: "a:1", Version: 5, Incarnation: 7})
	pins := state{"n1": r1, "old": {ID: "old", RPC: "o:1", Version: 2}}
	for _, r := range []Record{r1, {ID: "n1", RPC: "b:1", Version: 9}, {ID: "old", Version: 3}, {ID: "new", Left: true, Signer: "n1"}} {
		b, _ := msgpack.Marshal(&r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if msgpack.Unmarshal(b, &r) != nil || Verify(r, pins.lookup, Policy{AcceptUnsigned: true}) != nil {
			return
		}
		if checkFields(r) != nil {
			t.Fatal("accepted out of bounds")
		}
		if r.ID == "n1" && r.Signer == "" && r.Key != n1.Public() {
			t.Fatalf("n1's signed record replaced under another key, or none: %+v", r)
		}
		if r.Signer != "" && r.Key.IsZero() {
			t.Fatalf("an unsigned removal accepted: %+v", r)
		}
	})
}
