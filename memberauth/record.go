package memberauth

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is one member's entry in the ring state. Its first fields, and
// their msgpack tags, are node's MemberRecord's, so node can use Record as
// its MemberRecord (type MemberRecord = memberauth.Record). Records are
// comparable with ==.
type Record struct {
	ID      string `msgpack:"id"`
	RPC     string `msgpack:"rpc"`
	HTTP    string `msgpack:"http"`
	RESP    string `msgpack:"resp,omitempty"`
	Gossip  string `msgpack:"gossip,omitempty"`
	Version uint64 `msgpack:"v"`
	// Incarnation identifies the data directory the member runs on.
	Incarnation uint64 `msgpack:"inc,omitempty"`
	// Left: the member left or was removed; the record is a tombstone.
	Left bool `msgpack:"left,omitempty"`
	// Zone is the member's failure domain (--zone): a claim ring puts a
	// partition's owners in distinct zones. Signed when set.
	Zone string `msgpack:"zone,omitempty"`
	// Staged: the member joined with --join-mode staged and waits off the
	// ring until a ring commit admits it (package ringstage); it then
	// clears the flag. Signed when set.
	Staged bool `msgpack:"stg,omitempty"`

	// Key is the member's ed25519 public key: its data directory's
	// Identity. All zero means unsigned, which Verify refuses.
	Key PublicKey `msgpack:"key,omitempty"`
	// Signer is "" when the member signed the record itself; otherwise the
	// id of the ring member that removed it (Left is then set).
	Signer string `msgpack:"by,omitempty"`
	// Principal is the admin whose request the removal carried out, for
	// the audit log of every node that applies it.
	Principal string `msgpack:"who,omitempty"`
	// Forced reports a removal that overrode the remover's
	// --remove-min-down check.
	Forced bool `msgpack:"force,omitempty"`
	// Sig is the signer's ed25519 signature over SigningBytes.
	Sig Signature `msgpack:"sig,omitempty"`
}

// PublicKey is an ed25519 public key. All zero (IsZero) is no key, and is
// left out of the msgpack encoding, as is a zero Signature: an unsigned
// record encodes byte for byte as the release before memberauth wrote
// it (node's golden gossip files).
type PublicKey [ed25519.PublicKeySize]byte

// IsZero reports no key (msgpack's omitempty asks it).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// Signature is an ed25519 signature; all zero is none.
type Signature [ed25519.SignatureSize]byte

// IsZero reports no signature (msgpack's omitempty asks it).
func (s Signature) IsZero() bool { return s == Signature{} }

// Bounds checked by Verify. Node ids are at most 64 bytes (node's id
// pattern); addresses are host:port with a DNS name.
const (
	MaxIDLen        = 64
	MaxAddrLen      = 300
	MaxPrincipalLen = 64
)

// Version arithmetic. A member bumps its version by one at every change and
// start; leaving or removal adds LeaveJump, so a removed member restarting
// a few times before it hears of its removal cannot outbid it. MaxVersion
// leaves 2^30 removals of headroom below 2^62 and is never exceeded: a
// record above it is refused, and the arithmetic stops at it.
const (
	LeaveJump  = 1 << 32
	MaxVersion = 1 << 62
)

// NextVersion returns v+1, or MaxVersion when that would pass it. Use it
// for every bump, and to outbid a record (theirs.Version+1).
func NextVersion(v uint64) uint64 {
	if v >= MaxVersion {
		return MaxVersion
	}
	return v + 1
}

// LeaveVersion returns v+LeaveJump, or MaxVersion when that would pass it.
func LeaveVersion(v uint64) uint64 {
	if v >= MaxVersion-LeaveJump {
		return MaxVersion
	}
	return v + LeaveJump
}

// signingDomain separates record signatures from anything else a key could
// sign; v1 is the encoding below.
const signingDomain = "quorumkv member record v1\x00"

// SigningBytes is the canonical encoding a record's signature covers:
// every field but Sig, each string length-prefixed, integers fixed-width
// big-endian, so two different records never share an encoding.
func SigningBytes(r Record) []byte {
	b := make([]byte, 0, len(signingDomain)+len(r.ID)+len(r.RPC)+len(r.HTTP)+len(r.RESP)+len(r.Gossip)+
		len(r.Signer)+len(r.Principal)+ed25519.PublicKeySize+7*binary.MaxVarintLen64+19)
	b = append(b, signingDomain...)
	for _, s := range []string{r.ID, r.RPC, r.HTTP, r.RESP, r.Gossip} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = binary.BigEndian.AppendUint64(b, r.Incarnation)
	b = append(b, boolByte(r.Left))
	b = append(b, r.Key[:]...)
	for _, s := range []string{r.Signer, r.Principal} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, boolByte(r.Forced))
	if r.Zone != "" {
		// Appended only when set, so that records without a zone sign
		// the same bytes as before zones existed.
		b = append(b, 'z')
		b = binary.AppendUvarint(b, uint64(len(r.Zone)))
		b = append(b, r.Zone...)
	}
	if r.Staged {
		b = append(b, 's') // only when set, as the zone
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// Errors of Verify; returned errors wrap one of them.
var (
	// ErrMalformed: a field is out of its bounds or inconsistent.
	ErrMalformed = errors.New("malformed member record")
	// ErrBadSignature: the signature does not verify under the key it must.
	ErrBadSignature = errors.New("member record signature does not verify")
	// ErrKeyMismatch: the member's own record is signed by a key other
	// than the one pinned for its id, and no rule allows the change: the
	// record of a rogue member for another member's id.
	ErrKeyMismatch = errors.New("member record is not signed by the key pinned for its id")
	// ErrRevived: a member's record puts back on the ring an incarnation
	// that left or was removed; leaving is for good on a data directory.
	ErrRevived = errors.New("member record revives an incarnation that left")
	// ErrUnauthorizedRemoval: a removal this node cannot attribute to a
	// ring member, or that does not apply to the member as this node
	// knows it.
	ErrUnauthorizedRemoval = errors.New("member removal not accepted")
)

var zeroKey PublicKey

// checkBounds validates a record's fields on their own, a key included.
func checkBounds(r Record) error {
	if r.Key == zeroKey {
		return fmt.Errorf("%w: %s: unsigned (no key)", ErrMalformed, r.ID)
	}
	return checkFields(r)
}

// checkFields is checkBounds but for the key: what an unsigned record of
// the release before (Policy.AcceptUnsigned) must meet too.
func checkFields(r Record) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case r.ID == "" || len(r.ID) > MaxIDLen:
		return bad("id of %d bytes", len(r.ID))
	case len(r.RPC) > MaxAddrLen || len(r.HTTP) > MaxAddrLen || len(r.RESP) > MaxAddrLen || len(r.Gossip) > MaxAddrLen:
		return bad("%s: an address longer than %d bytes", r.ID, MaxAddrLen)
	case r.Version > MaxVersion:
		return bad("%s: version %d past %d", r.ID, r.Version, uint64(MaxVersion))
	case len(r.Signer) > MaxIDLen || len(r.Principal) > MaxPrincipalLen:
		return bad("%s: signer or principal too long", r.ID)
	case r.Signer == r.ID:
		return bad("%s: a member's own record names no signer", r.ID)
	case r.Signer == "" && (r.Principal != "" || r.Forced):
		return bad("%s: principal or forced on a record that is not a removal", r.ID)
	case r.Signer != "" && !r.Left:
		return bad("%s: signed by %s but not a removal", r.ID, r.Signer)
	case r.Signer != "" && (r.RPC != "" || r.HTTP != "" || r.RESP != "" || r.Gossip != ""):
		return bad("%s: a removal by %s carries addresses", r.ID, r.Signer)
	}
	return nil
}
