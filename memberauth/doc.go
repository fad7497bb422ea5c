// Package memberauth makes a member's ring-state record changeable only by
// that member, or by a ring member removing it on an operator's request.
//
// Each data directory has an ed25519 Identity (NewIdentity, persisted by
// node next to the directory's incarnation). A member signs its own Record
// (Identity.Sign) over a canonical encoding of every field but the
// signature (SigningBytes); the record carries the public key. A removal
// is a tombstone of the member's current incarnation, with its addresses
// blanked, signed by the removing member (Identity.SignRemoval), naming it
// and the admin principal who asked.
//
// Verify decides whether a record from gossip may be merged, given the
// records a node holds (its pins: the first key seen for an id is trusted,
// and the ring state that holds it is persisted, so the pin survives
// restarts):
//
//   - a member's own record must verify under the key pinned for its id;
//     another key is accepted only for a new incarnation after the pinned
//     one left or was removed, or (Policy.RekeyNewIncarnation, for clusters
//     whose gossip is authenticated by the secret) for any new incarnation;
//     an incarnation that left or was removed stays off the ring;
//   - a removal must name the pinned key and incarnation, carry no
//     addresses, be signed by a member that is on the ring, and raise the
//     version by at most 2*LeaveJump;
//   - versions are at most MaxVersion, and the arithmetic on them
//     (NextVersion, LeaveVersion) saturates instead of wrapping.
//
// Filter applies Verify to a whole gossiped state. Version order (which of
// two valid records wins) stays node's. The package is pure: no I/O, no
// clock; randomness comes from the io.Reader NewIdentity is given.
package memberauth
