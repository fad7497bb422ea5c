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
//
// Its memory is bounded (Options.KeyFilterSize): when a new part would
// take the parts past the bound, the filter turns off for good and
// releases them, and every lookup answers "maybe" (badger is read, as
// without a filter). So a store of more keys than the bound covers, or a
// client writing unique keys without end, costs reads again but never
// more memory than the bound.
type keyFilter struct {
	mu    sync.Mutex                   // serializes growth
	parts atomic.Pointer[[]*bloomPart] // copy-on-grow; emptied when off
	// off says the filter outgrew its bound: every key may be stored.
	// mayHave reads it after the parts, so a key added (or not) while it
	// turned off is never answered "absent".
	off   atomic.Bool
	bytes int64 // the parts' size, under mu
	limit int64 // the bound on bytes
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

// partBytes is the size of a part of capKeys keys.
func partBytes(capKeys int64) int64 { return (capKeys*filterBitsPerKey + 63) / 64 * 8 }

// newKeyFilter returns an empty filter sized for n keys whose parts may
// take up to limit bytes, or nil when its first part would not fit.
func newKeyFilter(n, limit int64) *keyFilter {
	capKeys := max(n, filterMinKeys)
	if partBytes(capKeys) > limit {
		return nil
	}
	f := &keyFilter{bytes: partBytes(capKeys), limit: limit}
	parts := []*bloomPart{newBloomPart(capKeys)}
	f.parts.Store(&parts)
	return f
}

// add records that the key of hash h may be stored.
func (f *keyFilter) add(h uint64) {
	if f.off.Load() {
		return
	}
	parts := *f.parts.Load()
	if len(parts) == 0 {
		return // turned off since the check
	}
	p := parts[len(parts)-1]
	i, m := p.wordMask(h)
	if p.words[i].Load()&m != m {
		p.words[i].Or(m)
	}
	if p.keys.Add(1) > p.cap {
		f.grow(p)
	}
}

// grow adds a part twice as large as full, unless another goroutine did,
// or turns the filter off when that part would pass the bound.
func (f *keyFilter) grow(full *bloomPart) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := *f.parts.Load()
	if len(parts) == 0 || parts[len(parts)-1] != full {
		return
	}
	if size := partBytes(2 * full.cap); f.bytes+size > f.limit {
		// Off before the parts go: a lookup that finds them gone then
		// sees off (mayHave reads it last).
		f.off.Store(true)
		f.parts.Store(&[]*bloomPart{})
		f.bytes = 0
		return
	}
	next := append(parts[:len(parts):len(parts)], newBloomPart(2*full.cap))
	f.bytes += partBytes(2 * full.cap)
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
	return f.off.Load()
}

// size returns the bytes the filter holds (0 once off).
func (f *keyFilter) size() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}

// seedKeyFilter builds s.keys from the key index, before any write (Open).
// It leaves s.keys nil, so that every lookup reads badger, when there is
// no index to seed from (a read-only open of a format-1 directory) or the
// store is read-only (it writes nothing).
func (s *Store) seedKeyFilter() error {
	if s.readOnlyOpen.Load() || s.noIndex.Load() {
		return nil
	}
	limit := s.opts.keyFilterSize()
	if limit < 0 {
		return nil
	}
	// The most keys a filter within the bound is built for (with a
	// quarter's room): past them there is none, and the hashes gathered
	// so far (8 bytes a key) are not held any longer.
	most := limit * 8 / filterBitsPerKey * 4 / 5
	var hashes []uint64
	unreadable, tooMany := false, false
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
				if int64(len(hashes)) >= most {
					tooMany = true
					return nil
				}
				hashes = append(hashes, h)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed the key filter of %q: %w", s.opts.Dir, err)
		}
	}
	if unreadable || tooMany {
		return nil
	}
	n := int64(len(hashes))
	f := newKeyFilter(n+n/4, limit) // room for a quarter more before a part is added
	if f == nil {
		return nil // more keys than the bound covers: no filter
	}
	for _, h := range hashes {
		f.add(h)
	}
	s.keys = f
	return nil
}
