package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/vclock"
)

// Record envelope formats (see encodeRecord in replica.go). Format 1 is
// [1][uvarint mint][set]; format 2 is [2][uvarint mint][uvarint tomb][set],
// where tomb tells the reaper (ae_reap.go) about tombstones without decoding
// the set:
//
//   - tombLive (0): the set has a live sibling;
//   - tombUnconfirmed (1): every sibling is a tombstone (or there is none);
//   - any larger value: as tombUnconfirmed, and this replica learned at that
//     Unix millisecond that every primary holds this very set.
//
// Any write that changes the set recomputes tomb from scratch (live or
// unconfirmed), because the other replicas then have to confirm the new set.
const (
	recordFormatV1 = 1
	recordFormatV2 = 2

	tombLive        = 0
	tombUnconfirmed = 1
)

// tombOf is the tomb field of a freshly written set.
func tombOf(s vclock.Set) uint64 {
	if s.IsDeleted() {
		return tombUnconfirmed
	}
	return tombLive
}

// tombConfirmed returns the tomb field for a set confirmed at Unix
// millisecond ms: never below 2, so it cannot be mistaken for the others.
func tombConfirmed(ms int64) uint64 { return uint64(max(ms, 2)) }

// errRecordHeader is a record whose envelope does not parse.
var errRecordHeader = errors.New("record: malformed envelope")

// recordHeader is a parsed envelope.
type recordHeader struct {
	format byte
	mint   uint64
	// tomb is the format-2 tomb field; format 1 records say
	// tombUnknown, and the reaper decodes their set.
	tomb   uint64
	setOff int // offset of the set encoding
}

// tombUnknown marks a format-1 record in recordHeader.tomb (never stored).
const tombUnknown = ^uint64(0)

// parseRecordHeader parses a record's envelope without decoding its set. It
// never panics on untrusted bytes (records come from disk).
func parseRecordHeader(b []byte) (recordHeader, error) {
	if len(b) < 2 {
		return recordHeader{}, fmt.Errorf("%w: %d bytes", errRecordHeader, len(b))
	}
	h := recordHeader{format: b[0]}
	switch h.format {
	case recordFormatV1, recordFormatV2:
	default:
		return recordHeader{}, fmt.Errorf("%w: unknown format %d", errRecordHeader, b[0])
	}
	off := 1
	v, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return recordHeader{}, fmt.Errorf("%w: bad mint epoch", errRecordHeader)
	}
	h.mint, off = v, off+n
	h.tomb = tombUnknown
	if h.format == recordFormatV2 {
		v, n = binary.Uvarint(b[off:])
		if n <= 0 || v == tombUnknown {
			return recordHeader{}, fmt.Errorf("%w: bad tomb field", errRecordHeader)
		}
		h.tomb, off = v, off+n
	}
	h.setOff = off
	return h, nil
}

// appendRecord appends a format-2 record of s to b.
func appendRecord(b []byte, mint uint64, s vclock.Set) ([]byte, error) {
	b = append(b, recordFormatV2)
	b = binary.AppendUvarint(b, mint)
	b = binary.AppendUvarint(b, tombOf(s))
	return s.AppendBinary(b)
}

// withTomb returns a copy of the record rec in format 2 with its tomb field
// replaced, keeping the mint epoch and the set bytes as they are.
func withTomb(rec []byte, tomb uint64) ([]byte, error) {
	h, err := parseRecordHeader(rec)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(rec)+binary.MaxVarintLen64)
	out = append(out, recordFormatV2)
	out = binary.AppendUvarint(out, h.mint)
	out = binary.AppendUvarint(out, tomb)
	return append(out, rec[h.setOff:]...), nil
}

// setBytesDigest is vclock.Set.Digest computed from the set's canonical
// encoding, without decoding it: Digest is defined as the xxhash64 of that
// encoding with 0 mapped to 1 (pinned by TestSetBytesDigestMatchesSet).
// Start-up tree builds and key listings use it.
func setBytesDigest(set []byte) uint64 {
	if d := xxhash.Sum64(set); d != 0 {
		return d
	}
	return 1
}
