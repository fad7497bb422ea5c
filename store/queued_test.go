package store

import (
	"errors"
	"testing"
)

// UpdateOwnedQueued returns once the write is queued: the next writer of
// the key already starts from it, nothing is committed before the batch
// is, and commit returns once it is. A write that asks for nothing gets a
// commit that returns at once.
func TestUpdateOwnedQueued(t *testing.T) {
	s := openTest(t, testOptions(t, t.TempDir()))
	k := Key{Hash: 1, Key: []byte("k")}
	unblock := blockCommits(t, s)
	changed, commitA, err := s.UpdateOwnedQueued(t.Context(), k, false, setTo("a"))
	if err != nil || !changed {
		t.Fatalf("queue a: changed %v, %v", changed, err)
	}
	var saw string
	changed, commitB, err := s.UpdateOwnedQueued(t.Context(), k, false, func(old []byte, found bool) ([]byte, error) {
		saw = string(old)
		return []byte("b"), nil
	})
	if err != nil || !changed || saw != "a" {
		t.Fatalf("queue b: changed %v, saw %q, %v; want it to start from the queued a", changed, saw, err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before the commit: %v, want ErrNotFound (nothing committed yet)", err)
	}
	done := make(chan error, 2)
	go func() { done <- commitA() }()
	go func() { done <- commitB() }()
	unblock()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if v, err := s.Get(k); err != nil || string(v) != "b" {
		t.Fatalf("Get after the commits: %q, %v; want b", v, err)
	}
	changed, commit, err := s.UpdateOwnedQueued(t.Context(), k, false, func([]byte, bool) ([]byte, error) { return nil, ErrNoChange })
	if err != nil || changed || commit == nil || commit() != nil {
		t.Fatalf("no change: changed %v, err %v, commit %v; want a no-op commit", changed, err, commit != nil)
	}
}

// A committed op is recycled for a later write (enqueue, recycle): a
// second call of a queued write's commit is refused instead of waiting
// on an op that now belongs to another write, and that write, and the
// values each write starts from, are unaffected.
func TestQueuedOpRecycled(t *testing.T) {
	s := openTest(t, testOptions(t, t.TempDir()))
	k := Key{Hash: 1, Key: []byte("k")}
	_, commitA, err := s.UpdateOwnedQueued(t.Context(), k, false, setTo("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := commitA(); err != nil {
		t.Fatalf("commit a: %v", err)
	}
	s.qmu.Lock()
	free := len(s.freeOps)
	s.qmu.Unlock()
	if free == 0 {
		t.Fatal("no op recycled after a commit")
	}
	unblock := blockCommits(t, s)
	var saw string
	_, commitB, err := s.UpdateOwnedQueued(t.Context(), k, false, func(old []byte, found bool) ([]byte, error) {
		saw = string(old)
		return []byte("b"), nil
	})
	if err != nil || saw != "a" {
		t.Fatalf("queue b: saw %q, %v; want a", saw, err)
	}
	if err := commitA(); !errors.Is(err, errCommitTwice) {
		t.Fatalf("commit a again, its op now b's: %v, want errCommitTwice", err)
	}
	_, commitC, err := s.UpdateOwnedQueued(t.Context(), k, false, func(old []byte, found bool) ([]byte, error) {
		saw = string(old)
		return []byte("c"), nil
	})
	if err != nil || saw != "b" {
		t.Fatalf("queue c: saw %q, %v; want the queued b", saw, err)
	}
	unblock()
	if err := commitB(); err != nil {
		t.Fatalf("commit b: %v", err)
	}
	if err := commitC(); err != nil {
		t.Fatalf("commit c: %v", err)
	}
	if err := commitB(); !errors.Is(err, errCommitTwice) {
		t.Fatalf("commit b again: %v, want errCommitTwice", err)
	}
	if v, err := s.Get(k); err != nil || string(v) != "c" {
		t.Fatalf("Get: %q, %v; want c", v, err)
	}
}
