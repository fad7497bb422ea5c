package store

import (
	"fmt"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// keyFilter answers "certainly not stored" for record keys, so that the
// write of a new key (most replica merges and mints of fresh keys) skips
// the badger read that would only find nothing: a miss walks the
// memtables' skiplists and the level tables, the costliest part of a
// replica's merge of a new key (issue 16, docs/bench/replmerge.md).
//
// It is a Bloom filter over the records' badger keys, by the hash the
// store computes anyway (shardFor): it may say "maybe" for a key that is
// absent (then badger is read, as without it), never "no" for a key that
// is stored. That holds because every record enters badger through a
// queued op (setOp), and submit adds the key before queuing any write that
// creates it, while Open seeds the filter from the key index, which holds
// an entry for every record (index.go), before any write. Deleted keys stay
// in the filter: a stale "maybe" only costs the read.
//
// Each key sets filterProbes bits within one 64-bit word, so a lookup
// costs one cache miss per part. A part holds up to its capacity of keys
// at filterBitsPerKey; past that a part twice the size is added and new
// keys go there (parts are never dropped, so a lookup asks each: there are
// few, as capacities double).
type keyFilter struct {
	mu    sync.Mutex                   // serializes growth
	parts atomic.Pointer[[]*bloomPart] // copy-on-grow; never shrinks
}

const (
	filterBitsPerKey = 16
	filterProbes     = 4
	// filterMinKeys is the capacity of the first part of an empty store
	// (128 KiB): large enough that a store of millions of keys grown from
	// empty asks a handful of parts, each adding its false positives.
	filterMinKeys = 1 << 16
)

type bloomPart struct {
	words []atomic.Uint64
	keys  atomic.Int64 // keys added
	cap   int64
}

func newBloomPart(capKeys int64) *bloomPart {
	nw := (capKeys*filterBitsPerKey + 63) / 64
	return &bloomPart{words: make([]atomic.Uint64, nw), cap: capKeys}
}

// wordMask returns the index of h's word in p and the bits h sets there:
// the word from h's high 32 bits, the bits from its low 24 (4 × 6).
func (p *bloomPart) wordMask(h uint64) (int, uint64) {
	i := int((h >> 32) * uint64(len(p.words)) >> 32)
	var m uint64
	for j := range filterProbes {
		m |= 1 << ((h >> (6 * j)) & 63)
	}
	return i, m
}

// newKeyFilter returns an empty filter sized for n keys.
func newKeyFilter(n int64) *keyFilter {
	f := &keyFilter{}
	parts := []*bloomPart{newBloomPart(max(n, filterMinKeys))}
	f.parts.Store(&parts)
	return f
}

// add records that the key of hash h may be stored.
func (f *keyFilter) add(h uint64) {
	parts := *f.parts.Load()
	p := parts[len(parts)-1]
	i, m := p.wordMask(h)
	if p.words[i].Load()&m != m {
		p.words[i].Or(m)
	}
	if p.keys.Add(1) > p.cap {
		f.grow(p)
	}
}

// grow adds a part twice as large as full, unless another goroutine did.
func (f *keyFilter) grow(full *bloomPart) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := *f.parts.Load()
	if parts[len(parts)-1] != full {
		return
	}
	next := append(parts[:len(parts):len(parts)], newBloomPart(2*full.cap))
	f.parts.Store(&next)
}

// mayHave reports whether the key of hash h may be stored; false means it
// certainly is not.
func (f *keyFilter) mayHave(h uint64) bool {
	for _, p := range *f.parts.Load() {
		i, m := p.wordMask(h)
		if p.words[i].Load()&m == m {
			return true
		}
	}
	return false
}

// seedKeyFilter builds s.keys from the key index, before any write (Open).
// It leaves s.keys nil, so that every lookup reads badger, when there is
// no index to seed from (a read-only open of a format-1 directory) or the
// store is read-only (it writes nothing).
func (s *Store) seedKeyFilter() error {
	if s.readOnlyOpen.Load() || s.noIndex.Load() {
		return nil
	}
	var hashes []uint64
	unreadable := false
	if !s.opts.InMemory {
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIndex}})
			defer it.Close()
			rk := make([]byte, 0, recordHeaderLen+64)
			for it.Rewind(); it.Valid(); it.Next() {
				k, err := indexItem(it.Item())
				if err != nil {
					// Its record, if any, must never be taken for
					// absent: go without the filter.
					unreadable = true
					return nil
				}
				rk = appendRecordKey(rk[:0], k)
				_, h := s.shardFor(rk)
				hashes = append(hashes, h)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed the key filter of %q: %w", s.opts.Dir, err)
		}
	}
	if unreadable {
		return nil
	}
	n := int64(len(hashes))
	f := newKeyFilter(n + n/4) // room for a quarter more before a part is added
	for _, h := range hashes {
		f.add(h)
	}
	s.keys = f
	return nil
}
