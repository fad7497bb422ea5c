package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Tests of the leader-based group commit (commit.go): there is no
// committer goroutine, a writer commits the queue itself when no commit is
// in progress, and passes the lead to a waiting writer when it is through.

// leaderState reports, under qmu, whether a leader holds the lead, how many
// ops are queued and how many of them have an owner sleeping on done.
func (s *Store) leaderState() (committing bool, queued, waiting int) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for _, o := range s.queue {
		if o.waiting {
			waiting++
		}
	}
	return s.committing, len(s.queue), waiting
}

// startLeader starts the first write of a store whose commits are held by
// blockCommits (key 0) and waits until it leads: the lead taken, its
// batch out of the queue. Its error arrives on the channel.
func startLeader(t *testing.T, s *Store, ctx context.Context) <-chan error {
	t.Helper()
	leader := make(chan error, 1)
	go func() {
		_, _, err := s.Update(ctx, Key{Hash: 0, Key: []byte("k")}, false, setTo("leader"))
		leader <- err
	}()
	waitFor(t, "the leader to take its batch", func() bool {
		c, q, _ := s.leaderState()
		return c && q == 0 && s.queuedSeq() == 1
	})
	return leader
}

// startWriters starts n Updates of distinct keys (key i+first) with ctx and
// returns their errors' channel; it waits until all n are queued behind a
// leader held by blockCommits, each owner asleep on its op.
func startWriters(t *testing.T, s *Store, ctx context.Context, first, n int, val func(i int) []byte) <-chan error {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := s.Update(ctx, Key{Hash: uint64(first + i), Key: []byte("k")}, false, func([]byte, bool) ([]byte, error) {
				return val(i), nil
			})
			errs <- err
		}()
	}
	waitFor(t, fmt.Sprintf("%d writers asleep behind the leader", n), func() bool {
		c, q, w := s.leaderState()
		return c && q == n && w == n
	})
	return errs
}

// A leader whose request context is cancelled while it commits still
// commits its batch (the other writers' ops are in it) and reports
// success, and the writers queued meanwhile commit after it.
func TestLeaderContextCancelledMidCommit(t *testing.T) {
	s := openTest(t, testOptions(t, t.TempDir()))
	unblock := blockCommits(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	leader := startLeader(t, s, ctx)
	errs := startWriters(t, s, ctx, 1, 5, func(int) []byte { return []byte("w") })
	cancel()
	unblock()
	if err := <-leader; err != nil {
		t.Fatalf("leader: %v, want its write committed whatever its context says", err)
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	for h := range uint64(6) {
		if _, err := s.Get(Key{Hash: h, Key: []byte("k")}); err != nil {
			t.Fatalf("key %d: %v", h, err)
		}
	}
	if st := s.Stats(); st.Batches != 2 || st.Writes != 6 {
		t.Fatalf("stats %+v: want the leader's batch, then the 5 others in one", st)
	}
	if c, q, _ := s.leaderState(); c || q != 0 {
		t.Fatalf("after the writes: committing %v, %d queued; want the lead released", c, q)
	}
}

// Many writers share commits, and a writer whose op lies beyond MaxBatch
// in the queue keeps leading until its own op is committed.
func TestLeaderManyWritersShareCommits(t *testing.T) {
	for _, maxBatch := range []int{1024, 3} {
		t.Run(fmt.Sprintf("MaxBatch=%d", maxBatch), func(t *testing.T) {
			o := testOptions(t, t.TempDir())
			o.MaxBatch = maxBatch
			s := openTest(t, o)
			unblock := blockCommits(t, s)
			leader := startLeader(t, s, t.Context())
			const n = 40
			errs := startWriters(t, s, t.Context(), 1, n, func(int) []byte { return []byte("v") })
			unblock()
			if err := <-leader; err != nil {
				t.Fatal(err)
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			want := 1 + (n+maxBatch-1)/maxBatch
			if st := s.Stats(); st.Writes != n+1 || st.Batches != uint64(want) {
				t.Fatalf("stats %+v: want %d writes in %d batches", st, n+1, want)
			}
			if c, _ := s.Count(0); c != n+1 {
				t.Fatalf("count %d, want %d", c, n+1)
			}
		})
	}
}

// Close while writers wait behind a leader: Close waits for them, every
// write commits, and the values are there after a reopen.
func TestCloseWhileWritersWait(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	s.commitMu.Lock()
	var once sync.Once
	unblock := func() { once.Do(s.commitMu.Unlock) }
	defer unblock()
	leader := startLeader(t, s, t.Context())
	const n = 10
	errs := startWriters(t, s, t.Context(), 1, n, func(int) []byte { return []byte("v") })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to start", func() bool {
		s.lifeMu.RLock()
		defer s.lifeMu.RUnlock()
		return s.closed
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while writes were still queued", err)
	default:
	}
	unblock()
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	s = openTest(t, o)
	if c, err := s.Count(0); err != nil || c != n+1 {
		t.Fatalf("after reopen: %d records, %v; want %d", c, err, n+1)
	}
}

// A failed commit reaches every waiter of its batch, whoever leads it;
// the batch before it is unaffected, and later writes fail at once.
func TestFailedCommitReachesEveryWaiter(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	s.maxValue = 16 << 20 // let badger itself refuse the oversized value
	unblock := blockCommits(t, s)
	leader := startLeader(t, s, t.Context())
	const n = 8
	errs := startWriters(t, s, t.Context(), 1, n, func(i int) []byte {
		if i == n/2 {
			return make([]byte, 2<<20)
		}
		return []byte("v")
	})
	unblock()
	if err := <-leader; err != nil {
		t.Fatalf("leader's batch: %v, want it committed", err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, ErrFailed) {
			t.Fatalf("writer of the failed batch: %v, want ErrFailed", err)
		}
	}
	if _, _, err := s.Update(t.Context(), Key{Hash: 99, Key: []byte("k")}, false, setTo("v")); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after the failure: %v, want ErrFailed", err)
	}
	if c, q, _ := s.leaderState(); c || q != 0 {
		t.Fatalf("after the failure: committing %v, %d queued; want the lead released", c, q)
	}
}

// An op queued by UpdateOwnedQueued is committed by whichever writer leads
// next, before its own commit is called; that commit then returns at once.
func TestQueuedOpCommittedByAnotherLeader(t *testing.T) {
	s := openTest(t, testOptions(t, t.TempDir()))
	ka, kb := Key{Hash: 1, Key: []byte("a")}, Key{Hash: 2, Key: []byte("b")}
	_, commitA, err := s.UpdateOwnedQueued(t.Context(), ka, false, setTo("a"))
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, kb, "b") // leads: commits a's op, queued first, too
	if v, err := s.Get(ka); err != nil || string(v) != "a" {
		t.Fatalf("a before its commit call: %q, %v; want it committed by b's leader", v, err)
	}
	if st := s.Stats(); st.Batches != 1 || st.Writes != 2 {
		t.Fatalf("stats %+v: want a and b in one batch", st)
	}
	if err := commitA(); err != nil {
		t.Fatal(err)
	}
}
