package vclock

import (
	"errors"
	"math"
)

// Errors returned by the decoders and encoders. Returned errors wrap one of
// them with context; test with errors.Is.
var (
	// ErrMalformed: the bytes are not a valid encoding, or decode to
	// something inconsistent or non-canonical (unsorted or duplicate entries,
	// a zero counter, a sibling its context does not cover, trailing bytes).
	ErrMalformed = errors.New("vclock: malformed encoding")
	// ErrTooLarge: a length or count is past one of the Max limits.
	ErrTooLarge = errors.New("vclock: encoding too large")
	// ErrVersion: the format-version byte is not one this build can read.
	ErrVersion = errors.New("vclock: unknown format version")
)

// Limits on what the codecs accept and produce. They bound what an untrusted
// input can make a decoder allocate; they are caps, not operating targets.
const (
	// MaxNodeLen is the longest node id, in bytes: a host name fits, and one
	// length byte (msgpack str8) encodes it.
	MaxNodeLen = 255

	// MaxActors is the most actors one vector may hold. A key's context
	// gains an actor for each node incarnation that ever coordinated a write
	// to it: a few per replica of the key, plus one per epoch bump of those
	// nodes. 1024 is far past that for clusters of up to a few hundred nodes,
	// and bounds a context to MaxContextLen even with the longest node ids.
	// Entries are never pruned: pruning a version vector loses causality.
	MaxActors = 1024

	// MaxSiblings is the most siblings a set may hold. Siblings are writes
	// that no later write has superseded, so they grow only with blind or
	// concurrent writes. The node should refuse writes well before this (Riak
	// refuses at 100 by default) so that merging the sets of all N replicas
	// stays under this cap; the cap itself only bounds decoding.
	MaxSiblings = 4096

	// MaxContentTypeLen is the longest content type, in bytes.
	MaxContentTypeLen = 255

	// MaxCounter is the largest counter a valid dot or entry may hold. It is
	// below MaxUint64 so that minting the next dot can never wrap to zero;
	// only a forged context can get near it.
	MaxCounter = math.MaxInt64

	// MaxContextLen is the longest context token DecodeContext accepts, in
	// characters: the token of MaxActors entries with MaxNodeLen-byte node
	// ids and the largest counters (376,838 characters), so every vector
	// within the limits round-trips. Realistic tokens are tens of bytes per
	// actor.
	MaxContextLen = (maxContextRaw*8 + 5) / 6

	// maxEntryRaw is the longest encoding of one vector entry: fixarray,
	// str8 header and node, uint64 epoch, uint64 counter.
	maxEntryRaw = 1 + 2 + MaxNodeLen + 9 + 9
	// maxContextRaw is the longest raw (pre-base64) context: version byte,
	// array16 header, entries.
	maxContextRaw = 1 + 3 + MaxActors*maxEntryRaw
	// maxDotLen is the longest dot token, in characters.
	maxDotLen = ((1+maxEntryRaw)*8 + 5) / 6
	// maxBinLen is the longest Data a set encoding can carry (bin32).
	maxBinLen = math.MaxUint32
)
