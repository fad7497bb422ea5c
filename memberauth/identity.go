package memberauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Identity is a member's signing key: one per data directory, made with
// the directory and kept in it (node persists MarshalBinary in its store's
// meta, next to the incarnation; a wiped directory gets a new one).
type Identity struct {
	id   string
	priv ed25519.PrivateKey
}

// identityFormat is the first byte of MarshalBinary's encoding.
const identityFormat = 1

// NewIdentity returns a new identity for node id, with randomness from r
// (crypto/rand if nil).
func NewIdentity(id string, r io.Reader) (Identity, error) {
	if id == "" || len(id) > MaxIDLen {
		return Identity{}, fmt.Errorf("identity: node id of %d bytes", len(id))
	}
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return Identity{}, fmt.Errorf("identity: %w", err)
	}
	return Identity{id: id, priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// ParseIdentity decodes MarshalBinary's output for node id.
func ParseIdentity(id string, b []byte) (Identity, error) {
	if id == "" || len(id) > MaxIDLen {
		return Identity{}, fmt.Errorf("identity: node id of %d bytes", len(id))
	}
	if len(b) != 1+ed25519.SeedSize || b[0] != identityFormat {
		return Identity{}, errors.New("identity: not a stored member key")
	}
	return Identity{id: id, priv: ed25519.NewKeyFromSeed(b[1:])}, nil
}

// MarshalBinary returns the identity's private seed, for the data
// directory only: it must never leave the node.
func (i Identity) MarshalBinary() ([]byte, error) {
	if i.priv == nil {
		return nil, errors.New("identity: zero Identity")
	}
	return append([]byte{identityFormat}, i.priv.Seed()...), nil
}

// ID returns the node id the identity signs for.
func (i Identity) ID() string { return i.id }

// Public returns the public key records carry.
func (i Identity) Public() PublicKey {
	var k PublicKey
	copy(k[:], i.priv.Public().(ed25519.PublicKey))
	return k
}

// Sign returns r as this member's own record: Key set to this identity's,
// no signer, principal or forced flag, and signed. r must be this
// member's record (r.ID == ID()).
func (i Identity) Sign(r Record) (Record, error) {
	if r.ID != i.id {
		return Record{}, fmt.Errorf("identity %s cannot sign the record of %s as its own", i.id, r.ID)
	}
	r.Key, r.Signer, r.Principal, r.Forced = i.Public(), "", "", false
	if err := checkBounds(r); err != nil {
		return Record{}, err
	}
	copy(r.Sig[:], ed25519.Sign(i.priv, SigningBytes(r)))
	return r, nil
}

// SignRemoval returns the tombstone by which this member removes another:
// cur is the record this node holds for it; the result keeps its id,
// incarnation and key, is Left, has LeaveVersion of its version, no
// addresses, and names this member, principal (the admin who asked) and
// forced. Removing a member already Left, or oneself (that is leaving:
// Sign a Left record), is an error.
func (i Identity) SignRemoval(cur Record, principal string, forced bool) (Record, error) {
	switch {
	case cur.ID == i.id:
		return Record{}, errors.New("a member does not remove itself: it leaves")
	case cur.Left:
		return Record{}, fmt.Errorf("%s is already off the ring", cur.ID)
	case cur.Key == zeroKey:
		return Record{}, fmt.Errorf("%s has no key: its record cannot be removed in its name", cur.ID)
	}
	r := Record{ID: cur.ID, Version: LeaveVersion(cur.Version), Incarnation: cur.Incarnation, Left: true,
		Key: cur.Key, Signer: i.id, Principal: principal, Forced: forced}
	if err := checkBounds(r); err != nil {
		return Record{}, err
	}
	copy(r.Sig[:], ed25519.Sign(i.priv, SigningBytes(r)))
	return r, nil
}
