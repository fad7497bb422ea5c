package store

import (
	"bytes"
	"math/bits"
)

// The value cache keeps the latest committed value of recently written or
// read badger keys, so that a read-modify-write (every replica merge, every
// coordinator mint) and a Get of a hot key skip badger's read path (a read
// transaction: a wait on the commit watermark and a search of every
// memtable and level that may hold the key).
//
// Coherence. Each key-lock shard owns the cache entries of its keys, under
// its mutex. The committer updates a key's entry in the same critical
// section that clears the key's pending write (commitBatch), after badger
// committed it and before any waiter is woken, so:
//
//   - a writer holding a key's lock that finds no pending write finds
//     either the latest committed value in the cache or nothing there,
//     and then badger holds the latest committed value;
//   - a reader never sees a cached value older than one a returned Update
//     wrote.
//
// A value read from badger after a miss is added only if no commit or drop
// touched the shard since the read began (the shard's gen did not move),
// so a slow reader cannot put back a value that a commit replaced
// meanwhile. DropPartition removes the partition's entries once badger
// dropped them, under commitMu, which the committer holds from a batch's
// write until its cache update, so a drop never falls in between; a failed
// commit removes its keys' entries (badger's state is then unknown).
//
// Cached keys and values are the committed ops' own slices, which the store
// never modifies: the cache copies nothing on insert, and readers copy what
// they hand out.
//
// Memory touched per lookup. With 100,000 random keys nothing of the cache
// is in the CPU's caches when a request comes, so a lookup costs one cache
// miss per distinct line it reads: that was 22% of a replica's CPU under
// GETs (issue 16). A lookup reads one slot of the index (hash and position,
// 16 bytes), the entry, and the key bytes; the value it returns is read
// next by the caller. The replica's records and values read from badger
// are stored with the key and the value in one allocation (UpdateAppend,
// readBadger), so the key comparison brings in the value's first bytes too.

// cacheEntryOverhead approximates what one entry costs beyond its key and
// value bytes, on average over the growth of the slices: its entry in the
// clock slice (64 bytes, the slice a third larger than its length) and
// its index slot (16 bytes, the index 3/8 to 3/4 full). It is charged
// against Options.CacheSize.
const cacheEntryOverhead = 112

// cacheMaxShare: a value larger than 1/cacheMaxShare of a shard's budget is
// not cached (it would evict too many others); its key's entry is removed.
const cacheMaxShare = 8

// cacheEntry is one cached key.
type cacheEntry struct {
	hash   uint64 // xxhash64 of key, its slot's hash in cacheShard.idx
	key    []byte // shared and immutable
	val    []byte // shared and immutable; nil when absent
	absent bool   // the key is known to hold nothing
	ref    bool   // clock bit: read or written since the hand last passed
}

// idxSlot is one slot of a shard's index: a key's hash and 1 + the
// position of its entry in cacheShard.ents (0: an empty slot).
type idxSlot struct {
	hash uint64
	pos  int32
}

// minIndex is the smallest index of a shard with entries: a power of two.
const minIndex = 16

// cacheShard is the cache of one key-lock shard: an open-addressing index
// (linear probing, by the key's 64-bit hash) into a slice of entries that
// a clock hand sweeps to evict. Guarded by shard.mu.
//
// The index is keyed by the key's hash (computed anyway to pick the
// shard), not by the key: a probe then compares integers in one array
// instead of following pointers. The entry's key is compared once found;
// two keys with the same hash share a slot, the later one evicting the
// other (with random keys, about one pair in 10^9 among 100,000 keys).
type cacheShard struct {
	idx   []idxSlot // len a power of two, at most 3/4 full; nil when empty
	shift uint      // 64 - log2(len(idx))
	ents  []cacheEntry
	hand  int
	bytes int64
	limit int64 // 0: caching is off
	// gen counts changes (commits, removals, drops) to the shard; a fill
	// from badger is refused if gen moved since the read began.
	gen uint64
}

func (c *cacheShard) init(limit int64) {
	c.limit = limit
}

func entryCharge[K string | []byte](key K, val []byte) int64 {
	return int64(len(key) + len(val) + cacheEntryOverhead)
}

// home is h's first slot in the index (Fibonacci hashing: the shard's
// keys share their low hash bits, which picked the shard).
func (c *cacheShard) home(h uint64) int {
	return int((h * 0x9E3779B97F4A7C15) >> c.shift)
}

// find returns the index slot of hash h, or the empty slot where it would
// go (ok false). The index must not be nil.
func (c *cacheShard) find(h uint64) (slot int, ok bool) {
	mask := len(c.idx) - 1
	for i := c.home(h); ; i = (i + 1) & mask {
		s := &c.idx[i]
		if s.pos == 0 {
			return i, false
		}
		if s.hash == h {
			return i, true
		}
	}
}

// lookup returns the position in ents of the entry of hash h, or -1.
func (c *cacheShard) lookup(h uint64) int {
	if c.idx == nil {
		return -1
	}
	i, ok := c.find(h)
	if !ok {
		return -1
	}
	return int(c.idx[i].pos) - 1
}

// rehash rebuilds the index with n slots (a power of two, more than 4/3
// of the entries), or drops it with n 0 (no entries).
func (c *cacheShard) rehash(n int) {
	if n == 0 {
		c.idx, c.shift = nil, 0
		return
	}
	c.idx = make([]idxSlot, n)
	c.shift = uint(64 - bits.TrailingZeros(uint(n)))
	for p := range c.ents {
		i, _ := c.find(c.ents[p].hash)
		c.idx[i] = idxSlot{hash: c.ents[p].hash, pos: int32(p + 1)}
	}
}

// unindex empties index slot i, moving later slots of its probe run back
// (backward-shift deletion, so no tombstones are needed).
func (c *cacheShard) unindex(i int) {
	mask := len(c.idx) - 1
	for {
		c.idx[i] = idxSlot{}
		j := i
		for {
			j = (j + 1) & mask
			if c.idx[j].pos == 0 {
				return
			}
			// The slot at j may move to i unless its home lies
			// cyclically in (i, j].
			k := c.home(c.idx[j].hash)
			if (i <= j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
				c.idx[i] = c.idx[j]
				i = j
				break
			}
		}
	}
}

// get returns the cached value of key, whose hash is h; ok is false on a
// miss. val is shared: the caller must not modify it.
func (c *cacheShard) get(h uint64, key []byte) (val []byte, absent, ok bool) {
	p := c.lookup(h)
	if p < 0 {
		return nil, false, false
	}
	e := &c.ents[p]
	if !bytes.Equal(e.key, key) {
		return nil, false, false
	}
	e.ref = true
	return e.val, e.absent, true
}

// set records val (absent when del) as key's latest committed value. It
// takes ownership of key and val, which nobody may modify afterwards.
func (c *cacheShard) set(h uint64, key []byte, val []byte, del bool) {
	if c.limit == 0 {
		return
	}
	c.gen++
	if del {
		val = nil
	}
	charge := entryCharge(key, val)
	if charge > c.limit/cacheMaxShare {
		c.remove(h, key)
		return
	}
	if p := c.lookup(h); p >= 0 {
		// The same key, or another key with the same hash: replace it.
		// The new key slice is the one that came with val (often one
		// allocation with it, see the file comment).
		e := &c.ents[p]
		c.bytes += charge - entryCharge(e.key, e.val)
		e.key, e.val, e.absent, e.ref = key, val, del, true
	} else {
		if (len(c.ents)+1)*4 > len(c.idx)*3 {
			c.rehash(max(minIndex, 2*len(c.idx)))
		}
		i, _ := c.find(h)
		c.ents = append(c.ents, cacheEntry{hash: h, key: key, val: val, absent: del})
		c.idx[i] = idxSlot{hash: h, pos: int32(len(c.ents))}
		c.bytes += charge
	}
	c.evict()
}

// fill adds a value read from badger, unless the shard changed since gen0
// was read or the key is already cached (then the cached value is newer or
// the same). It takes ownership of key and val.
func (c *cacheShard) fill(h uint64, key []byte, val []byte, absent bool, gen0 uint64) {
	if c.limit == 0 || c.gen != gen0 {
		return
	}
	if p := c.lookup(h); p >= 0 && bytes.Equal(c.ents[p].key, key) {
		return
	}
	c.set(h, key, val, absent)
}

// remove forgets key, whose hash is h.
func (c *cacheShard) remove(h uint64, key []byte) {
	if c.limit == 0 {
		return
	}
	c.gen++
	if p := c.lookup(h); p >= 0 && bytes.Equal(c.ents[p].key, key) {
		c.removeAt(p)
	}
}

// removeAt drops entry p, moving the last entry into its place.
func (c *cacheShard) removeAt(p int) {
	e := &c.ents[p]
	c.bytes -= entryCharge(e.key, e.val)
	i, _ := c.find(e.hash)
	c.unindex(i)
	last := len(c.ents) - 1
	if p != last {
		c.ents[p] = c.ents[last]
		i, _ := c.find(c.ents[p].hash)
		c.idx[i].pos = int32(p + 1)
	}
	c.ents[last] = cacheEntry{}
	c.ents = c.ents[:last]
	if c.hand >= len(c.ents) {
		c.hand = 0
	}
}

// evict sweeps the clock hand until the shard is within its limit: an
// entry used since the last sweep gets a second chance, others go.
func (c *cacheShard) evict() {
	for c.bytes > c.limit && len(c.ents) > 0 {
		if c.hand >= len(c.ents) {
			c.hand = 0
		}
		e := &c.ents[c.hand]
		if e.ref {
			e.ref = false
			c.hand++
			continue
		}
		c.removeAt(c.hand)
	}
	// Give back the memory after a large shrink (a dropped partition), so
	// an idle cache does not pin its peak.
	if cap(c.ents) > 64 && len(c.ents) < cap(c.ents)/4 {
		c.ents = append([]cacheEntry(nil), c.ents...)
	}
	if len(c.idx) > 4*minIndex && len(c.ents)*8 < len(c.idx) {
		c.rehash(len(c.idx) / 4)
	}
	if len(c.ents) == 0 && c.idx != nil {
		c.rehash(0)
	}
}

// dropPrefix forgets every key starting with prefix.
func (c *cacheShard) dropPrefix(prefix []byte) {
	if c.limit == 0 {
		return
	}
	c.gen++
	for i := 0; i < len(c.ents); {
		if bytes.HasPrefix(c.ents[i].key, prefix) {
			c.removeAt(i) // the last entry moved to i: look at i again
			continue
		}
		i++
	}
	c.evict()
}
