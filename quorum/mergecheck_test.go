package quorum

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// checking is a superseding fake that implements MergeChecker: a checked
// merge is a fake Merge (its behaviour, recorded as "merge") whose answer
// says whether the member's context before it was covered by the set's.
// Members in old answer errCheckTooOld without merging, as a release before
// checked merges does.
type checking struct {
	superseding
	old     map[ring.NodeID]bool
	checked *atomic.Int64 // checked merges asked, old members' included
}

var errCheckTooOld = errors.New("unknown method 15")

var _ MergeChecker = checking{}

func (c checking) MergeCheckAsync(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, d MergeCheckDone) {
	c.checked.Add(1)
	done := func(r MergeCheck, err error) { d.MergeChecked(t, r, err) }
	go func() {
		if c.old[t.Node] {
			done(MergeCheck{}, errCheckTooOld)
			return
		}
		in, err := vclock.DecodeSet(set)
		if err != nil {
			done(MergeCheck{}, err)
			return
		}
		f := c.fakeReplicas
		f.mu.Lock()
		prior := f.sets[t.Node].Context
		f.mu.Unlock()
		synced, err := f.Merge(ctx, t, k, set, durable)
		r := MergeCheck{Synced: synced, Clean: in.Context.Descends(prior)}
		if !r.Clean {
			r.Prior, _ = vclock.Set{Context: prior}.MarshalBinary()
		}
		done(r, err)
	}()
}

func (checking) PeerTooOld(err error) bool { return errors.Is(err, errCheckTooOld) }

// newCheckCoord is newTestCoord over checking fakes, this node pref[0].
func newCheckCoord(t *testing.T, p Params, old ...int) (*testCoord, *atomic.Int64) {
	n := new(atomic.Int64)
	var c *testCoord
	c = newTestCoord(t, 3, 0, p, func(f *fakeReplicas) Replicas {
		ch := checking{superseding: superseding{f}, old: map[ring.NodeID]bool{}, checked: n}
		_, pref := testRing(t, 3)
		for _, i := range old {
			ch.old[pref[i]] = true
		}
		return ch
	})
	return c, n
}

func (tc *testCoord) wantEverywhere(t *testing.T, res *WriteResult, want string) {
	t.Helper()
	if got := values(res.Set); got != want {
		t.Errorf("answer holds %q, want %q", got, want)
	}
	for _, id := range tc.pref {
		if got := values(tc.reps.setOf(id)); got != want {
			t.Errorf("%s holds %q, want %q", id, got, want)
		}
	}
}

// wantCalls checks that the overwrite read or not, minted mints times
// and sent two checked merges (the first round's only).
func (tc *testCoord) wantCalls(t *testing.T, checked *atomic.Int64, read bool, mints int) {
	t.Helper()
	if r := tc.reps.recorded("read"); (len(r) != 0) != read {
		t.Errorf("reads %+v; want some: %v", r, read)
	}
	if m := tc.reps.recorded("supersede"); len(m) != mints {
		t.Errorf("mints %+v, want %d", m, mints)
	}
	if n := checked.Load(); n != 2 {
		t.Errorf("%d checked merges, want 2", n)
	}
}

// Replicas in sync, nothing concurrent: the overwrite is one round of
// checked merges to the other two primaries, no read at all, and answers
// at W acks with R clean (this node's and one other's).
func TestOverwriteCheckedCleanIsOneRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, checked := newCheckCoord(t, Params{N: 3, R: 2, W: 2})
		c.seed(c.pref[1], "old", c.pref...)
		c.reps.set(c.pref[2], behaviour{delay: time.Second / 2}) // not needed: a and b make W and R
		start := time.Now()
		res, err := c.overwrite(t, "new", Params{})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("answered after %v, want at once (the slow replica is not waited for)", took)
		}
		c.Wait()
		c.wantCalls(t, checked, false, 1)
		c.wantEverywhere(t, res, "new")
	})
}

// A replica that held a write the coordinator had not seen answers dirty:
// the overwrite runs its second round, which supersedes that write too.
// So does a peer too old for checked merges (it gets a plain merge).
func TestOverwriteCheckedSecondRound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		old     []int
		holders []int // of the write the overwrite must replace
		read    bool  // whether the second round reads
	}{
		{"dirty", nil, []int{1, 2}, false},
		{"peers too old", []int{1, 2}, []int{0, 1, 2}, true},
		{"peers too old and dirty", []int{1, 2}, []int{1, 2}, true},
		{"one too old, one dirty", []int{2}, []int{1, 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, checked := newCheckCoord(t, Params{N: 3, R: 2, W: 2}, tc.old...)
				var holders []ring.NodeID
				for _, i := range tc.holders {
					holders = append(holders, c.pref[i])
				}
				c.seed(holders[0], "old", holders...)
				res, err := c.overwrite(t, "new", Params{})
				if err != nil {
					t.Fatal(err)
				}
				c.Wait()
				c.wantCalls(t, checked, tc.read, 2)
				c.wantEverywhere(t, res, "new")
			})
		})
	}
}

// A write only one replica holds (never acknowledged at W=2) is not
// looked for: with the two other primaries clean the overwrite is one
// round, and that replica keeps it as a sibling of the overwrite, as
// writes racing it do. (The read-first path happened to find it when it
// asked that replica first.)
func TestOverwriteCheckedUnacknowledgedMayStay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newCheckCoord(t, Params{N: 3, R: 2, W: 2})
		c.seed(c.pref[1], "old", c.pref[1])
		res, err := c.overwrite(t, "new", Params{})
		if err != nil {
			t.Fatal(err)
		}
		c.Wait()
		if r := c.reps.recorded("read"); len(r) != 0 {
			t.Errorf("reads %+v, want none", r)
		}
		if got := values(res.Set); got != "new" {
			t.Errorf("answer %q, want new", got)
		}
		if got := values(c.reps.setOf(c.pref[1])); got != "new,old" && got != "old,new" {
			t.Errorf("%s holds %q, want new and old", c.pref[1], got)
		}
	})
}

// Without W acks the first round fails as a Put does, and no second
// round runs.
func TestOverwriteCheckedWNotReached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newCheckCoord(t, Params{N: 3, R: 2, W: 2})
		c.reps.set(c.pref[1], behaviour{err: errReplica})
		c.reps.set(c.pref[2], behaviour{err: errReplica})
		_, err := c.overwrite(t, "new", Params{})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Op != "put" || qe.Acks != 1 || qe.Required != 2 {
			t.Fatalf("err %v, want the put's quorum error (1 of 2 acks)", err)
		}
		c.Wait()
		if r := c.reps.recorded("read"); len(r) != 0 {
			t.Errorf("reads %+v, want none (no second round)", r)
		}
	})
}

// W met with a dirty answer and the last primary silent: the overwrite
// waits overwriteHedge for it, no longer, then runs its second round
// (without a read: the two answers are R); a request timeout shorter than
// that ends it with the second round's error.
func TestOverwriteCheckedHedgeBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newCheckCoord(t, Params{N: 3, R: 2, W: 2})
		c.seed(c.pref[1], "old", c.pref[1])
		c.reps.set(c.pref[2], behaviour{hang: true})
		start := time.Now()
		res, err := c.overwrite(t, "new", Params{})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != overwriteHedge {
			t.Errorf("answered after %v, want %v", took, overwriteHedge)
		}
		if got := values(res.Set); got != "new" {
			t.Errorf("answer %q, want new", got)
		}
		c.Wait()
		if got := values(c.reps.setOf(c.pref[1])); got != "new" {
			t.Errorf("%s holds %q, want new", c.pref[1], got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c, _ := newCheckCoord(t, Params{N: 3, R: 2, W: 2})
		c.seed(c.pref[1], "old", c.pref[1])
		c.reps.set(c.pref[2], behaviour{hang: true})
		start := time.Now()
		_, err := c.overwrite(t, "new", Params{Timeout: overwriteHedge / 2})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Op != "put" {
			t.Errorf("err %v, want the second round's quorum error", err)
		}
		if took := time.Since(start); took != overwriteHedge/2 {
			t.Errorf("answered after %v, want the timeout %v", took, overwriteHedge/2)
		}
		c.Wait()
	})
}

// Deletes keep the read-first path: no checked merge.
func TestOverwriteCheckedNotForDeletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, checked := newCheckCoord(t, Params{N: 3, R: 2, W: 2})
		c.seed(c.pref[1], "old", c.pref...)
		if _, err := c.Overwrite(t.Context(), PutRequest{Key: []byte("k"), Value: vclock.Value{Deleted: true}}); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		if n := checked.Load(); n != 0 {
			t.Errorf("%d checked merges for a delete, want 0", n)
		}
	})
}
