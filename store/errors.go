package store

import "errors"

// Errors returned by the store. Callers match them with errors.Is; most are
// wrapped with context.
var (
	// ErrNotFound: the record, hint or meta value does not exist.
	ErrNotFound = errors.New("store: not found")

	// ErrNoChange is returned by an UpdateFunc to say "write nothing". Update
	// itself then returns a nil error (see Update).
	ErrNoChange = errors.New("store: no change")

	// ErrClosed: the store was closed (or Close was called a second time).
	ErrClosed = errors.New("store: closed")

	// ErrKeyTooLarge: a record key longer than MaxKeyLen, a hint target
	// longer than MaxTargetLen or a meta name longer than MaxMetaNameLen.
	ErrKeyTooLarge = errors.New("store: key too large")

	// ErrValueTooLarge: a value longer than Options.MaxValueSize.
	ErrValueTooLarge = errors.New("store: value too large")

	// ErrReservedName: a meta name starting with ReservedMetaPrefix, which
	// the store keeps for itself (FormatMetaName).
	ErrReservedName = errors.New("store: reserved meta name")

	// ErrEmptyName: an empty hint target or meta name.
	ErrEmptyName = errors.New("store: empty name")

	// ErrCorrupt: bytes read from disk in a part of the layout the store
	// owns (a key in one of its prefixes, a hint value header) are malformed.
	// Scans skip such entries and count them in Stats.Corrupt instead of
	// returning this error.
	ErrCorrupt = errors.New("store: corrupt entry")

	// ErrFailed: a group commit failed (an I/O error, or a disk that filled
	// up behind the reserve's back). The store is then fail-stop: the writes
	// of that batch and of every later batch return an error wrapping
	// ErrFailed and the cause, and may or may not be on disk; reads keep
	// working. Reopen the store to recover.
	ErrFailed = errors.New("store: commit failed")

	// ErrDiskFull: a write was refused because the data directory's file
	// system is (nearly) full: the space available is below the reserve
	// kept for badger's own work (Options.MinFreeBytes), or the store was
	// opened read-only because the disk was full. Nothing was written;
	// reads keep working, and writes are accepted again by themselves once
	// space is freed (Store.State says so). A commit that failed with
	// ENOSPC returns an error matching both ErrFailed and ErrDiskFull.
	ErrDiskFull = errors.New("store: disk full")

	// ErrFormat: the data directory was written in a storage format this
	// version does not know (a newer one); see FormatVersion.
	ErrFormat = errors.New("store: unknown storage format")

	// ErrInvalidOptions wraps every error returned by Options.Validate.
	ErrInvalidOptions = errors.New("store: invalid options")
)
