package antientropy

import "errors"

// Errors returned by this package. Functions wrap them with context, so test
// with errors.Is.
var (
	// ErrInvalidConfig reports a TreeConfig or Config that fails Validate.
	ErrInvalidConfig = errors.New("antientropy: invalid config")

	// ErrWrongPartition reports a key hash that lies outside the tree's
	// partition: the caller routed a write to the wrong tree.
	ErrWrongPartition = errors.New("antientropy: key hash outside the tree's partition")

	// ErrOutOfRange reports a level, node or bucket index that does not exist
	// in the tree.
	ErrOutOfRange = errors.New("antientropy: level or node out of range")

	// ErrShapeMismatch reports two trees (or a tree and a message or
	// snapshot) that disagree on partition, PartitionBits, LeafBits or
	// FanoutBits, so their hashes cannot be compared.
	ErrShapeMismatch = errors.New("antientropy: tree shape mismatch")

	// ErrMalformed reports bytes that are not a valid message or snapshot.
	ErrMalformed = errors.New("antientropy: malformed message")

	// ErrTooLarge reports a message over one of the size limits
	// (MaxNodesPerRequest, MaxKeysPerResponse, MaxKeyLen).
	ErrTooLarge = errors.New("antientropy: message over size limit")

	// ErrTooManyKeys reports that the keys of the requested buckets do not
	// fit in one KeysResponse. Compare reacts by asking for fewer buckets at
	// a time; a single bucket over the limit is an error.
	ErrTooManyKeys = errors.New("antientropy: too many keys for one response")

	// ErrBadResponse reports an answer that does not match its question
	// (wrong count, a key outside the requested buckets, a duplicate key),
	// from the peer or from the local tree or key lister.
	ErrBadResponse = errors.New("antientropy: inconsistent answer")
)
