package store

import "strings"

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
// Cached values are the committed ops' own slices, which the store never
// modifies: the cache copies nothing on insert, and readers copy what they
// hand out.

// cacheEntryOverhead approximates what one entry costs beyond its key and
// value bytes: the map slot, the entry in the clock slice and the key's
// string header. It is charged against Options.CacheSize.
const cacheEntryOverhead = 96

// cacheMaxShare: a value larger than 1/cacheMaxShare of a shard's budget is
// not cached (it would evict too many others); its key's entry is removed.
const cacheMaxShare = 8

// cacheEntry is one cached key.
type cacheEntry struct {
	hash   uint64 // xxhash64 of key, its index in cacheShard.idx
	key    string
	val    []byte // shared and immutable; nil when absent
	absent bool   // the key is known to hold nothing
	ref    bool   // clock bit: read or written since the hand last passed
}

// cacheShard is the cache of one key-lock shard: a map into a slice of
// entries that a clock hand sweeps to evict. Guarded by shard.mu.
//
// The map is keyed by the key's 64-bit hash (computed anyway to pick the
// shard), not by the key: a probe then compares integers instead of
// following string pointers, which cost a cache miss each on a map of
// 100,000 keys. The entry's key is compared once found; two keys with the
// same hash share a slot, the later one evicting the other (with random
// keys, about one pair in 10^9 among 100,000 keys).
type cacheShard struct {
	idx   map[uint64]int32
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
	if limit > 0 {
		c.idx = make(map[uint64]int32)
	}
}

func entryCharge(key string, val []byte) int64 {
	return int64(len(key) + len(val) + cacheEntryOverhead)
}

// get returns the cached value of key, whose hash is h; ok is false on a
// miss. val is shared: the caller must not modify it.
func (c *cacheShard) get(h uint64, key []byte) (val []byte, absent, ok bool) {
	if c.limit == 0 {
		return nil, false, false
	}
	i, ok := c.idx[h]
	if !ok {
		return nil, false, false
	}
	e := &c.ents[i]
	if e.key != string(key) {
		return nil, false, false
	}
	e.ref = true
	return e.val, e.absent, true
}

// set records val (absent when del) as key's latest committed value. It
// takes ownership of val, which nobody may modify afterwards.
func (c *cacheShard) set(h uint64, key []byte, val []byte, del bool) {
	if c.limit == 0 {
		return
	}
	c.gen++
	if del {
		val = nil
	}
	charge := int64(len(key) + len(val) + cacheEntryOverhead)
	if charge > c.limit/cacheMaxShare {
		c.remove(h, key)
		return
	}
	if i, ok := c.idx[h]; ok {
		e := &c.ents[i]
		if e.key != string(key) { // another key with the same hash: replace it
			c.bytes += int64(len(key) - len(e.key))
			e.key = string(key)
		}
		c.bytes += int64(len(val) - len(e.val))
		e.val, e.absent, e.ref = val, del, true
	} else {
		c.idx[h] = int32(len(c.ents))
		c.ents = append(c.ents, cacheEntry{hash: h, key: string(key), val: val, absent: del})
		c.bytes += charge
	}
	c.evict()
}

// fill adds a value read from badger, unless the shard changed since gen0
// was read or the key is already cached (then the cached value is newer or
// the same).
func (c *cacheShard) fill(h uint64, key []byte, val []byte, absent bool, gen0 uint64) {
	if c.limit == 0 || c.gen != gen0 {
		return
	}
	if i, ok := c.idx[h]; ok && c.ents[i].key == string(key) {
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
	if i, ok := c.idx[h]; ok && c.ents[i].key == string(key) {
		c.removeAt(int(i))
	}
}

// removeAt drops entry i, moving the last entry into its slot.
func (c *cacheShard) removeAt(i int) {
	e := &c.ents[i]
	c.bytes -= entryCharge(e.key, e.val)
	delete(c.idx, e.hash)
	last := len(c.ents) - 1
	if i != last {
		c.ents[i] = c.ents[last]
		c.idx[c.ents[i].hash] = int32(i)
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
	// Give back the slice's memory after a large shrink (a dropped
	// partition), so an idle cache does not pin its peak.
	if cap(c.ents) > 64 && len(c.ents) < cap(c.ents)/4 {
		c.ents = append([]cacheEntry(nil), c.ents...)
	}
}

// dropPrefix forgets every key starting with prefix.
func (c *cacheShard) dropPrefix(prefix []byte) {
	if c.limit == 0 {
		return
	}
	c.gen++
	p := string(prefix)
	for i := 0; i < len(c.ents); {
		if strings.HasPrefix(c.ents[i].key, p) {
			c.removeAt(i) // the last entry moved to i: look at i again
			continue
		}
		i++
	}
	c.evict()
}
