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
