package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// UpdateFunc computes a record's new value from its current one. old is the
// latest committed or queued value (nil and found=false when absent); it is
// valid only during the call and must not be modified. Return the new value
// (which the store copies; an empty non-nil slice is an empty value), (nil,
// nil) to delete, or ErrNoChange to write nothing. Any other error aborts
// the update and is returned by Update. fn runs with the key's lock held:
// keep it short, and do not call the Store's write methods from it (two
// such calls waiting for each other's keys would deadlock).
type UpdateFunc func(old []byte, found bool) (new []byte, err error)

// shard is one slice of the key-lock table, with the value cache of its
// keys (cache.go).
type shard struct {
	mu   sync.Mutex
	m    map[string]*keyEntry // by badger key; present while refs > 0 or pending != nil
	free []*keyEntry          // recycled entries (see forget); guarded by mu
	c    cacheShard
}

// keyEntry serializes the writers of one badger key and remembers its
// latest queued, not yet committed write.
//
// The key's lock is held, refs and pending are guarded by shard.mu. A
// writer that finds the lock free takes it in the critical section in
// which it reads the key's current value (lockKey), and releases it in
// the one in which it marks its write pending (submit): no channel
// operation and no further critical section when writers do not collide.
// One that finds it held waits on wake; a holder releasing the lock while
// others wait hands it over instead (held stays set) by putting a token
// on wake, which the first waiter to receive it takes along with the
// lock. So a token is on wake exactly when the lock is held by nobody in
// particular, in hand-over, and refs then counts only waiters.
type keyEntry struct {
	held    bool
	wake    chan struct{} // capacity 1: the hand-over token
	refs    int           // goroutines holding or waiting for the lock
	pending *op
}

// op is one queued write. Its key and val are owned by the store and never
// modified after queuing; readers of a pending value share them.
type op struct {
	seq  uint64
	done chan struct{} // capacity 1: a wake-up token for wait (commit.go)
	err  error         // the commit's outcome; read once fin is set
	// fin (committed), waiting (the owner sleeps on done) and lead (the
	// owner was handed the lead) are guarded by Store.qmu (commit.go).
	fin, waiting, lead bool
	key                []byte
	val                []byte // nil with del
	del                bool
	durable            bool
	// existed: the key had a value before this write (the key index
	// changes only when a record is created or deleted: index.go).
	existed bool

	sh    *shard
	hash  uint64 // xxhash64 of key: picks sh, keys the value cache
	entry *keyEntry

	// target names the hint target for the hint index ("" for records and
	// meta); the committer reads the creation time from val's header.
	target string

	// cost is what the disk guard charged for the write (see admit).
	cost int64
}

// updateSpec describes one read-modify-write in the badger value space.
type updateSpec struct {
	// decide maps the current raw badger value to the new one. It returns
	// ErrNoChange to write nothing. The slice it returns becomes the
	// store's: nobody may modify it afterwards.
	decide func(raw []byte, found bool) ([]byte, error)
	// appendFn, when set, is decide instead: an Appender given room, the
	// empty buffer after the key (UpdateAppend), its value checked by
	// checkValue. Held as fields rather than wrapped in a decide closure,
	// which cost an allocation per write (issue 16).
	appendFn Appender
	room     []byte
	// noRewrite: on ErrNoChange return at once, even when the value seen
	// was still queued or a durable no-op asks for a sync (see update).
	noRewrite bool
	// target is copied into the op for the hint index.
	target string
	// noOld: the caller does not want the previous value (updateResult.old
	// stays nil), so it is not copied.
	noOld bool
}

type updateResult struct {
	old     []byte // copy of the raw value seen; nil if absent
	changed bool   // decide asked for a write (not ErrNoChange)
}

// maxFree bounds a shard's list of recycled keyEntries: enough for the
// keys one shard has in flight at a time under load, so a write of a key
// nobody else is writing takes an entry (with its lock channel) from the
// list instead of allocating two objects.
const maxFree = 32

// forget removes e, the entry of bkey, from sh's table and recycles it.
// The caller holds sh.mu and has checked refs == 0 and pending == nil.
//
// An entry leaves the table only with no goroutine holding or waiting for
// its lock (refs == 0) and no queued write (pending == nil). pending is
// always the key's latest queued write and is cleared when that write
// commits, after every earlier write of the key (queue order), so by then
// no queued op refers to the entry either: nothing does, and it can be
// reused for any key. The list is the shard's own, not a process-wide
// sync.Pool: a lock channel made inside a testing/synctest bubble must
// not be used by a store outside it.
func (sh *shard) forget(e *keyEntry, bkey []byte) {
	delete(sh.m, string(bkey))
	if len(sh.free) < maxFree {
		sh.free = append(sh.free, e)
	}
}

// newEntry returns a recycled or new keyEntry. The caller holds sh.mu.
func (sh *shard) newEntry() *keyEntry {
	if n := len(sh.free); n > 0 {
		e := sh.free[n-1]
		sh.free[n-1] = nil
		sh.free = sh.free[:n-1]
		return e
	}
	return &keyEntry{wake: make(chan struct{}, 1)}
}

// shardFor returns bkey's shard and hash.
func (s *Store) shardFor(bkey []byte) (*shard, uint64) {
	h := xxhash.Sum64(bkey)
	return &s.shards[h&(numShards-1)], h
}

// keySnapshot is what lockKey read of a key in the critical section in
// which it took the key's lock: the key's latest queued write, else its
// cached committed value (hit) and the cache's generation for a fill.
type keySnapshot struct {
	pending *op
	val     []byte
	absent  bool
	hit     bool
	gen     uint64
}

// read fills ks from e and the cache of sh. The caller holds sh.mu.
func (ks *keySnapshot) read(sh *shard, e *keyEntry, h uint64, bkey []byte) {
	ks.pending = e.pending
	if ks.pending == nil {
		ks.val, ks.absent, ks.hit = sh.c.get(h, bkey)
	}
	ks.gen = sh.c.gen
}

// lockKey acquires the lock of bkey, whose shard is sh and hash h,
// honoring ctx and Close while it waits, and reads the key's current
// state (see keySnapshot) once it holds it.
func (s *Store) lockKey(ctx context.Context, sh *shard, h uint64, bkey []byte) (*keyEntry, keySnapshot, error) {
	var ks keySnapshot
	sh.mu.Lock()
	e := sh.m[string(bkey)]
	if e == nil {
		e = sh.newEntry()
		sh.m[string(bkey)] = e
	}
	e.refs++
	if !e.held {
		e.held = true
		ks.read(sh, e, h, bkey)
		sh.mu.Unlock()
		return e, ks, nil
	}
	sh.mu.Unlock()
	select {
	case <-e.wake:
		sh.mu.Lock()
		ks.read(sh, e, h, bkey)
		sh.mu.Unlock()
		return e, ks, nil
	case <-ctx.Done():
		s.abandonKey(sh, e, bkey)
		return nil, ks, fmt.Errorf("wait for key lock: %w", ctx.Err())
	case <-s.closing:
		s.abandonKey(sh, e, bkey)
		return nil, ks, ErrClosed
	}
}

// unlockKey releases the lock of bkey, held by the caller.
func (s *Store) unlockKey(sh *shard, e *keyEntry, bkey []byte) {
	sh.mu.Lock()
	sh.release(e, bkey)
	sh.mu.Unlock()
}

// release releases e's lock, held by the caller, handing it to a waiter
// if there is one. The caller holds sh.mu.
func (sh *shard) release(e *keyEntry, bkey []byte) {
	e.refs--
	if e.refs > 0 {
		e.wake <- struct{}{} // never blocks: no token while a holder has the lock
		return
	}
	e.held = false
	if e.pending == nil {
		sh.forget(e, bkey)
	}
}

// abandonKey is a waiter for e's lock giving up. If it was the last one
// and the lock was handed over meanwhile, it takes the token back and
// frees the lock; otherwise a remaining waiter takes the token.
func (s *Store) abandonKey(sh *shard, e *keyEntry, bkey []byte) {
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 {
		// held with refs 0: in hand-over to the waiter leaving.
		select {
		case <-e.wake:
		default:
		}
		e.held = false
		if e.pending == nil {
			sh.forget(e, bkey)
		}
	}
	sh.mu.Unlock()
}

// update runs one read-modify-write of bkey and waits for its commit.
//
// Writers of one key are serialized by the key's lock. The lock is held while
// the current value is read and decide runs, and released as soon as the
// write is queued: the next writer of the key then starts from the queued
// value (keyEntry.pending), so a hot key costs one decide per write, not one
// commit per write. Queued writes commit in queue order, so the later write
// always lands last. Each caller still returns only after its own write
// committed (and synced when required).
//
// When decide returns ErrNoChange, nothing new is written, but the caller's
// acknowledgement must not promise more than is true: if the value seen was
// still queued, or durable is asked in a store that does not sync every
// commit, the value seen is queued again so that the call returns only once
// it is committed and synced. This costs one extra write in those rare cases.
func (s *Store) update(ctx context.Context, bkey []byte, durable bool, spec updateSpec) (updateResult, error) {
	if err := s.enter(); err != nil {
		return updateResult{}, err
	}
	defer s.exit()
	res, o, release, err := s.submit(ctx, bkey, durable, spec)
	if release != nil {
		defer release()
	}
	if err != nil || o == nil {
		return res, err
	}
	return res, s.wait(o)
}

// submit does the first half of update: it runs spec.decide under the key's
// lock and queues the write. It returns the queued op for wait, or nil if
// nothing was queued. With Options.holdLocks the key is still
// locked on return and release unlocks it; otherwise release is nil. The
// caller must have called enter.
func (s *Store) submit(ctx context.Context, bkey []byte, durable bool, spec updateSpec) (res updateResult, queued *op, release func(), err error) {
	if err := ctx.Err(); err != nil {
		return updateResult{}, nil, nil, err
	}
	if err := s.failed(); err != nil {
		return updateResult{}, nil, nil, err
	}
	sh, h := s.shardFor(bkey)
	// The current value: the latest queued write, else the latest
	// committed one (cached, or read from badger). With the key locked and
	// nothing queued for it, no commit of this key can land meanwhile.
	// cur is shared with the queue or the cache: nobody modifies it.
	e, ks, err := s.lockKey(ctx, sh, h, bkey)
	if err != nil {
		return updateResult{}, nil, nil, err
	}
	locked := true
	defer func() {
		if locked {
			s.unlockKey(sh, e, bkey)
		}
	}()
	p := ks.pending
	var cur []byte
	found := false
	switch {
	case p != nil:
		if !p.del {
			cur, found = p.val, true
		}
	case ks.hit:
		s.cacheHits.Add(1)
		if !ks.absent {
			cur, found = ks.val, true
		}
	default:
		cur, err = s.readThrough(sh, h, bkey, ks.gen)
		switch {
		case err == nil:
			found = true
		case errors.Is(err, ErrNotFound):
		default:
			return updateResult{}, nil, nil, err
		}
	}

	newRaw, derr := s.decide(&spec, cur, found)
	if !spec.noOld {
		res.old = cloneBytes(cur)
	}
	o := &op{key: bkey, durable: durable, existed: found, sh: sh, hash: h, entry: e, target: spec.target}
	switch {
	case errors.Is(derr, ErrNoChange):
		if spec.noRewrite || (p == nil && (!durable || s.opts.Sync || s.opts.InMemory)) {
			return res, nil, nil, nil
		}
		// Queue the value seen again (see above). cur is immutable, so
		// the op may share it.
		if p != nil {
			o.val, o.del = p.val, p.del
		} else {
			o.val, o.del = cur, !found
		}
	case derr != nil:
		return updateResult{}, nil, nil, derr
	default:
		if newRaw == nil {
			o.del = true
		} else {
			if len(newRaw) > s.maxValue+hintHeaderLen {
				return updateResult{}, nil, nil, fmt.Errorf("value of %d bytes (max %d): %w", len(newRaw), s.maxValue, ErrValueTooLarge)
			}
			o.val = newRaw
		}
		res.changed = true
	}
	if o.cost, err = s.admit(bkey, o.val, o.del); err != nil {
		return updateResult{}, nil, nil, err
	}
	if !found && !o.del && s.keys != nil && bkey[0] == prefixRecord {
		// Before the write can be seen: a key the filter lacks must be
		// absent (keyfilter.go).
		s.keys.add(h)
	}

	o.done = make(chan struct{}, 1)
	// Marked pending before it is queued (a commit clears the mark of
	// the op it committed only), and queued before the key is unlocked
	// (so a key's writes queue in the order they read): one critical
	// section for the three.
	locked = false
	sh.mu.Lock()
	e.pending = o
	s.enqueue(o)
	if s.opts.holdLocks {
		sh.mu.Unlock()
		return res, o, func() { s.unlockKey(sh, e, bkey) }, nil
	}
	sh.release(e, bkey)
	sh.mu.Unlock()
	return res, o, nil, nil
}

// decide runs spec's decide, or its appendFn.
func (s *Store) decide(spec *updateSpec, cur []byte, found bool) ([]byte, error) {
	if spec.appendFn == nil {
		return spec.decide(cur, found)
	}
	nv, err := spec.appendFn.AppendTo(spec.room, cur, found)
	return s.checkValue(nv, err, "value")
}

// cloneBytes copies b, keeping nil as nil and empty as empty.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// enqueue appends o to the write queue and numbers it. Its owner commits
// it, or waits for its commit, with wait (commit.go).
func (s *Store) enqueue(o *op) {
	s.qmu.Lock()
	s.lastSeq++
	o.seq = s.lastSeq
	s.queue = append(s.queue, o)
	s.qmu.Unlock()
}

// failed returns the sticky commit error, if any.
func (s *Store) failed() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.failErr
}

// callUpdate runs an UpdateFunc and refuses a new value (what: a value or
// a hint) longer than Options.MaxValueSize.
func (s *Store) callUpdate(fn UpdateFunc, old []byte, found bool, what string) ([]byte, error) {
	nv, err := fn(old, found)
	return s.checkValue(nv, err, what)
}

// checkValue passes on an update function's result, refusing a value
// larger than the store takes (what names it in the error).
func (s *Store) checkValue(nv []byte, err error, what string) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if len(nv) > s.maxValue {
		return nil, fmt.Errorf("%s of %d bytes (max %d): %w", what, len(nv), s.maxValue, ErrValueTooLarge)
	}
	return nv, nil
}

// Update atomically replaces the record at k with fn's result; see
// UpdateFunc for fn's contract.
//
// Concurrent Updates of one key are serialized and none is lost: fn sees the
// latest committed or queued value. Updates of different keys share group
// commits. Update returns only after its write was committed, and synced to
// disk when Options.Sync or durable is true (durable is the per-request DW).
//
// ctx is honored while waiting for the key's lock: if Update returns ctx's
// error (wrapped), fn did not run and nothing was written. Once fn has run
// and its write is queued, Update waits for the commit whatever ctx says, so
// a nil error always means "written" and an ErrFailed error means "unknown".
//
// It returns a copy of the previous value (nil if absent) and the slice fn
// returned (nil if deleted; the store wrote its own copy, so the caller may
// keep or modify both). When fn returns ErrNoChange, Update returns (old,
// old, nil).
func (s *Store) Update(ctx context.Context, k Key, durable bool, fn UpdateFunc) (old, new []byte, err error) {
	if err := validateKey(k); err != nil {
		return nil, nil, err
	}
	var nv []byte
	res, err := s.update(ctx, appendRecordKey(nil, k), durable, updateSpec{
		decide: func(raw []byte, found bool) ([]byte, error) {
			var err error
			if nv, err = s.callUpdate(fn, raw, found, "value"); err != nil || nv == nil {
				return nil, err
			}
			return append(make([]byte, 0, len(nv)), nv...), nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	if !res.changed {
		return res.old, res.old, nil
	}
	return res.old, nv, nil
}

// UpdateOwned is Update for a caller that hands its new value over: the
// slice fn returns becomes the store's own, written, queued and cached
// without a copy, so fn must return a slice it allocated for this call
// and nobody may modify it afterwards (reading it stays fine: the store
// never modifies a value either). The previous value is
// not copied out either. It reports whether fn asked for a write (false
// when fn returned ErrNoChange); its other promises are Update's.
//
// The replica's record writes use it: each builds its record in a fresh
// buffer, and copying 100 bytes into another one per replica per write
// was one of the write path's allocations (docs/bench/writepath-store.md).
func (s *Store) UpdateOwned(ctx context.Context, k Key, durable bool, fn UpdateFunc) (changed bool, err error) {
	return s.UpdateAppend(ctx, k, durable, 0, AppendFunc(func(_, old []byte, found bool) ([]byte, error) { return fn(old, found) }))
}

// AppendFunc is an UpdateFunc that builds the new value by appending to
// dst, an empty buffer of the store's (see UpdateAppend), or in a slice
// it allocated for the call; either way the slice returned becomes the
// store's and nobody may modify it afterwards. old is as in UpdateFunc.
type AppendFunc func(dst, old []byte, found bool) (new []byte, err error)

// AppendTo calls f.
func (f AppendFunc) AppendTo(dst, old []byte, found bool) ([]byte, error) { return f(dst, old, found) }

// Appender is the update of UpdateAppend and UpdateAppendQueued: an
// AppendFunc, or a value with the method (which, unlike a method value
// taken as an AppendFunc, costs no allocation to pass; the replica's
// record update is one).
type Appender interface {
	AppendTo(dst, old []byte, found bool) (new []byte, err error)
}

// UpdateAppend is UpdateOwned whose fn may append the new value to dst,
// an empty buffer with room for sizeHint bytes that follows the record's
// key in one allocation: the write then allocates once for both, and
// the value cache, which compares a key before handing out its value,
// finds the value next to the key (cache.go). A value longer than
// sizeHint still works (append moves it elsewhere). The replica's record
// writes use it, with the size of the record they are about to write.
func (s *Store) UpdateAppend(ctx context.Context, k Key, durable bool, sizeHint int, fn Appender) (changed bool, err error) {
	if err := validateKey(k); err != nil {
		return false, err
	}
	bkey, spec := s.appendSpec(k, sizeHint, fn)
	res, err := s.update(ctx, bkey, durable, spec)
	return res.changed, err
}

// appendSpec returns the badger key of k, followed in its allocation by
// room for sizeHint bytes, and the update of an AppendFunc writing there.
func (s *Store) appendSpec(k Key, sizeHint int, fn Appender) ([]byte, updateSpec) {
	n := recordHeaderLen + len(k.Key)
	buf := appendRecordKey(make([]byte, 0, n+max(sizeHint, 0)), k)
	return buf[:n:n], updateSpec{noOld: true, appendFn: fn, room: buf[n:n]}
}

// UpdateOwnedQueued is UpdateOwned split at the queue: it returns as soon
// as fn ran and its write is queued for the next group commit, and commit
// waits for that commit (and its sync when asked) and returns its
// outcome. The caller must call commit exactly once whenever err is nil
// (it is a no-op when nothing was queued); until then the write is not
// acknowledged to anyone, but later writers of the key already start from
// it, as they do from any queued write.
//
// The write is committed when commit is called (the caller may then lead
// the group commit, commit.go), or earlier, by another writer that leads
// one meanwhile.
//
// The coordinator uses it to send a minted write to the other replicas
// while its own copy commits, so that the write waits for one group commit
// (and, with --sync, one fsync) at a time instead of two in sequence
// (issue 16).
func (s *Store) UpdateOwnedQueued(ctx context.Context, k Key, durable bool, fn UpdateFunc) (changed bool, commit func() error, err error) {
	return s.UpdateAppendQueued(ctx, k, durable, 0, AppendFunc(func(_, old []byte, found bool) ([]byte, error) { return fn(old, found) }))
}

// UpdateAppendQueued is UpdateOwnedQueued with UpdateAppend's fn and
// sizeHint.
func (s *Store) UpdateAppendQueued(ctx context.Context, k Key, durable bool, sizeHint int, fn Appender) (changed bool, commit func() error, err error) {
	if err := validateKey(k); err != nil {
		return false, nil, err
	}
	if err := s.enter(); err != nil {
		return false, nil, err
	}
	bkey, spec := s.appendSpec(k, sizeHint, fn)
	res, o, release, err := s.submit(ctx, bkey, durable, spec)
	if err != nil || o == nil {
		if release != nil {
			release()
		}
		s.exit()
		if err != nil {
			return false, nil, err
		}
		return res.changed, noCommit, nil
	}
	return res.changed, func() error {
		defer s.exit()
		if release != nil {
			defer release()
		}
		return s.wait(o)
	}, nil
}

// noCommit is UpdateOwnedQueued's commit when nothing was queued.
func noCommit() error { return nil }
