package quorum

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

func supersedingReps(f *fakeReplicas) Replicas { return superseding{f} }

// seed stores a write of val minted by actor on every node of holders, as
// if it had been acknowledged by them and not by the others.
func (tc *testCoord) seed(actor ring.NodeID, val string, holders ...ring.NodeID) {
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: string(actor), Epoch: 1}, vclock.Value{Data: []byte(val)})
	tc.reps.mu.Lock()
	defer tc.reps.mu.Unlock()
	for _, id := range holders {
		tc.reps.sets[id] = vclock.Sync(tc.reps.sets[id], s)
	}
}

func values(s vclock.Set) string {
	var out []string
	for _, sib := range s.Siblings {
		out = append(out, string(sib.Value.Data))
	}
	return strings.Join(out, ",")
}

func (tc *testCoord) overwrite(t testing.TB, val string, p Params) (*WriteResult, error) {
	t.Helper()
	return tc.Overwrite(t.Context(), PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte(val)}, Params: p})
}

// An overwrite coordinated by a primary reads R-1 other replicas, not its
// own, and still replaces a write that W replicas acknowledged without it
// (R+W>N: the replica read holds it).
func TestOverwriteReadsOthersOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, supersedingReps)
		a, b, cc := c.pref[0], c.pref[1], c.pref[2]
		c.seed(b, "old", b, cc) // acknowledged by b and c, not by a
		res, err := c.overwrite(t, "new", Params{})
		if err != nil {
			t.Fatal(err)
		}
		c.Wait()
		reads := c.reps.recorded("read")
		if len(reads) != 1 || reads[0].target.Node != b {
			t.Errorf("reads %+v, want one, of %s", reads, b)
		}
		if m := c.reps.recorded("supersede"); len(m) != 1 || m[0].target.Node != a {
			t.Errorf("mints %+v, want one superseding mint on %s", m, a)
		}
		if got := values(res.Set); got != "new" {
			t.Errorf("answer holds %q, want new", got)
		}
		for _, id := range c.pref {
			if got := values(c.reps.setOf(id)); got != "new" {
				t.Errorf("%s holds %q after the overwrite, want new", id, got)
			}
		}
	})
}

// The coordinator's own replica is superseded at the mint, unread: what it
// holds alone is replaced too. What no replica read holds stays a sibling,
// as with a read of every replica that this one did not reach in time.
func TestOverwriteSupersedesLocalUnread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 3}, supersedingReps)
		c.seed(c.pref[0], "mine", c.pref[0])
		c.seed(c.pref[2], "theirs", c.pref[2]) // not read (b answers first), so it stays a sibling
		if _, err := c.overwrite(t, "new", Params{}); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		if got := values(c.reps.setOf(c.pref[0])); got != "new" {
			t.Errorf("coordinator holds %q, want new alone (mine superseded unread)", got)
		}
		if got := values(c.reps.setOf(c.pref[2])); got != "new,theirs" && got != "theirs,new" {
			t.Errorf("%s holds %q, want new and its unread sibling theirs", c.pref[2], got)
		}
	})
}

// At R=1 the coordinator's own replica is the read: no read is sent.
func TestOverwriteR1ReadsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 1, W: 2}, supersedingReps)
		if _, err := c.overwrite(t, "v", Params{}); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		if r := c.reps.recorded("read"); len(r) != 0 {
			t.Errorf("reads %+v at R=1, want none", r)
		}
	})
}

// A failed read is replaced by one of the replicas not asked yet at once; a
// replica that does not answer is covered after overwriteHedge.
func TestOverwriteReadReplacesFailedAndHedgesSlow(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    behaviour
		took time.Duration
	}{
		{"failed", behaviour{err: errReplica}, 0},
		{"silent", behaviour{hang: true}, overwriteHedge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, supersedingReps)
				c.reps.set(c.pref[1], tc.b)
				c.seed(c.pref[2], "old", c.pref[2])
				start := time.Now()
				res, err := c.Overwrite(t.Context(), PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("new")},
					Params: Params{W: 1}})
				if err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took != tc.took {
					t.Errorf("answered after %v, want %v", took, tc.took)
				}
				if got := values(res.Set); got != "new" {
					t.Errorf("answer %q, want new (old was read from %s)", got, c.pref[2])
				}
				reads := byStart(c.reps.recorded("read"))
				if len(reads) != 2 || reads[0].target.Node != c.pref[1] || reads[1].target.Node != c.pref[2] {
					t.Errorf("reads %+v, want %s then %s", reads, c.pref[1], c.pref[2])
				}
			})
		})
	}
}

// Too few answers fail the overwrite before anything is written, naming
// the write's read.
func TestOverwriteReadQuorumError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 3, W: 2}, supersedingReps)
		c.reps.set(c.pref[2], behaviour{err: errReplica})
		_, err := c.overwrite(t, "v", Params{})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Op != "put (its read at r)" || qe.Required != 3 || len(qe.Errs) != 1 {
			t.Fatalf("err %v, want the read's quorum error at r=3 with the replica's failure", err)
		}
		if m := c.reps.recorded("supersede", "mint", "merge"); len(m) != 0 {
			t.Errorf("writes %+v after a failed read", m)
		}
	})
}

// A node that is not a replica reads every replica at R, then forwards the
// write with the read's context; a delete of a key with no live value
// writes nothing.
func TestOverwriteFallsBackToReadThenPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 4, 3, Params{N: 3, R: 2, W: 2}, supersedingReps)
		c.seed(c.pref[1], "old", c.pref[0], c.pref[1], c.pref[2])
		var got PutRequest
		c.reps.forward = func(node ring.NodeID, req PutRequest) (*WriteResult, error) {
			got = req
			return &WriteResult{Coordinator: node}, nil
		}
		if _, err := c.overwrite(t, "v", Params{}); err != nil {
			t.Fatal(err)
		}
		if !got.SupersedeLocal || got.Context.Compare(c.reps.setOf(c.pref[1]).Context) != vclock.Equal {
			t.Errorf("forwarded %+v, want SupersedeLocal and the read's context", got)
		}
		c.Wait()
		if r := c.reps.recorded("read"); len(r) != 3 {
			t.Errorf("%d reads, want 3 (every replica)", len(r))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, supersedingReps)
		res, err := c.Overwrite(t.Context(), PutRequest{Key: []byte("k"), Value: vclock.Value{Deleted: true}})
		if res != nil || err != nil {
			t.Errorf("delete of an absent key = %+v, %v; want nil, nil", res, err)
		}
		if m := c.reps.recorded("supersede", "mint", "merge"); len(m) != 0 {
			t.Errorf("writes %+v for a delete of an absent key", m)
		}
		c.Wait()
	})
}

// contextReading adds ContextReader to superseding: a context-only read
// (recorded as "readctx") answers the replica's context and no sibling,
// except on the members in old, which answer errTooOld as a release that
// predates context-only reads would.
type contextReading struct {
	superseding
	old map[ring.NodeID]bool // set before the coordinator runs
}

var _ ContextReader = contextReading{}

var errTooOld = errors.New("unknown method")

func (c contextReading) ReadContextAsync(ctx context.Context, t ring.Target, k ring.Key, done func(vclock.Set, error)) {
	go func() {
		cl := &call{method: "readctx", target: t}
		b := c.begin(cl, t.Node)
		err := wait(ctx, b)
		if err == nil && c.old[t.Node] {
			err = errTooOld
		}
		c.end(cl, err)
		if err != nil {
			done(vclock.Set{}, err)
			return
		}
		c.mu.Lock()
		s := c.sets[t.Node]
		if t.HintFor != "" {
			s = c.hints[[2]ring.NodeID{t.Node, t.HintFor}]
		}
		c.mu.Unlock()
		done(vclock.Set{Context: s.Context}, nil)
	}()
}

func (contextReading) PeerTooOld(err error) bool { return errors.Is(err, errTooOld) }

// With a ContextReader the overwrite's read asks for contexts only, and
// still supersedes what W replicas acknowledged without this node. A
// replica that answers as too old is read whole instead, not counted as
// failed: at R=3 with both others too old the overwrite still succeeds,
// through two context reads refused and two full reads.
func TestOverwriteReadsContextsOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		r         int
		old       []int // indexes into pref
		ctx, full int   // reads of each kind expected
	}{
		{"new", 2, nil, 1, 0},
		{"new r3", 3, nil, 2, 0},
		{"old", 2, []int{1}, 1, 1},
		{"both old r3", 3, []int{1, 2}, 2, 2},
		{"one old r3", 3, []int{2}, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cr := contextReading{old: map[ring.NodeID]bool{}}
				c := newTestCoord(t, 3, 0, Params{N: 3, R: tc.r, W: 2}, func(f *fakeReplicas) Replicas {
					cr.superseding = superseding{f}
					return cr
				})
				for _, i := range tc.old {
					cr.old[c.pref[i]] = true
				}
				a, b, cc := c.pref[0], c.pref[1], c.pref[2]
				c.seed(b, "old", b, cc) // acknowledged by b and c, not by a
				c.seed(cc, "other", b, cc)
				res, err := c.overwrite(t, "new", Params{})
				if err != nil {
					t.Fatal(err)
				}
				c.Wait()
				if n := len(c.reps.recorded("readctx")); n != tc.ctx {
					t.Errorf("%d context reads, want %d", n, tc.ctx)
				}
				if n := len(c.reps.recorded("read")); n != tc.full {
					t.Errorf("%d full reads, want %d", n, tc.full)
				}
				if got := values(res.Set); got != "new" {
					t.Errorf("answer holds %q, want new", got)
				}
				for _, id := range []ring.NodeID{a, b, cc} {
					if got := values(c.reps.setOf(id)); got != "new" {
						t.Errorf("%s holds %q after the overwrite, want new alone", id, got)
					}
				}
			})
		})
	}
}
