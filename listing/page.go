package listing

import (
	"bytes"

	"github.com/quorumkv/quorumkv/vclock"
)

// Builder collects a replica's page while it walks its store in ring order
// from the requested position: call Offer for each record, and Add for
// each one Offer takes, until Offer says stop. The zero Builder is not
// usable: set Limit and Scan.
type Builder struct {
	// Prefix skips keys that do not start with it.
	Prefix []byte
	// Limit is the entries the page should hold; it holds more only to
	// finish a run of keys sharing the last hash.
	Limit int
	// Scan is the most records the page reads, matching or not.
	Scan int
	// Bytes, when > 0, also ends the page once its keys and sets reach it.
	Bytes int

	entries, scanned, size int
	last                   uint64
	full                   bool
	next                   uint64
	stopped                bool
}

// Offer considers the next record of the walk, with hash h and key key.
// take says to read its set and Add it; stop says the page ended before
// this record (its hash is the page's Next), and the walk must stop.
func (b *Builder) Offer(h uint64, key []byte) (take, stop bool) {
	if b.scanned > 0 && h != b.last && (b.full || b.scanned >= b.Scan) {
		b.next, b.stopped = h, true
		return false, true
	}
	b.scanned++
	b.last = h
	return bytes.HasPrefix(key, b.Prefix), false
}

// Add counts an entry of n bytes that Offer took.
func (b *Builder) Add(n int) {
	b.entries++
	b.size += n
	if b.entries >= b.Limit || (b.Bytes > 0 && b.size >= b.Bytes) {
		b.full = true
	}
}

// End returns how far the page reached: every record with hash below next
// was considered, or, with done, every record to the end of the walk.
func (b *Builder) End() (next uint64, done bool) {
	return b.next, !b.stopped
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
