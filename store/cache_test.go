package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// --- cacheShard unit tests ---

func hashOf(key string) uint64 { return xxhash.Sum64String(key) }

// shardProblem returns what is wrong with c's internal bookkeeping, or "".
// It does not lock anything: the caller owns c.
func shardProblem(c *cacheShard) string {
	if c.limit == 0 {
		if len(c.ents) != 0 || len(c.idx) != 0 || c.bytes != 0 {
			return fmt.Sprintf("cache off but holds %d entries, %d in the index, %d bytes", len(c.ents), len(c.idx), c.bytes)
		}
		return ""
	}
	if n := indexed(c); n != len(c.ents) {
		return fmt.Sprintf("%d entries, %d in the index", len(c.ents), n)
	}
	if len(c.idx) != 0 && (len(c.idx)&(len(c.idx)-1) != 0 || len(c.ents)*4 > len(c.idx)*3) {
		return fmt.Sprintf("index of %d slots for %d entries", len(c.idx), len(c.ents))
	}
	var sum int64
	for i := range c.ents {
		e := &c.ents[i]
		if j := c.lookup(e.hash); j != i {
			return fmt.Sprintf("entry %d (%q) indexed at %d", i, e.key, j)
		}
		if e.absent && e.val != nil {
			return fmt.Sprintf("absent entry %q holds %q", e.key, e.val)
		}
		sum += entryCharge(e.key, e.val)
	}
	if sum != c.bytes {
		return fmt.Sprintf("bytes %d, entries charge %d", c.bytes, sum)
	}
	if c.bytes > c.limit {
		return fmt.Sprintf("bytes %d over limit %d", c.bytes, c.limit)
	}
	if c.hand < 0 || c.hand > len(c.ents) {
		return fmt.Sprintf("hand %d out of [0, %d]", c.hand, len(c.ents))
	}
	return ""
}

func checkShard(t *testing.T, c *cacheShard) {
	t.Helper()
	if p := shardProblem(c); p != "" {
		t.Fatal(p)
	}
}

// indexed counts the index's used slots, checking that each is reached
// from its home slot by probing (no empty slot in between).
func indexed(c *cacheShard) int {
	n := 0
	for i, s := range c.idx {
		if s.pos == 0 {
			continue
		}
		if j, ok := c.find(s.hash); !ok || j != i {
			return -1
		}
		n++
	}
	return n
}

// peek looks key up without setting its clock bit.
func peek(c *cacheShard, h uint64, key string) (val []byte, absent, ok bool) {
	i := c.lookup(h)
	if i < 0 || string(c.ents[i].key) != key {
		return nil, false, false
	}
	return c.ents[i].val, c.ents[i].absent, true
}

// wantHit checks that key is cached with val (absent when val is nil).
func wantHit(t *testing.T, c *cacheShard, h uint64, key string, val []byte) {
	t.Helper()
	v, absent, ok := c.get(h, []byte(key))
	switch {
	case !ok:
		t.Fatalf("%q: miss, want %q", key, val)
	case val == nil && !absent:
		t.Fatalf("%q: cached %q, want absent", key, v)
	case val != nil && (absent || v == nil || !bytes.Equal(v, val)):
		t.Fatalf("%q: cached %q (absent %v), want %q", key, v, absent, val)
	}
}

func wantMiss(t *testing.T, c *cacheShard, h uint64, key string) {
	t.Helper()
	if v, absent, ok := c.get(h, []byte(key)); ok {
		t.Fatalf("%q: cached %q (absent %v), want a miss", key, v, absent)
	}
}

func TestCacheShardSetGet(t *testing.T) {
	var c cacheShard
	c.init(1 << 20)
	a, b, e := hashOf("a"), hashOf("b"), hashOf("e")
	wantMiss(t, &c, a, "a")

	c.set(a, []byte("a"), []byte("1"), false)
	wantHit(t, &c, a, "a", []byte("1"))
	c.set(b, []byte("b"), nil, true)
	wantHit(t, &c, b, "b", nil)
	c.set(e, []byte("e"), []byte{}, false) // empty, not absent
	wantHit(t, &c, e, "e", []byte{})
	checkShard(t, &c)

	c.set(a, []byte("a"), []byte("22"), false)
	wantHit(t, &c, a, "a", []byte("22"))
	c.set(a, []byte("a"), []byte("ignored"), true) // a delete drops the value
	wantHit(t, &c, a, "a", nil)
	c.set(b, []byte("b"), []byte("333"), false)
	wantHit(t, &c, b, "b", []byte("333"))
	checkShard(t, &c)
	if len(c.ents) != 3 {
		t.Fatalf("%d entries, want 3", len(c.ents))
	}
	if want := entryCharge("a", nil) + entryCharge("b", []byte("333")) + entryCharge("e", nil); c.bytes != want {
		t.Fatalf("bytes %d, want %d", c.bytes, want)
	}
	wantMiss(t, &c, hashOf("zz"), "zz")
}

// TestCacheShardEvict: over the limit, the clock hand evicts entries not
// used since it last passed, gives used ones a second chance, and the
// accounting stays exact.
func TestCacheShardEvict(t *testing.T) {
	key := func(i int) string { return fmt.Sprintf("k%02d", i) }
	val := func(i int) []byte { return fmt.Appendf(nil, "v%02d", i) }
	per := entryCharge(key(0), val(0))
	var c cacheShard
	c.init(10 * per) // exactly ten entries
	for i := range 10 {
		c.set(hashOf(key(i)), []byte(key(i)), val(i), false)
	}
	checkShard(t, &c)
	if len(c.ents) != 10 || c.bytes != 10*per {
		t.Fatalf("%d entries, %d bytes; want 10, %d", len(c.ents), c.bytes, 10*per)
	}
	// The sets above marked nothing used (a fresh entry starts unused);
	// mark k00 used: the sweep spares it and takes k01.
	wantHit(t, &c, hashOf(key(0)), key(0), val(0))
	c.set(hashOf(key(10)), []byte(key(10)), val(10), false)
	checkShard(t, &c)
	for i, want := range map[int]bool{0: true, 1: false, 2: true, 10: true} {
		if _, _, ok := peek(&c, hashOf(key(i)), key(i)); ok != want {
			t.Fatalf("after one eviction, %s cached = %v, want %v", key(i), ok, want)
		}
	}
	if len(c.ents) != 10 {
		t.Fatalf("%d entries after one eviction, want 10", len(c.ents))
	}

	// Many more keys, some read back at once: the shard stays at ten
	// entries, exactly accounted, and never serves a wrong value.
	for i := 11; i < 100; i++ {
		c.set(hashOf(key(i)), []byte(key(i)), val(i), false)
		if i%3 == 0 {
			wantHit(t, &c, hashOf(key(i)), key(i), val(i))
		}
		checkShard(t, &c)
		if len(c.ents) != 10 {
			t.Fatalf("after %s: %d entries, want 10", key(i), len(c.ents))
		}
		for j := range i + 1 {
			if v, _, ok := peek(&c, hashOf(key(j)), key(j)); ok && !bytes.Equal(v, val(j)) {
				t.Fatalf("%s cached as %q", key(j), v)
			}
		}
	}
	// A value growing in place (to the largest cached size) also evicts
	// to make room, and the grown entry, just used, stays.
	big := bytes.Repeat([]byte("x"), int(c.limit/cacheMaxShare-cacheEntryOverhead)-len(key(99)))
	c.set(hashOf(key(99)), []byte(key(99)), big, false)
	checkShard(t, &c)
	wantHit(t, &c, hashOf(key(99)), key(99), big)
	if len(c.ents) != 9 {
		t.Fatalf("%d entries after a value grew by %d bytes, want 9", len(c.ents), len(big)-len(val(99)))
	}
}

// TestCacheShardTooLarge: a value over limit/cacheMaxShare is not cached
// and removes its key's older entry (of any size), and only that key's.
func TestCacheShardTooLarge(t *testing.T) {
	var c cacheShard
	c.init(1024)
	share := c.limit / cacheMaxShare // 128
	h := hashOf("big")
	fits := make([]byte, share-cacheEntryOverhead-int64(len("big")))
	c.set(h, []byte("big"), fits, false)
	wantHit(t, &c, h, "big", fits) // exactly the share: cached
	c.set(hashOf("other"), []byte("other"), []byte("o"), false)
	c.set(h, []byte("big"), append(fits, 'x'), false)
	wantMiss(t, &c, h, "big")
	wantHit(t, &c, hashOf("other"), "other", []byte("o"))
	checkShard(t, &c)
	if len(c.ents) != 1 {
		t.Fatalf("%d entries, want 1", len(c.ents))
	}

	// A small value, then a large one: the small one must not stay.
	c.set(h, []byte("big"), []byte("s"), false)
	wantHit(t, &c, h, "big", []byte("s"))
	c.set(h, []byte("big"), make([]byte, 500), false)
	wantMiss(t, &c, h, "big")
	checkShard(t, &c)

	// fill of a large value caches nothing either.
	c.fill(h, []byte("big"), make([]byte, 500), false, c.gen)
	wantMiss(t, &c, h, "big")

	// A large value of a key whose hash slot another key holds leaves
	// that key's (correct) entry alone.
	c.set(h, []byte("twin"), []byte("t"), false)
	c.set(h, []byte("big"), make([]byte, 500), false)
	wantHit(t, &c, h, "twin", []byte("t"))
	wantMiss(t, &c, h, "big")
	checkShard(t, &c)
}

func TestCacheShardRemove(t *testing.T) {
	var c cacheShard
	c.init(1 << 20)
	for _, k := range []string{"a", "b", "c", "d"} {
		c.set(hashOf(k), []byte(k), []byte("v"+k), false)
	}
	c.remove(hashOf("b"), []byte("b"))
	wantMiss(t, &c, hashOf("b"), "b")
	c.remove(hashOf("b"), []byte("b"))   // again: no-op
	c.remove(hashOf("zz"), []byte("zz")) // never cached
	c.remove(hashOf("a"), []byte("x"))   // a's slot, another key: a stays
	c.remove(hashOf("d"), []byte("d"))   // the last entry
	for _, k := range []string{"a", "c"} {
		wantHit(t, &c, hashOf(k), k, []byte("v"+k))
	}
	checkShard(t, &c)
	if len(c.ents) != 2 || c.bytes != entryCharge("a", []byte("va"))+entryCharge("c", []byte("vc")) {
		t.Fatalf("%d entries, %d bytes", len(c.ents), c.bytes)
	}
	c.remove(hashOf("a"), []byte("a"))
	c.remove(hashOf("c"), []byte("c"))
	checkShard(t, &c)
	if len(c.ents) != 0 || c.bytes != 0 || c.hand != 0 {
		t.Fatalf("emptied: %d entries, %d bytes, hand %d", len(c.ents), c.bytes, c.hand)
	}
}

// TestCacheShardDropPrefix: dropPrefix removes exactly the keys with the
// prefix, whatever their order in the clock slice, and gives memory back.
func TestCacheShardDropPrefix(t *testing.T) {
	var c cacheShard
	c.init(1 << 20)
	want := map[string]bool{} // key -> survives dropping partition 1
	add := func(bkey []byte, survives bool) {
		c.set(xxhash.Sum64(bkey), bkey, []byte("v"), false)
		want[string(bkey)] = survives
	}
	for i := range 200 {
		// Runs of dropped keys, at the end of the slice too.
		p := uint32(1)
		if i%7 == 3 || i%11 == 0 {
			p = 2
		}
		if i%50 == 17 {
			p = 256 // shares no prefix with partition 1
		}
		add(appendRecordKey(nil, Key{Partition: p, Hash: uint64(i), Key: []byte("k")}), p != 1)
	}
	add(partitionPrefix(1), false) // the prefix itself is a key with the prefix
	add(metaKey("m"), true)
	add(appendHintKey(nil, "n1", Key{Partition: 1, Key: []byte("k")}), true)
	add([]byte{prefixRecord, 0, 0, 0}, true) // shorter than the prefix
	capBefore := cap(c.ents)

	c.dropPrefix(partitionPrefix(1))
	checkShard(t, &c)
	n := 0
	for k, survives := range want {
		_, _, ok := peek(&c, xxhash.Sum64String(k), k)
		if ok != survives {
			t.Fatalf("key %x cached = %v after the drop, want %v", k, ok, survives)
		}
		if survives {
			n++
		}
	}
	if len(c.ents) != n {
		t.Fatalf("%d entries, want %d", len(c.ents), n)
	}
	if cap(c.ents) >= capBefore/2 {
		t.Fatalf("clock slice capacity %d (was %d) for %d entries: not given back", cap(c.ents), capBefore, n)
	}

	c.dropPrefix(nil) // everything
	checkShard(t, &c)
	if len(c.ents) != 0 || c.bytes != 0 {
		t.Fatalf("after dropping all: %d entries, %d bytes", len(c.ents), c.bytes)
	}
}

// TestCacheShardFill: a value read from badger is cached only if nothing
// changed the shard since the read began, and never over a cached value.
func TestCacheShardFill(t *testing.T) {
	var c cacheShard
	c.init(1 << 20)
	a := hashOf("a")

	gen0 := c.gen
	c.set(hashOf("x"), []byte("x"), []byte("1"), false) // a commit meanwhile
	c.fill(a, []byte("a"), []byte("old"), false, gen0)
	wantMiss(t, &c, a, "a")

	c.fill(a, []byte("a"), []byte("v"), false, c.gen)
	wantHit(t, &c, a, "a", []byte("v"))
	c.fill(a, []byte("a"), []byte("older"), false, c.gen) // cached is newer
	wantHit(t, &c, a, "a", []byte("v"))

	for _, tc := range []struct {
		name   string
		change func()
	}{
		{"remove of another key", func() { c.remove(hashOf("zz"), []byte("zz")) }},
		{"remove of an uncached key", func() { c.remove(hashOf("a"), []byte("other")) }},
		{"drop of another prefix", func() { c.dropPrefix([]byte("nothing")) }},
		{"set of another key", func() { c.set(hashOf("y"), []byte("y"), nil, true) }},
		{"oversized set", func() { c.set(hashOf("y"), []byte("y"), make([]byte, 1<<20), false) }},
	} {
		gen := c.gen
		tc.change()
		c.fill(hashOf("b"), []byte("b"), []byte("stale"), false, gen)
		if _, _, ok := peek(&c, hashOf("b"), "b"); ok {
			t.Fatalf("fill accepted after %s", tc.name)
		}
	}

	c.fill(hashOf("n"), []byte("n"), nil, true, c.gen)
	wantHit(t, &c, hashOf("n"), "n", nil)
	c.fill(hashOf("e"), []byte("e"), []byte{}, false, c.gen)
	wantHit(t, &c, hashOf("e"), "e", []byte{})
	checkShard(t, &c)
}

// TestCacheShardOff: limit 0 (also the zero cacheShard) stores nothing and
// panics on nothing.
func TestCacheShardOff(t *testing.T) {
	var zero, off cacheShard
	off.init(0)
	for _, c := range []*cacheShard{&zero, &off} {
		h := hashOf("a")
		c.set(h, []byte("a"), []byte("v"), false)
		c.set(h, []byte("a"), nil, true)
		c.fill(h, []byte("a"), []byte("v"), false, c.gen)
		wantMiss(t, c, h, "a")
		c.remove(h, []byte("a"))
		c.dropPrefix([]byte("a"))
		c.dropPrefix(nil)
		c.evict()
		checkShard(t, c)
		if len(c.ents) != 0 || c.bytes != 0 {
			t.Fatalf("off: %d entries, %d bytes", len(c.ents), c.bytes)
		}
	}
}

// TestCacheShardSameHash: two keys with the same 64-bit hash share a slot;
// neither ever answers for the other.
func TestCacheShardSameHash(t *testing.T) {
	var c cacheShard
	c.init(1 << 20)
	const h = 42
	c.set(h, []byte("a"), []byte("A"), false)
	wantMiss(t, &c, h, "bb")
	c.set(h, []byte("bb"), []byte("BBB"), false) // replaces a
	wantMiss(t, &c, h, "a")
	wantHit(t, &c, h, "bb", []byte("BBB"))
	checkShard(t, &c)
	if len(c.ents) != 1 || c.bytes != entryCharge("bb", []byte("BBB")) {
		t.Fatalf("%d entries, %d bytes", len(c.ents), c.bytes)
	}

	c.set(h, []byte("a"), nil, true) // an absent a replaces bb
	wantMiss(t, &c, h, "bb")
	wantHit(t, &c, h, "a", nil)
	c.fill(h, []byte("bb"), []byte("B2"), false, c.gen) // fill replaces too
	wantMiss(t, &c, h, "a")
	wantHit(t, &c, h, "bb", []byte("B2"))
	c.remove(h, []byte("a")) // not a's slot any more: bb stays
	wantHit(t, &c, h, "bb", []byte("B2"))
	checkShard(t, &c)

	c.set(h, []byte("bbb"), []byte("prefix"), false) // bb is a prefix of bbb
	c.dropPrefix([]byte("bb"))
	wantMiss(t, &c, h, "bbb")
	wantMiss(t, &c, h, "bb")
	checkShard(t, &c)
}

// TestCacheShardRandom runs random operations, with many hash collisions
// and values near and over the size cap, against a map of what badger
// would hold, checking after each that every cached value is the model's
// and the bookkeeping is exact.
func TestCacheShardRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const nkeys = 40
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%c/%d", 'a'+i%3, i) // prefixes a/, b/, c/
	}
	h := func(i int) uint64 { return uint64(i % 25) } // 15 slots shared by two keys
	type mval struct {
		val    []byte
		absent bool
	}
	model := make([]mval, nkeys) // what badger holds
	for i := range model {
		model[i].absent = true
	}
	newVal := func() mval {
		if r.IntN(5) == 0 {
			return mval{absent: true}
		}
		v := make([]byte, r.IntN(160)) // over the share (250) with the overhead, sometimes
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		return mval{val: v}
	}
	var c cacheShard
	c.init(2000)
	for step := range 5000 {
		i := r.IntN(nkeys)
		k := []byte(keys[i])
		switch op := r.IntN(10); {
		case op < 4: // a commit
			model[i] = newVal()
			c.set(h(i), k, model[i].val, model[i].absent)
		case op < 6: // a read
			if v, absent, ok := c.get(h(i), k); ok && (absent != model[i].absent || !bytes.Equal(v, model[i].val)) {
				t.Fatalf("step %d: %s read %q,%v; model %q,%v", step, k, v, absent, model[i].val, model[i].absent)
			}
		case op < 8: // a miss read from badger, maybe overtaken by commits
			if _, _, ok := c.get(h(i), k); ok {
				break
			}
			gen := c.gen
			read := model[i]
			for range r.IntN(3) {
				j := r.IntN(nkeys)
				model[j] = newVal()
				c.set(h(j), []byte(keys[j]), model[j].val, model[j].absent)
			}
			c.fill(h(i), k, read.val, read.absent, gen)
		case op < 9: // a failed commit
			c.remove(h(i), k)
		default:
			if r.IntN(10) == 0 { // a dropped partition
				p := keys[i][:2]
				for j := range keys {
					if strings.HasPrefix(keys[j], p) {
						model[j] = mval{absent: true}
					}
				}
				c.dropPrefix([]byte(p))
			}
		}
		if p := shardProblem(&c); p != "" {
			t.Fatalf("step %d: %s", step, p)
		}
		for j := range keys {
			if v, absent, ok := peek(&c, h(j), keys[j]); ok && (absent != model[j].absent || !bytes.Equal(v, model[j].val)) {
				t.Fatalf("step %d: %s cached %q,%v; model %q,%v", step, keys[j], v, absent, model[j].val, model[j].absent)
			}
		}
	}
}

// --- store-level tests ---

// checkCacheCoherent checks, with the store idle, that every cached entry
// sits in its key's shard and holds what badger holds.
func checkCacheCoherent(t *testing.T, s *Store) {
	t.Helper()
	type ent struct {
		shard  int
		hash   uint64
		key    string
		val    []byte
		absent bool
	}
	var ents []ent
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		p := shardProblem(&sh.c)
		for _, e := range sh.c.ents {
			ents = append(ents, ent{i, e.hash, string(e.key), e.val, e.absent})
		}
		sh.mu.Unlock()
		if p != "" {
			t.Fatalf("shard %d: %s", i, p)
		}
	}
	for _, e := range ents {
		if h := xxhash.Sum64String(e.key); h != e.hash || int(h&(numShards-1)) != e.shard {
			t.Fatalf("key %x cached in shard %d with hash %x", e.key, e.shard, e.hash)
		}
		_, v, err := s.readBadger([]byte(e.key))
		switch {
		case errors.Is(err, ErrNotFound):
			if !e.absent {
				t.Fatalf("key %x cached as %q, absent in badger", e.key, e.val)
			}
		case err != nil:
			t.Fatal(err)
		case e.absent || !bytes.Equal(v, e.val):
			t.Fatalf("key %x cached as %q (absent %v), badger holds %q", e.key, e.val, e.absent, v)
		}
	}
}

// shardKeys returns n record keys of partition p whose badger keys fall in
// the first nshards key-lock shards, so that many keys share a cache shard.
func shardKeys(p uint32, n, nshards int) []Key {
	var ks []Key
	for i := 0; len(ks) < n; i++ {
		k := Key{Partition: p, Hash: uint64(i), Key: []byte("k" + strconv.Itoa(i))}
		if xxhash.Sum64(appendRecordKey(nil, k))&(numShards-1) < uint64(nshards) {
			ks = append(ks, k)
		}
	}
	return ks
}

// counterVal encodes counter n with n%5*30 bytes of padding, so values
// vary in size and some are too large for a small cache.
func counterVal(n int) []byte {
	return append(strconv.AppendInt(nil, int64(n), 10), strings.Repeat("|", n%5*30+1)...)
}

func parseCounter(b []byte) (int, error) {
	i := bytes.IndexByte(b, '|')
	if i < 0 {
		return 0, fmt.Errorf("counter %q: no padding", b)
	}
	n, err := strconv.Atoi(string(b[:i]))
	if err != nil || n < 1 || !bytes.Equal(b, counterVal(n)) {
		return 0, fmt.Errorf("counter %q malformed", b)
	}
	return n, nil
}

// smallCacheSize leaves each shard room for about eight entries of the
// model test: a shard does not cache a value over 1/cacheMaxShare of its
// budget, so a few KiB in all (a few dozen bytes a shard) would cache
// nothing at all.
const smallCacheSize = numShards * 1536

// TestCacheConcurrentModel: writers increment counters (read-modify-write)
// and readers read them, on 48 keys of two partitions packed into two
// cache shards, while one partition at a time is dropped; every read and
// the final state must match the model (increments since the last drop).
// With a small cache every shard evicts constantly and some values are too
// large to cache; the cache off and at its default size are the controls.
func TestCacheConcurrentModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"small", smallCacheSize},
		{"off", 0},
		{"default", DefaultOptions("").CacheSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, "")
			o.CacheSize = tc.size
			s := openTest(t, o)
			runCacheModel(t, s)
			st := s.Stats()
			t.Logf("%+v", st)
			if st.CacheBytes > tc.size || (tc.size == 0 && (st.CacheEntries != 0 || st.CacheHits != 0)) {
				t.Fatalf("cache of %d bytes: stats %+v", tc.size, st)
			}
			if tc.size > 0 && st.CacheHits == 0 {
				t.Fatalf("no cache hits: %+v", st)
			}
		})
	}
}

func runCacheModel(t *testing.T, s *Store) {
	const (
		perPartition = 24
		writers      = 6
		opsEach      = 500
		readers      = 2
		dropEvery    = 250 // ops of all writers between drop requests
	)
	ctx := t.Context()
	parts := [2]uint32{1, 2}
	type mkey struct {
		k    Key
		part int // index into parts
		// Increments of k since the last drop: started (Update called) and
		// done (Update returned nil). The value is always in [done, started].
		started, done atomic.Int64
	}
	var keys []*mkey
	for pi, p := range parts {
		for _, k := range shardKeys(p, perPartition, 2) {
			keys = append(keys, &mkey{k: k, part: pi})
		}
	}
	// Writers of a partition hold its lock shared; a drop holds it
	// exclusively, so no Update of the partition runs during the drop, as
	// DropPartition requires. Readers do not stop: epoch (odd during a
	// drop) tells them when their read may straddle one.
	var partMu [2]sync.RWMutex
	var epoch [2]atomic.Uint64
	var ops atomic.Int64

	dropReq := make(chan struct{}, 1)
	dropped := make(chan int)
	go func() {
		d := 0
		for range dropReq {
			pi := d % 2
			partMu[pi].Lock()
			epoch[pi].Add(1)
			if err := s.DropPartition(parts[pi]); err != nil {
				t.Errorf("drop: %v", err)
			}
			for _, mk := range keys {
				if mk.part == pi {
					mk.started.Store(0)
					mk.done.Store(0)
				}
			}
			epoch[pi].Add(1)
			partMu[pi].Unlock()
			d++
		}
		dropped <- d
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range opsEach {
				mk := keys[r.IntN(len(keys))]
				noChange := r.IntN(8) == 0
				durable := r.IntN(4) == 0
				partMu[mk.part].RLock()
				lo := mk.done.Load()
				if !noChange {
					mk.started.Add(1)
				}
				_, _, err := s.Update(ctx, mk.k, durable, func(old []byte, found bool) ([]byte, error) {
					n := 0
					if found {
						var err error
						if n, err = parseCounter(old); err != nil {
							return nil, err
						}
					}
					hi := mk.started.Load()
					if !noChange {
						hi-- // our own increment is not in old
					}
					if int64(n) < lo || int64(n) > hi {
						return nil, fmt.Errorf("update saw %d, model [%d, %d]", n, lo, hi)
					}
					if noChange {
						return nil, ErrNoChange
					}
					return counterVal(n + 1), nil
				})
				if err != nil {
					t.Errorf("update %s: %v", mk.k.Key, err)
				} else if !noChange {
					mk.done.Add(1)
				}
				partMu[mk.part].RUnlock()
				if ops.Add(1)%dropEvery == 0 {
					select {
					case dropReq <- struct{}{}:
					default: // a drop is already due
					}
				}
			}
		})
	}

	stop := make(chan struct{})
	var rwg sync.WaitGroup
	var reads atomic.Int64
	for rd := range readers {
		rwg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if reads.Load() > 10*ops.Load() {
					// Pace the readers by the writers, whatever the
					// number of CPUs.
					runtime.Gosched()
					continue
				}
				mk := keys[r.IntN(len(keys))]
				e1 := epoch[mk.part].Load()
				lo := mk.done.Load()
				n := 0
				var err error
				if r.IntN(2) == 0 {
					var v []byte
					if v, err = s.Get(mk.k); err == nil {
						n, err = parseCounter(v)
					}
				} else {
					err = s.View(mk.k, func(v []byte) error {
						var perr error
						n, perr = parseCounter(v)
						return perr
					})
				}
				hi := mk.started.Load()
				e2 := epoch[mk.part].Load()
				if errors.Is(err, ErrNotFound) {
					err = nil
				}
				if err != nil {
					t.Errorf("read %s: %v", mk.k.Key, err)
					return
				}
				if e1 == e2 && e1%2 == 0 && (int64(n) < lo || int64(n) > hi) {
					t.Errorf("read %s = %d, model [%d, %d]", mk.k.Key, n, lo, hi)
					return
				}
				reads.Add(1)
			}
		})
	}

	wg.Wait()
	close(dropReq)
	drops := <-dropped
	close(stop)
	rwg.Wait()
	if t.Failed() {
		return
	}
	if drops == 0 {
		t.Fatal("no partition dropped")
	}
	t.Logf("%d ops, %d drops, %d reads", ops.Load(), drops, reads.Load())

	for pass := range 2 { // the first pass may fill the cache, the second hits it
		for _, mk := range keys {
			want := mk.done.Load()
			v, err := s.Get(mk.k)
			switch {
			case want == 0:
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("pass %d: %s = %q, %v; want not found", pass, mk.k.Key, v, err)
				}
			case err != nil:
				t.Fatalf("pass %d: %s: %v; want %d", pass, mk.k.Key, err, want)
			default:
				if n, err := parseCounter(v); err != nil || int64(n) != want {
					t.Fatalf("pass %d: %s = %q; want %d", pass, mk.k.Key, v, want)
				}
			}
		}
	}
	checkCacheCoherent(t, s)
	if n := s.lockTableSize(); n != 0 {
		t.Fatalf("lock table holds %d keys", n)
	}
}

// TestCacheReopen: what was written (through the cache) reads back the
// same after a reopen, with the cache starting empty.
func TestCacheReopen(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	ctx := t.Context()
	keys := []Key{{Partition: 1, Key: []byte("a")}, {Partition: 1, Key: []byte("empty")}, {Partition: 2, Key: []byte("gone")}}
	want := map[string][]byte{"a": []byte("1"), "empty": {}, "gone": nil}

	s := openTest(t, o)
	for _, k := range keys {
		if _, _, err := s.Update(ctx, k, false, setTo("x")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Update(ctx, k, false, func([]byte, bool) ([]byte, error) { return want[string(k.Key)], nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMeta("m", []byte("meta")); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, what string) {
		t.Helper()
		for _, k := range keys {
			v, err := s.Get(k)
			w := want[string(k.Key)]
			if w == nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s: %s = %q, %v; want not found", what, k.Key, v, err)
				}
				continue
			}
			if err != nil || v == nil || !bytes.Equal(v, w) {
				t.Fatalf("%s: %s = %q, %v; want %q", what, k.Key, v, err, w)
			}
		}
		if v, err := s.GetMeta("m"); err != nil || string(v) != "meta" {
			t.Fatalf("%s: meta = %q, %v", what, v, err)
		}
	}
	check(s, "before close")
	if st := s.Stats(); st.CacheEntries < len(keys) {
		t.Fatalf("stats before close %+v: want at least %d entries", st, len(keys))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		s = openTest(t, o)
		if st := s.Stats(); st.CacheEntries != 0 || st.CacheBytes != 0 || st.CacheHits != 0 || st.CacheMisses != 0 {
			t.Fatalf("reopened cache not empty: %+v", st)
		}
		check(s, fmt.Sprintf("reopen %d, cold", round))
		if st := s.Stats(); st.CacheMisses != uint64(len(keys)+1) || st.CacheHits != 0 {
			t.Fatalf("after cold reads: %+v", st)
		}
		check(s, fmt.Sprintf("reopen %d, warm", round))
		// Change a value through the cache; the next reopen must see it.
		if _, _, err := s.Update(ctx, keys[0], false, incr); err != nil {
			t.Fatal(err)
		}
		want["a"] = []byte(strconv.Itoa(round + 2))
		check(s, fmt.Sprintf("reopen %d, updated", round))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCacheStats: the cache counters and sizes follow a simple sequence,
// with the cache on and off.
func TestCacheStats(t *testing.T) {
	k := Key{Partition: 3, Hash: 9, Key: []byte("k")}
	bk, mk := appendRecordKey(nil, k), metaKey("m")
	charge := func(key []byte, val string) int64 { return entryCharge(string(key), []byte(val)) }
	big := Key{Partition: 3, Hash: 10, Key: []byte("big")}
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", on), func(t *testing.T) {
			o := testOptions(t, "")
			if !on {
				o.CacheSize = 0
			}
			s := openTest(t, o)
			ctx := t.Context()
			var hits, misses uint64
			step := func(what string, dh, dm uint64, entries int, bytes int64) {
				t.Helper()
				if on {
					hits += dh
					misses += dm
				} else {
					misses += dh + dm // every read goes to badger
					entries, bytes = 0, 0
				}
				st := s.Stats()
				if st.CacheHits != hits || st.CacheMisses != misses || st.CacheEntries != entries || st.CacheBytes != bytes {
					t.Fatalf("after %s: %+v; want hits %d, misses %d, entries %d, bytes %d",
						what, st, hits, misses, entries, bytes)
				}
			}
			step("open", 0, 0, 0, 0)
			if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			step("get of an absent key", 0, 1, 1, charge(bk, ""))
			if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			step("second get", 1, 0, 1, charge(bk, ""))
			if _, _, err := s.Update(ctx, k, false, setTo("v")); err != nil {
				t.Fatal(err)
			}
			step("update", 1, 0, 1, charge(bk, "v"))
			if v, err := s.Get(k); err != nil || string(v) != "v" {
				t.Fatalf("get = %q, %v", v, err)
			}
			if err := s.View(k, func(v []byte) error {
				if string(v) != "v" {
					return fmt.Errorf("view saw %q", v)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			step("get and view", 2, 0, 1, charge(bk, "v"))
			if _, _, err := s.Update(ctx, k, false, func([]byte, bool) ([]byte, error) { return nil, ErrNoChange }); err != nil {
				t.Fatal(err)
			}
			step("no-change update", 1, 0, 1, charge(bk, "v"))
			if _, err := s.GetMeta("m"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			step("get meta", 0, 1, 2, charge(bk, "v")+charge(mk, ""))
			if err := s.PutMeta("m", []byte("x")); err != nil {
				t.Fatal(err)
			}
			step("put meta", 1, 0, 2, charge(bk, "v")+charge(mk, "x"))

			// A value over a shard's share is neither kept by its commit
			// nor by the reads that follow: each read misses.
			val := make([]byte, o.CacheSize/numShards/cacheMaxShare+1)
			if _, _, err := s.Update(ctx, big, false, func([]byte, bool) ([]byte, error) { return val, nil }); err != nil {
				t.Fatal(err)
			}
			step("update of a large value", 0, 1, 2, charge(bk, "v")+charge(mk, "x"))
			for range 2 {
				if v, err := s.Get(big); err != nil || len(v) != len(val) {
					t.Fatalf("get large: %d bytes, %v", len(v), err)
				}
			}
			step("gets of a large value", 0, 2, 2, charge(bk, "v")+charge(mk, "x"))

			if err := s.DropPartition(k.Partition); err != nil {
				t.Fatal(err)
			}
			step("drop", 0, 0, 1, charge(mk, "x"))
			if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			step("get after the drop", 0, 1, 2, charge(mk, "x")+charge(bk, ""))
			checkCacheCoherent(t, s)
		})
	}
}

// TestCacheSizeOption: Validate refuses a negative CacheSize; 0 and sizes
// too small for any shard to cache anything open fine.
func TestCacheSizeOption(t *testing.T) {
	for _, size := range []int64{-1, -64 << 20, 0, 1, numShards - 1, numShards, 4 << 10} {
		o := testOptions(t, "")
		o.CacheSize = size
		err := o.Validate()
		if size < 0 {
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("CacheSize %d: Validate() = %v, want ErrInvalidOptions", size, err)
			}
			if _, err := Open(o); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("CacheSize %d: Open = %v, want ErrInvalidOptions", size, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("CacheSize %d: %v", size, err)
		}
		s := openTest(t, o)
		k := Key{Key: []byte("k")}
		for range 2 {
			if _, _, err := s.Update(t.Context(), k, false, incr); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := s.Get(k); err != nil || string(v) != "2" {
			t.Fatalf("CacheSize %d: get = %q, %v", size, v, err)
		}
		if st := s.Stats(); st.CacheBytes > size {
			t.Fatalf("CacheSize %d: %+v", size, st)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if o := DefaultOptions(""); o.CacheSize != 64<<20 {
		t.Fatalf("default CacheSize %d", o.CacheSize)
	}
}

// TestUpdateHintReturnsCopies: the old and new bytes UpdateHint returns
// are the caller's, as Update's are: modifying them changes neither the
// store nor its cache.
func TestUpdateHintReturnsCopies(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	ctx := t.Context()
	k := Key{Key: []byte("k")}
	if _, _, err := s.UpdateHint(ctx, "n1", k, false, setTo("abc")); err != nil {
		t.Fatal(err)
	}
	old, nv, err := s.UpdateHint(ctx, "n1", k, false, func([]byte, bool) ([]byte, error) { return nil, ErrNoChange })
	if err != nil || string(old) != "abc" || string(nv) != "abc" {
		t.Fatalf("no change: %q %q %v", old, nv, err)
	}
	old[0] = 'X'
	if v, err := s.GetHint("n1", k); err != nil || string(v) != "abc" {
		t.Fatalf("after modifying the no-change result: %q %v", v, err)
	}
	old, _, err = s.UpdateHint(ctx, "n1", k, false, setTo("def"))
	if err != nil || string(old) != "abc" {
		t.Fatalf("update: %q %v", old, err)
	}
	old[0] = 'Y'
	old, _, err = s.UpdateHint(ctx, "n1", k, false, setTo("ghi"))
	if err != nil || string(old) != "def" {
		t.Fatalf("update: %q %v", old, err)
	}
	old[0] = 'Z'
	if v, err := s.GetHint("n1", k); err != nil || string(v) != "ghi" {
		t.Fatalf("after modifying the results: %q %v", v, err)
	}
	checkCacheCoherent(t, s)
}

// TestCacheDropRacingCommit: a DropPartition cannot run between a batch's
// badger write and its cache update, which would leave a dropped value
// cached (served by Get, absent from Scan, and resurrected by the next
// read-modify-write). DropPartition's contract forbids concurrent writes
// to the partition, but a violation must not make the cache incoherent.
func TestCacheDropRacingCommit(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	k := Key{Partition: 1, Key: []byte("k")}
	bk := appendRecordKey(nil, k)
	sh, _ := s.shardFor(bk)

	unblock := blockCommits(t, s)
	written := queueUpdate(t, s, k, setTo("v"), 1, "the write to queue")
	// Hold the key's shard: the committer writes the batch to badger and
	// then waits for the shard to update the cache.
	sh.mu.Lock()
	var once sync.Once
	release := func() { once.Do(sh.mu.Unlock) }
	defer release()
	unblock()
	waitFor(t, "the write to reach badger", func() bool {
		_, _, err := s.readBadger(bk)
		return err == nil
	})
	if s.commitMu.TryLock() {
		s.commitMu.Unlock()
		t.Fatal("commitMu is free between the batch's badger write and its cache update: a DropPartition can run in between")
	}
	drop := make(chan error, 1)
	go func() { drop <- s.DropPartition(1) }()
	release()
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if err := <-drop; err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after the drop = %q, %v", v, err)
	}
	checkCacheCoherent(t, s)
}
