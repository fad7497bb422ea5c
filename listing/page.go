package listing

import (
	"bytes"

	"github.com/quorumkv/quorumkv/vclock"
)

// Builder collects a replica's page while it walks its store's records of
// one partition in byte order of their keys, from the page's start (or its
// prefix, if that comes later): call Offer for each record, and Add for
// each one the page keeps, until Offer says stop. The zero Builder is not
// usable: set Limit and Scan.
type Builder struct {
	// Prefix: the walk ends at the first key without it (the walk starts
	// at or after the prefix, so every later key lacks it too).
	Prefix []byte
	// Limit is the entries the page should hold.
	Limit int
	// Scan is the most records the page reads.
	Scan int
	// Bytes, when > 0, also ends the page once its keys and sets reach it.
	Bytes int
	// Keep is the partition's start hash: a page never ends just before a
	// key of that hash, because a cursor of that value means the start of
	// the partition (see the package doc).
	Keep uint64

	entries, scanned, size int
	full                   bool
	nextKey                []byte
	nextHash               uint64
	stopped                bool
}

// Offer considers the next record of the walk, with hash h and key key,
// and reports whether the walk must stop before it: the page is full (the
// record is where the next page starts: End) or the prefix is passed.
// Otherwise the record is counted as read and the caller may Add it.
func (b *Builder) Offer(h uint64, key []byte) (stop bool) {
	if !bytes.HasPrefix(key, b.Prefix) {
		return true
	}
	if b.scanned > 0 && h != b.Keep && (b.full || b.scanned >= b.Scan) {
		b.nextKey, b.nextHash, b.stopped = bytes.Clone(key), h, true
		return true
	}
	b.scanned++
	return false
}

// Add counts an entry of n bytes that the page keeps.
func (b *Builder) Add(n int) {
	b.entries++
	b.size += n
	if b.entries >= b.Limit || (b.Bytes > 0 && b.size >= b.Bytes) {
		b.full = true
	}
}

// End returns how far the page reached: every record before nextKey (of
// hash nextHash) was considered, or, with done, every record to the end of
// the walk.
func (b *Builder) End() (nextKey []byte, nextHash uint64, done bool) {
	return b.nextKey, b.nextHash, !b.stopped
}

// Scanned is how many records the page read.
func (b *Builder) Scanned() int { return b.scanned }

// Strip returns s without its values' data: what a page carries, since
// the merge needs only dots, contexts and tombstone flags. s is not
// modified.
func Strip(s vclock.Set) vclock.Set {
	out := vclock.Set{Context: s.Context, Siblings: make([]vclock.Sibling, len(s.Siblings))}
	copy(out.Siblings, s.Siblings)
	for i := range out.Siblings {
		out.Siblings[i].Value.Data = nil
	}
	return out
}

// seekKey is where a page's walk starts: at start, or at prefix if that
// comes later (the keys before it cannot match).
func seekKey(start, prefix []byte) []byte {
	if bytes.Compare(prefix, start) > 0 {
		return prefix
	}
	return start
}
