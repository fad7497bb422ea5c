package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store/internal/testfn"
)

// Tests of the key lock (update.go): taken and released under the shard's
// mutex when free, handed over through the entry's wake token when
// writers wait.

// TestKeyLockAbandonAfterHandOver: the last waiter giving up after the
// holder handed it the lock takes the token back and frees the lock: the
// entry leaves the table with no token on it, and the next writer takes
// the lock at once.
func TestKeyLockAbandonAfterHandOver(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	bkey := appendRecordKey(nil, Key{Key: []byte("k")})
	sh, h := s.shardFor(bkey)
	e, _, err := s.lockKey(t.Context(), sh, h, bkey)
	if err != nil {
		t.Fatal(err)
	}
	// A waiter, as lockKey counts one that finds the lock held.
	sh.mu.Lock()
	e.refs++
	sh.mu.Unlock()
	s.unlockKey(sh, e, bkey)
	sh.mu.Lock()
	if !e.held || e.refs != 1 || len(e.wake) != 1 {
		t.Fatalf("after hand-over: held %v refs %d tokens %d, want true 1 1", e.held, e.refs, len(e.wake))
	}
	sh.mu.Unlock()
	s.abandonKey(sh, e, bkey)
	if e.held || e.refs != 0 || len(e.wake) != 0 {
		t.Fatalf("after the waiter left: held %v refs %d tokens %d, want false 0 0", e.held, e.refs, len(e.wake))
	}
	if n := s.lockTableSize(); n != 0 {
		t.Fatalf("lock table holds %d entries", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, _, err := s.Update(ctx, Key{Key: []byte("k")}, false, setTo("w")); err != nil {
		t.Fatalf("write after the abandoned hand-over: %v", err)
	}
}

// TestKeyLockWaitersGiveUp: of the writers waiting behind a holder, those
// whose context ends leave without writing, the others each write once,
// in turn, and the lock table ends empty.
func TestKeyLockWaitersGiveUp(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	k := Key{Key: []byte("k")}
	mustSet(t, s, k, "0")
	holder := testfn.Hold(func(fn func([]byte, bool) ([]byte, error)) error {
		_, _, err := s.Update(context.Background(), k, false, func(old []byte, found bool) ([]byte, error) {
			if _, err := fn(old, found); err != nil {
				return nil, err
			}
			return testfn.Incr(old, found)
		})
		return err
	}, "")
	const waiters = 8
	ctxs := make([]context.CancelFunc, waiters)
	errs := make(chan error, waiters)
	for i := range waiters {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		go func() {
			_, _, err := s.Update(ctx, k, false, incr)
			errs <- err
		}()
	}
	bkey := appendRecordKey(nil, k)
	sh, _ := s.shardFor(bkey)
	waitFor(t, "all writers waiting", func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		e := sh.m[string(bkey)]
		return e != nil && e.refs == waiters+1
	})
	for i := 0; i < waiters; i += 2 {
		ctxs[i]()
	}
	for range waiters / 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
		}
	}
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	for range waiters / 2 {
		if err := <-errs; err != nil {
			t.Fatalf("waiter: %v", err)
		}
	}
	for _, c := range ctxs {
		c()
	}
	if v, err := s.Get(k); err != nil || string(v) != strconv.Itoa(1+waiters/2) {
		t.Fatalf("counter = %q, %v; want %d", v, err, 1+waiters/2)
	}
	if n := s.lockTableSize(); n != 0 {
		t.Fatalf("lock table holds %d entries", n)
	}
}

// TestKeyLockRandomCancels: writers of a few hot keys with contexts that
// end at random times while they wait. Every write that reported success
// counted once, no failed one did, and no lock or token is left behind.
func TestKeyLockRandomCancels(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	const workers, per, keys = 16, 150, 3
	var ok [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range per {
				i := rng.IntN(keys)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(200))*time.Microsecond)
				_, _, err := s.Update(ctx, Key{Key: []byte{'k', byte(i)}}, false, incr)
				cancel()
				switch {
				case err == nil:
					ok[i].Add(1)
				case errors.Is(err, context.DeadlineExceeded):
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range keys {
		want := ok[i].Load()
		v, err := s.Get(Key{Key: []byte{'k', byte(i)}})
		if want == 0 && errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil || string(v) != strconv.FormatInt(want, 10) {
			t.Fatalf("key %d: counter %q, %v; want %d", i, v, err, want)
		}
	}
	if n := s.lockTableSize(); n != 0 {
		t.Fatalf("lock table holds %d entries", n)
	}
	for i := range s.shards {
		for _, e := range s.shards[i].free {
			if e.held || e.refs != 0 || len(e.wake) != 0 {
				t.Fatalf("recycled entry in use: held %v refs %d tokens %d", e.held, e.refs, len(e.wake))
			}
		}
	}
}
