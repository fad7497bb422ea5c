package memberauth

import (
	"crypto/ed25519"
	"fmt"
	"sort"
)

// Lookup returns the record a node holds for id (its pin).
type Lookup func(id string) (Record, bool)

// Policy holds the choices Verify leaves to the node.
type Policy struct {
	// RekeyNewIncarnation accepts a member's record signed by a new key
	// when its incarnation differs from the pinned record's, even though
	// the pinned incarnation never left: a member back on a new, empty
	// data directory (a replaced disk) rejoins without an operator's
	// remove. Set it only when gossip is authenticated by the cluster
	// secret (memberlist's encryption), so only holders of the secret can
	// use it. Without it such a member is refused until the old
	// incarnation is removed (`quorumkv remove --force ID`), as SSH refuses
	// a changed host key.
	RekeyNewIncarnation bool
	// AcceptUnsigned takes a member's own record without key and
	// signature, as the release before signed records gossips them, for
	// an id whose held record has no key either: the window of a rolling
	// upgrade from that release (node's AcceptV1Peers, which needs the
	// secret). A member this node holds a signed record for is never
	// replaced by an unsigned one, and removals must still be signed.
	AcceptUnsigned bool
}

// Verify reports whether the record in, received from gossip, may be
// merged into the state lookup reads (see the package doc). nil means it
// is authentic and allowed; which of two allowed records wins is still the
// version order's decision. A record equal to the one held is accepted
// without checking its signature again, so gossip that repeats the state
// costs no signature checks.
func Verify(in Record, lookup Lookup, p Policy) error {
	cur, pinned := lookup(in.ID)
	if p.AcceptUnsigned && in.Key == zeroKey && in.Signer == "" && (!pinned || cur.Key == zeroKey) {
		return checkFields(in)
	}
	if err := checkBounds(in); err != nil {
		return err
	}
	if pinned && in == cur {
		return nil // what this node holds, verified when it was stored
	}
	pinned = pinned && cur.Key != zeroKey
	msg := SigningBytes(in)

	if in.Signer == "" {
		if !ed25519.Verify(in.Key[:], msg, in.Sig[:]) {
			return fmt.Errorf("%w: %s's own record", ErrBadSignature, in.ID)
		}
		switch {
		case pinned && cur.Left && !in.Left && in.Incarnation == cur.Incarnation:
			return fmt.Errorf("%w: %s's incarnation %x left the ring and cannot rejoin it (a new data directory can)", ErrRevived, in.ID, in.Incarnation)
		case !pinned || in.Key == cur.Key:
			return nil
		case in.Incarnation != cur.Incarnation && (cur.Left || p.RekeyNewIncarnation):
			return nil // a new data directory for the id
		}
		return fmt.Errorf("%w: %s (incarnation %x, pinned incarnation %x)", ErrKeyMismatch, in.ID, in.Incarnation, cur.Incarnation)
	}

	switch {
	case !pinned:
		return fmt.Errorf("%w: %s removed by %s, a member this node does not know", ErrUnauthorizedRemoval, in.ID, in.Signer)
	case in.Key != cur.Key || in.Incarnation != cur.Incarnation:
		return fmt.Errorf("%w: %s removed by %s names another incarnation than this node knows", ErrUnauthorizedRemoval, in.ID, in.Signer)
	case in.Version > LeaveVersion(LeaveVersion(cur.Version)):
		return fmt.Errorf("%w: %s removed by %s at version %d, more than two leave steps past %d", ErrUnauthorizedRemoval, in.ID, in.Signer, in.Version, cur.Version)
	}
	return verifyRemover(in, lookup, msg)
}

// VerifyEarlierRemoval reports whether in, a record of the verifying
// node's own id from gossip, is an authentic removal of an earlier
// incarnation of it (self is the node's own record): signed by a member on
// the ring whose key lookup knows. Verify refuses it (it names another
// incarnation than the one held), and the node does not merge it (its own
// record is its own), but it must outbid its version: else the removal
// keeps the new incarnation (an empty rejoin) off the ring for good.
func VerifyEarlierRemoval(in, self Record, lookup Lookup) error {
	if in.ID != self.ID || !in.Left || in.Signer == "" || in.Incarnation == self.Incarnation {
		return fmt.Errorf("%w: not a removal of an earlier incarnation of %s", ErrUnauthorizedRemoval, self.ID)
	}
	if err := checkBounds(in); err != nil {
		return err
	}
	return verifyRemover(in, lookup, SigningBytes(in))
}

// verifyRemover checks a removal's signer: on the ring, with a key lookup
// knows, and its signature over msg.
func verifyRemover(in Record, lookup Lookup, msg []byte) error {
	by, ok := lookup(in.Signer)
	switch {
	case !ok || by.Key == zeroKey:
		return fmt.Errorf("%w: %s removed by %s, whose key this node does not know", ErrUnauthorizedRemoval, in.ID, in.Signer)
	case by.Left:
		return fmt.Errorf("%w: %s removed by %s, which is not on the ring", ErrUnauthorizedRemoval, in.ID, in.Signer)
	case !ed25519.Verify(by.Key[:], msg, in.Sig[:]):
		return fmt.Errorf("%w: %s's removal by %s", ErrBadSignature, in.ID, in.Signer)
	}
	return nil
}

// Rejected is a record Filter refused, and why.
type Rejected struct {
	Record Record
	Err    error
}

// Filter verifies the records of a gossiped state (keyed by id; a record
// whose ID is not its key is refused) against the node's records
// (lookup), and returns those that may be merged and those refused, both
// in id order. Members' own records are verified first, and a removal may
// be signed by a member whose record arrives in the same state (it is
// then verified under that record's key, if that record was accepted), so
// one exchange is enough.
func Filter(in map[string]Record, lookup Lookup, p Policy) (accepted []Record, rejected []Rejected) {
	ids := make([]string, 0, len(in))
	for id := range in {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	good := map[string]Record{}
	for _, id := range ids {
		r := in[id]
		switch {
		case r.ID != id:
			rejected = append(rejected, Rejected{r, fmt.Errorf("%w: record of %q filed under %q", ErrMalformed, r.ID, id)})
		case r.Signer != "":
			continue // second pass
		default:
			if err := Verify(r, lookup, p); err != nil {
				rejected = append(rejected, Rejected{r, err})
			} else {
				good[id] = r
			}
		}
	}
	// A remover's record from this batch stands in for the node's, unless
	// the node already holds it as gone (conservative: a member that left
	// removes no one).
	withBatch := func(id string) (Record, bool) {
		a, inBatch := good[id]
		r, known := lookup(id)
		switch {
		case !inBatch:
			return r, known
		case known && r.Left && r.Key == a.Key:
			return r, true
		}
		return a, true
	}
	for _, id := range ids {
		r := in[id]
		if r.ID != id || r.Signer == "" {
			continue
		}
		if err := Verify(r, withBatch, p); err != nil {
			rejected = append(rejected, Rejected{r, err})
		} else {
			good[id] = r
		}
	}
	for _, id := range ids {
		if r, ok := good[id]; ok {
			accepted = append(accepted, r)
		}
	}
	return accepted, rejected
}
