package store

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"

	badger "github.com/dgraph-io/badger/v4"
)

// The commit path is leader-based group commit: there is no committer
// goroutine. A writer whose op is queued calls wait; if no commit is in
// progress it becomes the leader and commits the queue itself (at most
// MaxBatch ops per batch, taken from the front; no timed wait to fill a
// batch, only one yield of the processor by a leader whose op is alone in
// the queue, see wait) until its own op is committed. Writers that queue
// meanwhile wait on their op's done channel; when the leader is through it
// hands the lead to the first of them still queued (a token on its done channel), which
// takes everything queued by then as the next batch. So at one client a
// write costs no goroutine hand-off of the store's own (only badger's),
// and under load a batch still forms while the previous one commits, as
// with a committer goroutine: with Options.Sync many writes share one
// fsync. The leader is a caller's goroutine, but the commit does not
// depend on its context: wait ignores contexts, as it always did.
//
// The queue's state is guarded by qmu: committing says a leader holds the
// lead (is committing, or was handed the lead and will take it); each op's
// fin, waiting and lead say whether it is committed, whether its owner
// sleeps on done, and whether it was handed the lead. A token is sent on
// done only to an op whose owner is waiting (and that flag cleared at
// once), so done never holds more than one.

// wait blocks until o was committed (and so every op queued before it),
// committing it itself as the leader if no commit is in progress, and
// returns the commit's error. It does not honor a context: once queued, a
// write is going to be committed, and the caller must learn whether it
// was. Each op has its own done channel, so a commit wakes exactly its own
// writers, not every writer still waiting for a later one.
func (s *Store) wait(o *op) error {
	s.qmu.Lock()
	for !o.fin {
		if s.committing && !o.lead {
			o.waiting = true
			s.qmu.Unlock()
			<-o.done
			s.qmu.Lock()
			continue
		}
		if !o.lead && len(s.queue) == 1 {
			// A fresh lead with only its own write queued: let the
			// goroutines that are ready to run (the other requests of the
			// read that brought this one) queue theirs first, behind
			// the lead now taken, so that they share this commit.
			s.committing = true
			s.qmu.Unlock()
			runtime.Gosched()
			s.qmu.Lock()
		}
		o.lead = false
		s.committing = true
		if next := s.lead(o); next != nil {
			s.qmu.Unlock()
			next.done <- struct{}{}
			s.qmu.Lock()
		}
	}
	s.qmu.Unlock()
	return o.err
}

// lead commits batches from the front of the queue until o is committed
// (with o nil: until the queue is empty), then passes the lead on: it
// returns the first queued op whose owner waits, whose lead flag it set
// and to which the caller must send the token once qmu is released, or
// nil after releasing the lead (committing false). The caller holds qmu
// and the lead (committing); lead releases qmu while it commits and
// returns with it held.
func (s *Store) lead(o *op) (next *op) {
	for len(s.queue) > 0 && (o == nil || !o.fin) {
		n := min(len(s.queue), s.opts.MaxBatch)
		batch := append(s.batch[:0], s.queue[:n]...)
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		s.batch = nil // the leader's own while it commits
		s.qmu.Unlock()

		s.commitBatch(batch)

		s.qmu.Lock()
		wake := 0
		for _, b := range batch {
			b.fin = true
			if b.waiting {
				b.waiting = false
				batch[wake] = b // the ops to wake, at the front
				wake++
			}
		}
		s.qmu.Unlock()
		for _, b := range batch[:wake] {
			b.done <- struct{}{}
		}
		clear(batch)
		s.qmu.Lock()
		s.batch = batch[:0]
	}
	for _, q := range s.queue {
		if q.waiting {
			q.waiting = false
			q.lead = true
			return q
		}
	}
	s.committing = false
	return nil
}

// drain commits whatever is still queued, for Close once no call is in
// flight (so no leader is either, and normally nothing is queued: every
// queued op's owner waits for it before it exits).
func (s *Store) drain() {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		return
	}
	s.committing = true
	s.lead(nil) // the queue is empty on return: no one to pass the lead to
}

// commitBatch writes batch, updates the hint index, clears the pending
// marks and sets each op's err (the leader then marks them committed and
// wakes their owners).
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
