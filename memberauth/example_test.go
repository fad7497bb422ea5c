package memberauth_test

import (
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/memberauth"
)

func Example() {
	n1, _ := memberauth.NewIdentity("n1", nil)
	n3, _ := memberauth.NewIdentity("n3", nil)
	rogue, _ := memberauth.NewIdentity("rogue", nil)

	// What n1 holds: n3's own record, signed by n3.
	rec, _ := n3.Sign(memberauth.Record{ID: "n3", RPC: "10.0.0.3:7100", Version: 4, Incarnation: 77})
	rogueRec, _ := rogue.Sign(memberauth.Record{ID: "rogue", RPC: "10.6.6.6:7100", Version: 1, Incarnation: 66})
	n1Rec, _ := n1.Sign(memberauth.Record{ID: "n1", RPC: "10.0.0.1:7100", Version: 2, Incarnation: 11})
	held := map[string]memberauth.Record{"n1": n1Rec, "n3": rec, "rogue": rogueRec}
	lookup := func(id string) (memberauth.Record, bool) { r, ok := held[id]; return r, ok }

	// n3 moves: accepted.
	moved := rec
	moved.RPC, moved.Version = "10.0.0.33:7100", memberauth.NextVersion(rec.Version)
	moved, _ = n3.Sign(moved)
	fmt.Println(memberauth.Verify(moved, lookup, memberauth.Policy{}))

	// A rogue member repoints n3 to itself. It cannot sign with n3's key,
	// and a record under its own key is not n3's: refused either way.
	hijack := moved
	hijack.RPC, hijack.Version = "10.6.6.6:7100", moved.Version+1000
	fmt.Println(memberauth.Verify(hijack, lookup, memberauth.Policy{}))
	hijack.Key = rogue.Public()
	fmt.Println(errors.Is(memberauth.Verify(hijack, lookup, memberauth.Policy{}), memberauth.ErrBadSignature))

	// An operator removes n3 through n1: accepted everywhere.
	rm, _ := n1.SignRemoval(rec, "ops", false)
	fmt.Println(memberauth.Verify(rm, lookup, memberauth.Policy{}), rm.Left, rm.Signer, rm.Principal)
	// Output:
	// <nil>
	// member record signature does not verify: n3's own record
	// true
	// <nil> true n1 ops
}
