package store

import (
	"errors"
	"fmt"
	"syscall"

	badger "github.com/dgraph-io/badger/v4"
)

// commitLoop is the single committer goroutine: it takes whatever is queued
// when the previous commit finishes (at most MaxBatch ops, no waiting to
// fill a batch), writes it as one badger transaction, and wakes the waiters.
// It exits once Close set stop and the queue is empty.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	var batch []*op
	for {
		s.qmu.Lock()
		for len(s.queue) == 0 && !s.stop {
			s.qcond.Wait()
		}
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			return
		}
		n := min(len(s.queue), s.opts.MaxBatch)
		batch = append(batch[:0], s.queue[:n]...)
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		s.qmu.Unlock()

		s.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch writes batch, updates the hint index, clears the pending
// marks and publishes the outcome to the waiters.
func (s *Store) commitBatch(batch []*op) {
	// commitMu covers the cache updates below too: a DropPartition between
	// the badger write and the cache update would leave the batch's
	// dropped values cached.
	s.commitMu.Lock()
	err := s.failed()
	if err == nil {
		err = s.writeBatch(batch)
		switch {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC):
			s.log.Error("group commit failed on a full disk; store is now read-only until reopened", "op", "commit", "writes", len(batch), "err", err)
			err = fmt.Errorf("%w (%w): %w", ErrFailed, ErrDiskFull, err)
		default:
			s.log.Error("group commit failed; store is now read-only until reopened", "op", "commit", "writes", len(batch), "err", err)
			err = fmt.Errorf("%w: %w", ErrFailed, err)
		}
	}
	if s.guard != nil {
		for _, o := range batch {
			s.guard.committed(o.cost)
		}
	}
	if err == nil {
		s.applyHintIndex(batch)
	}
	// In queue order, so a key written twice in the batch caches its later
	// value; in the same critical section as the pending mark, so that a
	// writer that finds no pending write finds the committed value cached.
	for _, o := range batch {
		o.sh.mu.Lock()
		if err == nil {
			o.sh.c.set(o.hash, o.key, o.val, o.del)
		} else {
			o.sh.c.remove(o.hash, o.key) // badger's state of the key is unknown
		}
		if o.entry.pending == o {
			o.entry.pending = nil
			if o.entry.refs == 0 {
				o.sh.forget(o.entry, o.key)
			}
		}
		o.sh.mu.Unlock()
	}
	s.commitMu.Unlock()
	if err != nil {
		s.cmu.Lock()
		if s.failErr == nil {
			s.failErr = err
		}
		s.cmu.Unlock()
	}
	for _, o := range batch {
		o.err = err
		close(o.done)
	}
}

// writeBatch writes the ops in order in as few badger transactions as
// badger's size limit allows (usually one). Within a transaction a later
// write of a key replaces an earlier one, which is the order the ops were
// queued in.
//
// When the batch must be durable (Options.Sync, or an op asked for it),
// s.sync runs after each transaction: it syncs only the current
// memtable's log (and, when the batch wrote to it, the current value-log
// file), so it must run before the next transaction could rotate the
// memtable. Badger's own
// SyncWrites is never used: the store makes every sync call itself, so
// Stats.Syncs counts syncs that happened, not syncs that were promised. The
// caller holds commitMu, which every other badger writer (DropPartition,
// RunValueLogGC) also takes, so nothing rotates the memtable between a
// commit and its sync.
func (s *Store) writeBatch(batch []*op) error {
	needSync, vlog := false, false
	if !s.opts.InMemory && !(s.opts.badgerSync && s.opts.Sync) {
		needSync = s.opts.Sync
		threshold := s.opts.valueThreshold()
		for _, o := range batch {
			needSync = needSync || o.durable
			vlog = vlog || (!o.del && int64(len(o.val)) >= threshold)
		}
	}
	commit := func(txn *badger.Txn) error {
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if needSync {
			if err := s.sync(vlog); err != nil {
				return fmt.Errorf("sync: %w", err)
			}
		}
		return nil
	}
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, o := range batch {
		err := setOp(txn, o)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := commit(txn); err != nil {
				return err
			}
			txn = s.db.NewTransaction(true)
			err = setOp(txn, o)
		}
		if err != nil {
			return fmt.Errorf("write %d bytes: %w", len(o.key)+len(o.val), shortError{err})
		}
	}
	if err := commit(txn); err != nil {
		return err
	}
	s.batches.Add(1)
	s.writes.Add(uint64(len(batch)))
	return nil
}

// sync makes everything badger committed so far durable and counts the
// call in Stats.Syncs once it succeeded: an fdatasync of the current
// write-ahead log (walSyncer) when no value of the transaction went to the
// value log (vlog false), else DB.Sync (msync of the write-ahead log and of
// the current value-log file). With the test-only Options.skipSync it does
// nothing and reports success: the planted bug that the power-loss test
// must catch.
func (s *Store) sync(vlog bool) error {
	if s.opts.skipSync {
		return nil
	}
	var err error
	if s.wal != nil && !vlog {
		err = s.wal.sync()
	} else {
		err = s.db.Sync()
	}
	if err != nil {
		return err
	}
	s.syncs.Add(1)
	return nil
}

func setOp(txn *badger.Txn, o *op) error {
	return setIndex(txn, o, func() error {
		if o.del {
			return txn.Delete(o.key)
		}
		return txn.Set(o.key, o.val)
	})
}

// maxErrorText bounds the text of a badger error kept in our errors: some
// badger errors embed a hex dump of the whole value.
const maxErrorText = 256

// shortError truncates the text of the error it wraps; errors.Is and As
// still see the original.
type shortError struct{ err error }

func (e shortError) Error() string {
	msg := e.err.Error()
	if len(msg) > maxErrorText {
		return msg[:maxErrorText] + "..."
	}
	return msg
}

func (e shortError) Unwrap() error { return e.err }
