package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// HintStats describes the committed hints for one target.
type HintStats struct {
	Count int   // number of hints
	Bytes int64 // their badger keys plus values, header included
	// Oldest is when the oldest hint was first written (a merge into an
	// existing hint keeps its time). Zero when Count is 0, or when a hint
	// with a corrupt header is present (ExpireHints removes those first).
	Oldest time.Time
}

// hintTarget is the in-memory index of one target's committed hints,
// rebuilt by a scan at Open and kept current by the committer.
type hintTarget struct {
	entries map[string]hintEntry // by badger key
	bytes   int64
	oldest  int64 // Unix nanoseconds; valid unless stale
	stale   bool  // the oldest entry was removed: recompute on demand
}

type hintEntry struct {
	created int64
	size    int64
}

// loadHints rebuilds the hint index from the hint space.
func (s *Store) loadHints() error {
	err := s.db.View(func(txn *badger.Txn) error {
		return s.eachHint(txn, []byte{prefixHint}, func(item *badger.Item, target []byte, _ Key) error {
			var created int64
			if err := item.Value(func(v []byte) error {
				var perr error
				created, _, perr = parseHintValue(v)
				return perr
			}); err != nil {
				// Index it as very old, so ExpireHints removes it.
				s.corrupt.Add(1)
				created = math.MinInt64
			}
			s.indexHint(string(target), string(item.Key()), created, int64(len(item.Key()))+item.ValueSize())
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load hint index: %w", err)
	}
	return nil
}

// indexHint records a committed hint; s.hmu must be held or the store not
// yet shared.
func (s *Store) indexHint(target, bkey string, created, size int64) {
	t := s.hints[target]
	if t == nil {
		t = &hintTarget{entries: make(map[string]hintEntry)}
		s.hints[target] = t
	}
	if old, ok := t.entries[bkey]; ok {
		t.bytes -= old.size
		// A merge keeps the creation time, so the oldest usually stays.
		if old.created == t.oldest && created > old.created {
			t.stale = true
		}
	}
	t.entries[bkey] = hintEntry{created: created, size: size}
	t.bytes += size
	if len(t.entries) == 1 {
		t.oldest, t.stale = created, false
	} else if !t.stale && created < t.oldest {
		t.oldest = created
	}
}

// unindexHint forgets a deleted hint; s.hmu must be held.
func (s *Store) unindexHint(target, bkey string) {
	t := s.hints[target]
	if t == nil {
		return
	}
	old, ok := t.entries[bkey]
	if !ok {
		return
	}
	delete(t.entries, bkey)
	t.bytes -= old.size
	if len(t.entries) == 0 {
		delete(s.hints, target)
		return
	}
	if old.created == t.oldest {
		t.stale = true
	}
}

// applyHintIndex applies a committed batch's hint writes to the index.
func (s *Store) applyHintIndex(batch []*op) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	for _, o := range batch {
		if o.target == "" {
			continue
		}
		if o.del {
			s.unindexHint(o.target, string(o.key))
			continue
		}
		created, _, err := parseHintValue(o.val)
		if err != nil {
			created = math.MinInt64 // not reached: the store wrote the header
		}
		s.indexHint(o.target, string(o.key), created, int64(len(o.key)+len(o.val)))
	}
}

// HintStats returns the count, size and age of target's committed hints.
// It reads an in-memory index and does no I/O; it keeps working after Close.
func (s *Store) HintStats(target string) HintStats {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	t := s.hints[target]
	if t == nil {
		return HintStats{}
	}
	if t.stale {
		t.oldest = math.MaxInt64
		for _, e := range t.entries {
			t.oldest = min(t.oldest, e.created)
		}
		t.stale = false
	}
	st := HintStats{Count: len(t.entries), Bytes: t.bytes}
	if t.oldest != math.MinInt64 {
		st.Oldest = time.Unix(0, t.oldest)
	}
	return st
}

// HintTargets returns the targets holding at least one committed hint,
// sorted. No I/O.
func (s *Store) HintTargets() []string {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	out := make([]string, 0, len(s.hints))
	for t := range s.hints {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// UpdateHint is Update in the hint space of target: the hint for k that
// this node holds on target's behalf. fn sees and returns the caller's bytes
// only; the store keeps the hint's creation time beside them (set when the
// hint is first written, kept by later merges). A stored hint whose header
// is corrupt is handed to fn as absent (and counted in Stats.Corrupt).
func (s *Store) UpdateHint(ctx context.Context, target string, k Key, durable bool, fn UpdateFunc) (old, new []byte, err error) {
	if err := validateTarget(target); err != nil {
		return nil, nil, err
	}
	if err := validateKey(k); err != nil {
		return nil, nil, err
	}
	var oldUser, nv []byte
	res, err := s.update(ctx, appendHintKey(nil, target, k), durable, updateSpec{
		target: target,
		decide: func(raw []byte, found bool) ([]byte, error) {
			created := s.now().UnixNano()
			oldUser = nil
			if found {
				c, v, err := parseHintValue(raw)
				if err != nil {
					s.corrupt.Add(1)
					found = false
				} else {
					created, oldUser = c, v
				}
			}
			var err error
			if nv, err = s.callUpdate(fn, oldUser, found, "hint"); err != nil || nv == nil {
				return nil, err
			}
			return appendHintValue(make([]byte, 0, hintHeaderLen+len(nv)), created, nv), nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	// oldUser points into the value decide saw, which the queue or the
	// value cache shares: hand out a copy, as Update does.
	oldUser = cloneBytes(oldUser)
	if !res.changed {
		return oldUser, oldUser, nil
	}
	return oldUser, nv, nil
}

// GetHint returns a copy of the caller's bytes of target's hint for k, or
// ErrNotFound (or ErrCorrupt for a malformed stored hint).
func (s *Store) GetHint(target string, k Key) ([]byte, error) {
	if err := validateTarget(target); err != nil {
		return nil, err
	}
	if err := validateKey(k); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	raw, err := s.getRaw(appendHintKey(nil, target, k))
	if err != nil {
		return nil, err
	}
	_, v, err := parseHintValue(raw)
	if err != nil {
		return nil, fmt.Errorf("hint for %s: %w", target, err)
	}
	return v, nil
}

// ScanHints calls fn for each of target's committed hints in (Partition,
// Hash, Key) order, from one snapshot. k.Key and val (the caller's bytes)
// are valid only during fn; an error from fn stops the scan and is returned.
// Malformed entries are skipped and counted in Stats.Corrupt. fn may call
// other Store methods (DeleteHintIf to acknowledge a delivery), except Close.
func (s *Store) ScanHints(target string, fn func(k Key, val []byte) error) error {
	if err := validateTarget(target); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	where := "scan hints for " + target
	return s.db.View(func(txn *badger.Txn) error {
		return s.eachHint(txn, appendHintPrefix(nil, target), func(item *badger.Item, _ []byte, k Key) error {
			return itemValue(item, where, func(raw []byte) error {
				_, v, err := parseHintValue(raw)
				if err != nil {
					s.corrupt.Add(1)
					return nil
				}
				return fn(k, v)
			})
		})
	})
}

// eachHint calls fn with every hint under prefix in txn, in key order,
// until fn returns an error, which it returns. A hint whose key does not
// parse is counted as corrupt and skipped.
func (s *Store) eachHint(txn *badger.Txn, prefix []byte, fn func(item *badger.Item, target []byte, k Key) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		target, k, err := parseHintKey(item.Key())
		if err != nil {
			s.corrupt.Add(1)
			continue
		}
		if err := fn(item, target, k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteHintIf deletes target's hint for k only if its current bytes
// (committed or queued) equal expect, so a hint merged with a newer write
// after it was read for delivery stays. It reports whether it deleted. The
// delete is not synced unless the store syncs every commit: if it is lost
// in a power failure, the hint is delivered again, which merging makes
// harmless.
func (s *Store) DeleteHintIf(ctx context.Context, target string, k Key, expect []byte) (deleted bool, err error) {
	if err := validateTarget(target); err != nil {
		return false, err
	}
	if err := validateKey(k); err != nil {
		return false, err
	}
	res, err := s.update(ctx, appendHintKey(nil, target, k), false, updateSpec{
		target:    target,
		noRewrite: true,
		decide: func(raw []byte, found bool) ([]byte, error) {
			if !found {
				return nil, ErrNoChange
			}
			_, v, err := parseHintValue(raw)
			if err != nil || !bytes.Equal(v, expect) {
				return nil, ErrNoChange
			}
			return nil, nil
		},
	})
	if err != nil {
		return false, err
	}
	return res.changed, nil
}

// ExpireHints deletes target's hints first written before cutoff (and any
// whose stored header is corrupt), the age cap of hinted handoff. It returns
// how many it deleted. Hints written concurrently are not affected.
func (s *Store) ExpireHints(ctx context.Context, target string, cutoff time.Time) (int, error) {
	return s.deleteHints(ctx, target, cutoff.UnixNano())
}

// DropHints deletes all of target's committed hints (for a node removed
// from the ring) and returns how many.
func (s *Store) DropHints(ctx context.Context, target string) (int, error) {
	return s.deleteHints(ctx, target, math.MaxInt64)
}

// deleteHints deletes target's indexed hints created before cutoff. Each
// delete goes through the normal write path, so it serializes with
// concurrent UpdateHints of the same key and re-checks the age under the
// key's lock.
func (s *Store) deleteHints(ctx context.Context, target string, cutoff int64) (int, error) {
	if err := validateTarget(target); err != nil {
		return 0, err
	}
	var keys []string
	s.hmu.Lock()
	if t := s.hints[target]; t != nil {
		for k, e := range t.entries {
			if e.created < cutoff {
				keys = append(keys, k)
			}
		}
	}
	s.hmu.Unlock()
	slices.Sort(keys)
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	// Queue every delete, then wait once for the last: one group commit
	// for many keys instead of one each.
	var results []*updateResult
	var last *op
	for _, k := range keys {
		res, o, release, err := s.submit(ctx, []byte(k), false, updateSpec{
			target:    target,
			noRewrite: true,
			decide: func(raw []byte, found bool) ([]byte, error) {
				if !found {
					return nil, ErrNoChange
				}
				if created, _, err := parseHintValue(raw); err == nil && created >= cutoff {
					return nil, ErrNoChange
				}
				return nil, nil
			},
		})
		if release != nil {
			release()
		}
		if err != nil {
			if last != nil {
				_ = s.wait(last) // the deletes already queued still commit
			}
			return 0, fmt.Errorf("expire hints for %s: %w", target, err)
		}
		if o != nil {
			last = o
			results = append(results, &res)
		}
	}
	if last != nil {
		if err := s.wait(last); err != nil {
			return 0, fmt.Errorf("expire hints for %s: %w", target, err)
		}
	}
	n := 0
	for _, r := range results {
		if r.changed {
			n++
		}
	}
	return n, nil
}
