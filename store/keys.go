package store

import (
	"encoding/binary"
	"fmt"

	"github.com/quorumkv/quorumkv/ring"
)

// Layout of badger keys and values (a compatibility promise: see doc.go).
const (
	prefixRecord byte = 'r'
	prefixHint   byte = 'h'
	prefixMeta   byte = 'm'

	// recordHeaderLen is 'r' | partition (4) | hash (8).
	recordHeaderLen = 1 + 4 + 8
	// partitionPrefixLen is 'r' | partition (4).
	partitionPrefixLen = 1 + 4

	// hintValueVersion is the first byte of every hint value; bump it (and
	// keep decoding the old one) if the header ever changes.
	hintValueVersion byte = 1
	// hintHeaderLen is version (1) | created, Unix nanoseconds (8).
	hintHeaderLen = 1 + 8
)

// Size limits on names and keys. They bound what the store writes and what
// it accepts when it parses keys read back from disk.
const (
	// MaxKeyLen is the longest record key (Key.Key) in bytes.
	MaxKeyLen = 4096
	// MaxTargetLen is the longest hint target node id in bytes (its length
	// is stored in one byte).
	MaxTargetLen = 255
	// MaxMetaNameLen is the longest meta name in bytes.
	MaxMetaNameLen = 255
)

// Key is the address of a record, ring.Key: the partition it belongs to,
// the xxhash64 of the key (computed by the caller, who also uses it to place
// the key on the ring), and the key itself. Records are ordered by
// (Partition, Hash, Key). The alias spares this package's code a rename;
// callers outside it write ring.Key.
type Key = ring.Key

func validateKey(k Key) error {
	if len(k.Key) > MaxKeyLen {
		return fmt.Errorf("key of %d bytes (max %d): %w", len(k.Key), MaxKeyLen, ErrKeyTooLarge)
	}
	return nil
}

// appendRecordKey appends 'r' | partition | hash | key to dst (allocating
// the exact size when dst is nil).
func appendRecordKey(dst []byte, k Key) []byte {
	if dst == nil {
		dst = make([]byte, 0, recordHeaderLen+len(k.Key))
	}
	dst = append(dst, prefixRecord)
	dst = binary.BigEndian.AppendUint32(dst, k.Partition)
	dst = binary.BigEndian.AppendUint64(dst, k.Hash)
	return append(dst, k.Key...)
}

// partitionPrefix returns 'r' | partition.
func partitionPrefix(p uint32) []byte {
	b := make([]byte, 0, partitionPrefixLen)
	b = append(b, prefixRecord)
	return binary.BigEndian.AppendUint32(b, p)
}

// parseRecordKey splits a badger key of the record space. The returned
// Key.Key aliases b.
func parseRecordKey(b []byte) (Key, error) {
	if len(b) < recordHeaderLen || b[0] != prefixRecord {
		return Key{}, fmt.Errorf("record key of %d bytes: %w", len(b), ErrCorrupt)
	}
	if len(b)-recordHeaderLen > MaxKeyLen {
		return Key{}, fmt.Errorf("record key of %d bytes: %w", len(b), ErrCorrupt)
	}
	return Key{
		Partition: binary.BigEndian.Uint32(b[1:5]),
		Hash:      binary.BigEndian.Uint64(b[5:13]),
		Key:       b[recordHeaderLen:],
	}, nil
}

func validateTarget(target string) error { return validateName("hint target", target, MaxTargetLen) }

// validateName refuses an empty name (ErrEmptyName) or one longer than max
// bytes (ErrKeyTooLarge); what says what the name is in the error.
func validateName(what, name string, max int) error {
	if name == "" {
		return fmt.Errorf("%s: %w", what, ErrEmptyName)
	}
	if len(name) > max {
		return fmt.Errorf("%s of %d bytes (max %d): %w", what, len(name), max, ErrKeyTooLarge)
	}
	return nil
}

// appendHintPrefix appends 'h' | len(target) | target. target must have
// passed validateTarget.
func appendHintPrefix(dst []byte, target string) []byte {
	dst = append(dst, prefixHint, byte(len(target)))
	return append(dst, target...)
}

// appendHintKey appends 'h' | len(target) | target | partition | hash | key
// (allocating the exact size when dst is nil).
func appendHintKey(dst []byte, target string, k Key) []byte {
	if dst == nil {
		dst = make([]byte, 0, 2+len(target)+12+len(k.Key))
	}
	dst = appendHintPrefix(dst, target)
	dst = binary.BigEndian.AppendUint32(dst, k.Partition)
	dst = binary.BigEndian.AppendUint64(dst, k.Hash)
	return append(dst, k.Key...)
}

// parseHintKey splits a badger key of the hint space. target and Key.Key
// alias b.
func parseHintKey(b []byte) (target []byte, k Key, err error) {
	if len(b) < 2 || b[0] != prefixHint {
		return nil, Key{}, fmt.Errorf("hint key of %d bytes: %w", len(b), ErrCorrupt)
	}
	n := int(b[1])
	if n == 0 || len(b) < 2+n+12 || len(b)-(2+n+12) > MaxKeyLen {
		return nil, Key{}, fmt.Errorf("hint key of %d bytes, target length %d: %w", len(b), n, ErrCorrupt)
	}
	target = b[2 : 2+n]
	rest := b[2+n:]
	return target, Key{
		Partition: binary.BigEndian.Uint32(rest[0:4]),
		Hash:      binary.BigEndian.Uint64(rest[4:12]),
		Key:       rest[12:],
	}, nil
}

func validateMetaName(name string) error { return validateName("meta name", name, MaxMetaNameLen) }

func metaKey(name string) []byte {
	b := make([]byte, 0, 1+len(name))
	b = append(b, prefixMeta)
	return append(b, name...)
}

// appendHintValue appends version | created | val.
func appendHintValue(dst []byte, created int64, val []byte) []byte {
	dst = append(dst, hintValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(created))
	return append(dst, val...)
}

// parseHintValue splits a stored hint value into its creation time (Unix
// nanoseconds) and the caller's bytes, which alias b.
func parseHintValue(b []byte) (created int64, val []byte, err error) {
	if len(b) < hintHeaderLen {
		return 0, nil, fmt.Errorf("hint value of %d bytes: %w", len(b), ErrCorrupt)
	}
	if b[0] != hintValueVersion {
		return 0, nil, fmt.Errorf("hint value version %d: %w", b[0], ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b[1:hintHeaderLen])), b[hintHeaderLen:], nil
}
