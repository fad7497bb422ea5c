package ctxauth

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/quorumkv/quorumkv/vclock"
)

// KeyLen is the length of a context signing key, in bytes.
const KeyLen = 32

// macLen is how much of the HMAC-SHA256 a token carries: 128 bits, as
// node's tokens always had.
const macLen = 16

// Labels of the derivations from the cluster secret; every key derived
// from the secret has a label of its own.
const (
	hkdfSalt = "quorumkv"
	hkdfInfo = "quorumkv client context signing key v1"
)

// Errors of Verify and CheckCounters; returned errors wrap them.
var (
	// ErrBadSignature: the context was not signed by this cluster's key
	// (forged, altered, of another cluster, or of this cluster before its
	// key changed twice).
	ErrBadSignature = errors.New("context was not issued by this cluster (bad signature)")
	// ErrCounterRange: a counter is past MaxCounter.
	ErrCounterRange = errors.New("context counter out of range")
)

// KeyFromSecret derives the context signing key from the cluster secret
// (HKDF-SHA256, salt "quorumkv", info "quorumkv client context signing
// key v1").
func KeyFromSecret(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("empty cluster secret: use a cluster key (NewClusterKey)")
	}
	return hkdf.Key(sha256.New, []byte(secret), []byte(hkdfSalt), hkdfInfo, KeyLen)
}

// NewClusterKey returns a random key for a cluster without a secret, read
// from r (crypto/rand if nil). The member that creates the ring state
// creates it, and it travels in that state.
func NewClusterKey(r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	k := make([]byte, KeyLen)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, fmt.Errorf("generate cluster context key: %w", err)
	}
	return k, nil
}

// ValidKey checks a key from gossip or disk.
func ValidKey(k []byte) error {
	if len(k) != KeyLen {
		return fmt.Errorf("context key: %d bytes, want %d", len(k), KeyLen)
	}
	return nil
}

// MergeClusterKey returns the key two members agree on: the smaller of
// two valid keys (bytewise), else the valid one, else nil. It is
// commutative, associative and idempotent, so members gossiping in any
// order converge. The result aliases an argument.
func MergeClusterKey(a, b []byte) []byte {
	switch {
	case ValidKey(a) != nil && ValidKey(b) != nil:
		return nil
	case ValidKey(a) != nil:
		return b
	case ValidKey(b) != nil:
		return a
	case bytes.Compare(b, a) < 0:
		return b
	}
	return a
}

// Signer signs client context tokens and verifies them. It signs with its
// current key and verifies with the current and the previous one, so
// contexts handed out just before a key change (two members' keys merged)
// stay valid. Safe for concurrent use.
type Signer struct {
	keys atomic.Pointer[keyPair]
}

type keyPair struct{ cur, prev *macKey }

// macKey is a signing key with its HMAC states: hmac.New derives the
// keyed state (two SHA-256 blocks) and allocates six objects, which every
// context a front hands out paid (about a µs per HTTP request); a state
// from the pool is Reset to its keyed start instead.
type macKey struct {
	key  []byte
	macs sync.Pool // of hash.Hash, HMAC-SHA256 under key
}

func newMACKey(key []byte) *macKey {
	k := &macKey{key: bytes.Clone(key)}
	k.macs.New = func() any { return hmac.New(sha256.New, k.key) }
	return k
}

// NewSigner returns a Signer with key (KeyLen bytes).
func NewSigner(key []byte) (*Signer, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	s := &Signer{}
	s.keys.Store(&keyPair{cur: newMACKey(key)})
	return s, nil
}

// Rotate makes key the signing key and keeps the one before for
// verification only. Rotating to the current key changes nothing.
func (s *Signer) Rotate(key []byte) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	for {
		old := s.keys.Load()
		if hmac.Equal(old.cur.key, key) {
			return nil
		}
		if s.keys.CompareAndSwap(old, &keyPair{cur: newMACKey(key), prev: old.cur}) {
			return nil
		}
	}
}

// Key returns a copy of the current signing key.
func (s *Signer) Key() []byte { return bytes.Clone(s.keys.Load().cur.key) }

func (k *macKey) mac(token string) string {
	m := k.macs.Get().(hash.Hash)
	m.Write([]byte(token))
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	m.Reset()
	k.macs.Put(m)
	return base64.RawURLEncoding.EncodeToString(out[:macLen])
}

// Sign returns "<token>.<mac>", the form clients carry ("" for an empty
// token: the empty context needs no signature).
func (s *Signer) Sign(token string) string {
	if token == "" {
		return ""
	}
	return token + "." + s.keys.Load().cur.mac(token)
}

// MaxSignedLen is the longest signed token Verify accepts.
const MaxSignedLen = vclock.MaxContextLen + 1 + 32

// Verify checks a signed token and returns the token inside it ("" for "").
// Both macs are computed and compared in constant time before deciding.
func (s *Signer) Verify(signed string) (string, error) {
	if signed == "" {
		return "", nil
	}
	if len(signed) > MaxSignedLen {
		return "", vclock.ErrTooLarge
	}
	token, got, ok := strings.Cut(signed, ".")
	if !ok || token == "" {
		return "", ErrBadSignature
	}
	k := s.keys.Load()
	okCur := hmac.Equal([]byte(got), []byte(k.cur.mac(token)))
	okPrev := k.prev != nil && hmac.Equal([]byte(got), []byte(k.prev.mac(token)))
	if !okCur && !okPrev {
		return "", ErrBadSignature
	}
	return token, nil
}

// EncodeContext signs the client token of v ("" for an empty vector).
func (s *Signer) EncodeContext(v vclock.Vector) string {
	return s.Sign(vclock.EncodeContext(v))
}

// DecodeContext verifies a signed client token, decodes it and checks its
// counters (CheckCounters): the whole of a front's context check. Errors
// wrap ErrBadSignature, ErrCounterRange or vclock's decoding errors; all
// are the client's fault (HTTP 400).
func (s *Signer) DecodeContext(signed string) (vclock.Vector, error) {
	token, err := s.Verify(signed)
	if err != nil || token == "" {
		return nil, err
	}
	v, err := vclock.DecodeContext(token)
	if err != nil {
		return nil, err
	}
	if err := CheckCounters(v); err != nil {
		return nil, err
	}
	return v, nil
}

// MaxCounter is the largest counter a client context may carry: 2^56, far
// past what any actor mints for one key (a node incarnation writing one
// key a million times a second reaches it in 2,000 years), and far below
// vclock.MaxCounter (2^63-1), so a key whose context holds it can still
// take 2^63-2^56 writes by every actor. A context over it cannot have been
// issued by a node and would bring the key within reach of the encoding
// limit, after which every write of the key through that actor fails.
const MaxCounter = 1 << 56

// CheckCounters refuses a context with a counter past MaxCounter. Call it
// on every context a client sends, after the signature check (
// DecodeContext does both): the signature stops forgery when the key is
// secret, the bound limits the damage when it is not (a cluster without a
// secret whose gossip an attacker reads).
func CheckCounters(v vclock.Vector) error {
	for _, e := range v {
		if e.Counter > MaxCounter {
			return fmt.Errorf("%w: %s has counter %d, limit %d", ErrCounterRange, e.Actor, e.Counter, uint64(MaxCounter))
		}
	}
	return nil
}
