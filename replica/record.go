package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/vclock"
)

// A stored record (and a stored hint) is an envelope around the encoded
// sibling set: a format byte, the epoch under which this node last minted a
// dot for the key (0: never), in format 2 whether the set is all tombstones
// and since when every primary is known to hold it, then the vclock
// encoding. The envelope is local bookkeeping: it never leaves the node and
// is not part of the set's digest, so replicas compare equal when their
// sets are. Format 1 records are still read; every write produces format 2.
//
// Format 1 is [1][uvarint mint][set]; format 2 is
// [2][uvarint mint][uvarint tomb][set], where tomb tells the reaper
// (package antientropy) about tombstones without decoding the set:
//
//   - TombLive (0): the set has a live sibling;
//   - TombUnconfirmed (1): every sibling is a tombstone (or there is none);
//   - any larger value: as TombUnconfirmed, and this replica learned at that
//     Unix millisecond that every primary holds this very set.
//
// Any write that changes the set recomputes tomb from scratch (live or
// unconfirmed), because the other replicas then have to confirm the new set.
//
// Format 3 is [3][uvarint mint][uvarint tomb][uvarint dead][set], written
// only for a live set every live sibling of which has a deadline: dead is
// the Unix millisecond (rounded up) from which none reads as live
// (vclock.Set.DeadAt), so the reaper finds expired records without
// decoding sets. Every other record is written in format 2, byte for byte
// as before deadlines existed.
const (
	formatV1 = 1
	formatV2 = 2
	formatV3 = 3
)

// Tomb field values (Header.Tomb).
const (
	TombLive        = 0
	TombUnconfirmed = 1
	// TombUnknown marks a format-1 record in Header.Tomb (never stored):
	// the reader must decode its set to know.
	TombUnknown = ^uint64(0)
)

// tombOf is the tomb field of a freshly written set.
func tombOf(s vclock.Set) uint64 {
	if s.IsDeleted() {
		return TombUnconfirmed
	}
	return TombLive
}

// TombConfirmed returns the tomb field for a set confirmed at Unix
// millisecond ms: never below 2, so it cannot be mistaken for the others.
func TombConfirmed(ms int64) uint64 { return uint64(max(ms, 2)) }

// ErrMalformedRecord is a record whose envelope does not parse.
var ErrMalformedRecord = errors.New("record: malformed envelope")

// Header is a parsed envelope.
type Header struct {
	Format byte
	// Mint is the epoch this node last minted a dot of the key under (0:
	// never).
	Mint uint64
	// Tomb is the format-2 tomb field; format-1 records say TombUnknown.
	Tomb uint64
	// DeadAt is, in format 3, the Unix millisecond from which the set's
	// values have all expired; 0 otherwise.
	DeadAt int64
	// SetOff is the offset of the set's encoding in the record.
	SetOff int
}

// Confirmed reports a record of tombstones that every primary was known to
// hold at some point: the reaper's business, not a repair's.
func (h Header) Confirmed() bool { return h.Tomb != TombUnknown && h.Tomb > TombUnconfirmed }

// ParseHeader parses a record's envelope without decoding its set. It never
// panics on untrusted bytes (records come from disk).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 2 {
		return Header{}, fmt.Errorf("%w: %d bytes", ErrMalformedRecord, len(b))
	}
	h := Header{Format: b[0]}
	switch h.Format {
	case formatV1, formatV2, formatV3:
	default:
		return Header{}, fmt.Errorf("%w: unknown format %d", ErrMalformedRecord, b[0])
	}
	off := 1
	v, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return Header{}, fmt.Errorf("%w: bad mint epoch", ErrMalformedRecord)
	}
	h.Mint, off = v, off+n
	h.Tomb = TombUnknown
	if h.Format >= formatV2 {
		v, n = binary.Uvarint(b[off:])
		if n <= 0 || v == TombUnknown {
			return Header{}, fmt.Errorf("%w: bad tomb field", ErrMalformedRecord)
		}
		h.Tomb, off = v, off+n
	}
	if h.Format == formatV3 {
		v, n = binary.Uvarint(b[off:])
		if n <= 0 || v == 0 || v > math.MaxInt64 {
			return Header{}, fmt.Errorf("%w: bad deadline field", ErrMalformedRecord)
		}
		h.DeadAt, off = int64(v), off+n
	}
	h.SetOff = off
	return h, nil
}

// EncodeRecord returns the format-2 record of s minted under epoch mint.
func EncodeRecord(mint uint64, s vclock.Set) ([]byte, error) {
	return appendRecord(make([]byte, 0, 16+64), mint, s)
}

// appendRecord appends a record of s to b: format 3 when every live value
// of s has a deadline, else format 2.
func appendRecord(b []byte, mint uint64, s vclock.Set) ([]byte, error) {
	var dead int64
	if at, ok := s.DeadAt(); ok {
		dead = deadMillis(at)
	}
	b = appendEnvelope(b, mint, tombOf(s), dead)
	return s.AppendBinary(b)
}

// deadMillis rounds a deadline in Unix nanoseconds up to milliseconds, at
// least 1.
func deadMillis(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 != 0 {
		ms++
	}
	return max(ms, 1)
}

// appendEnvelope appends an envelope: format 3 when dead is set.
func appendEnvelope(b []byte, mint, tomb uint64, dead int64) []byte {
	if dead > 0 {
		b = append(b, formatV3)
	} else {
		b = append(b, formatV2)
	}
	b = binary.AppendUvarint(b, mint)
	b = binary.AppendUvarint(b, tomb)
	if dead > 0 {
		b = binary.AppendUvarint(b, uint64(dead))
	}
	return b
}

// DecodeRecord decodes a record: its mint epoch and its set.
func DecodeRecord(b []byte) (mint uint64, s vclock.Set, err error) {
	h, err := ParseHeader(b)
	if err != nil {
		return 0, s, err
	}
	s, err = vclock.DecodeSet(b[h.SetOff:])
	if err != nil {
		return 0, s, fmt.Errorf("record: %w", err)
	}
	return h.Mint, s, nil
}

// WithTomb returns a copy of the record rec in format 2 (3 if it has a
// deadline field) with its tomb field replaced, keeping the mint epoch, the
// deadline and the set bytes as they are.
func WithTomb(rec []byte, tomb uint64) ([]byte, error) {
	h, err := ParseHeader(rec)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(rec)+binary.MaxVarintLen64)
	out = appendEnvelope(out, h.Mint, tomb, h.DeadAt)
	return append(out, rec[h.SetOff:]...), nil
}

// SetBytesDigest is vclock.Set.Digest computed from the set's canonical
// encoding, without decoding it: Digest is defined as the xxhash64 of that
// encoding with 0 mapped to 1 (pinned by TestSetBytesDigestMatchesSet).
// Start-up tree builds and key listings use it.
func SetBytesDigest(set []byte) uint64 {
	if d := xxhash.Sum64(set); d != 0 {
		return d
	}
	return 1
}

// SetBytes returns the set's encoding inside rec (aliasing it), or nil when
// rec's envelope does not parse.
func SetBytes(rec []byte) []byte {
	h, err := ParseHeader(rec)
	if err != nil {
		return nil
	}
	return rec[h.SetOff:]
}
