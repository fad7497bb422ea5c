package quorum

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Driver tests: a Coordinator over fakeReplicas, inside a synctest bubble so
// that delays and deadlines are exact and the tests take no real time.

var errReplica = errors.New("replica refused")

// merges returns the merge calls to node (any target standing in for
// anyone), in order.
func merges(calls []call, node ring.NodeID) []call {
	var out []call
	for _, c := range calls {
		if c.method == "merge" && c.target.Node == node {
			out = append(out, c)
		}
	}
	return out
}

// coordinatedBy is a forward handler that has node coordinate the write.
func coordinatedBy(node ring.NodeID, _ PutRequest) (*WriteResult, error) {
	return &WriteResult{Coordinator: node}, nil
}

// byStart orders calls by start time, then target, since calls started at
// one instant are recorded in no fixed order.
func byStart(calls []call) []call {
	slices.SortStableFunc(calls, func(a, b call) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return strings.Compare(string(a.target.Node), string(b.target.Node))
	})
	return calls
}

// Dynamo §4.5: the coordinator answers once W replicas (itself included)
// acknowledged; the others' acks land after the answer.
func TestPutAnswersAtWAcksWhileLateAcksLand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		defer tc.Close()
		tc.reps.set(tc.pref[1], behaviour{delay: 10 * time.Millisecond})
		tc.reps.set(tc.pref[2], behaviour{delay: time.Second / 2})
		start := time.Now()
		res, err := tc.put(t, "v", Params{})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Errorf("answered after %s, want 10ms (the second ack)", d)
		}
		if res.Acks != (Acks{Primary: 2}) || res.Coordinator != tc.self {
			t.Errorf("result %+v, want 2 primary acks from coordinator %s", res, tc.self)
		}
		if late := merges(tc.reps.recorded(), tc.pref[2]); len(late) != 1 || !late[0].end.IsZero() {
			t.Fatalf("the late replica's merge should still be running when Put answers: %+v", late)
		}
		tc.Wait()
		late := merges(tc.reps.recorded(), tc.pref[2])[0]
		if late.err != nil || late.end.Sub(start) != time.Second/2 {
			t.Errorf("late merge ended at %s with %v, want 500ms and no error", late.end.Sub(start), late.err)
		}
		for _, id := range tc.pref {
			if !tc.reps.setOf(id).Context.Covers(res.Dot) {
				t.Errorf("%s does not hold the write %s", id, res.Dot)
			}
		}
		if sets := tc.reps.recorded("merge"); len(sets) != 2 || !slices.Equal(sets[0].set, sets[1].set) {
			t.Errorf("the set is not sent as one encoding to both replicas: %d merges", len(sets))
		}
	})
}

// Dynamo §4.6: a target that fails is replaced by the next spare member,
// which keeps the write as a hint for the primary it stands in for; a
// failed fallback is replaced in turn, still naming the primary.
func TestPutFailedTargetReplacedByFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCoord(t, 5, 0, Params{N: 3, R: 2, W: 3}, nil)
		defer tc.Close()
		p := tc.pref
		tc.reps.set(p[1], behaviour{delay: time.Millisecond, err: errReplica})
		tc.reps.set(p[3], behaviour{delay: time.Millisecond, err: errReplica})
		res, err := tc.put(t, "v", Params{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Acks != (Acks{Primary: 2, Fallback: 1}) {
			t.Errorf("acks %+v, want 2 primary and 1 fallback", res.Acks)
		}
		tc.Wait()
		want := []ring.Target{{Node: p[1]}, {Node: p[2]}, {Node: p[3], HintFor: p[1]}, {Node: p[4], HintFor: p[1]}}
		var got []ring.Target
		for _, c := range byStart(tc.reps.recorded("merge")) {
			got = append(got, c.target)
		}
		if !slices.Equal(got, want) {
			t.Errorf("merges went to %v, want %v", got, want)
		}
		if !tc.reps.hintOf(p[4], p[1]).Context.Covers(res.Dot) {
			t.Errorf("the fallback %s holds no hint for %s", p[4], p[1])
		}
		if len(merges(tc.reps.recorded(), tc.self)) != 0 {
			t.Errorf("a hint of last resort was stored although a fallback took the write")
		}
	})
}

// PW counts primaries only: a fallback that stands in for a failed primary
// still takes the write, but cannot make up a strict quorum, so the write
// fails as soon as too few primaries are left, not at its deadline.
func TestPutStrictQuorumFailsWhenPrimariesCannotAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 5, 0, Params{N: 3, R: 2, W: 3}, nil)
		c.reps.set(c.pref[1], behaviour{delay: time.Millisecond, err: errReplica})
		c.reps.set(c.pref[3], behaviour{delay: time.Second / 2})
		start := time.Now()
		_, err := c.put(t, "v", Params{PW: 3})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.RequiredPrimary != 3 || qe.PrimaryAcks > 2 || !errors.Is(err, errReplica) {
			t.Fatalf("put at pw=3 with a failed primary: %v, want a QuorumError with the replica error", err)
		}
		if d := time.Since(start); d != time.Millisecond {
			t.Errorf("failed after %s, want 1ms (when the primary failed)", d)
		}
		c.Wait()
		if m := merges(c.reps.recorded(), c.pref[3]); len(m) != 1 || m[0].target.HintFor != c.pref[1] || m[0].err != nil {
			t.Errorf("fallback merges %+v, want one hint for %s", m, c.pref[1])
		}
	})
}

// A primary that neither acknowledges nor has a fallback standing in for it
// (three members at N=3) gets a hint at the coordinator, whether it was dead
// when the write started, failed before the answer, or failed after it. The
// hint is not an ack.
func TestPutHintOfLastResort(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dead   bool
		b      behaviour
		params Params
		failed bool // the write misses its quorum
	}{
		{"dead at the start", true, behaviour{}, Params{}, false},
		{"fails before the answer", false, behaviour{delay: time.Millisecond, err: errReplica}, Params{W: 3}, true},
		{"fails after the answer", false, behaviour{delay: time.Second / 2, err: errReplica}, Params{}, false},
		{"hangs past the deadline", false, behaviour{hang: true}, Params{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
				down := c.pref[2]
				if tc.dead {
					c.m.kill(down)
				}
				c.reps.set(down, tc.b)
				res, err := c.put(t, "v", tc.params)
				if tc.failed != (err != nil) {
					t.Fatalf("put: %v, want failure %v", err, tc.failed)
				}
				c.Wait()
				hints := merges(c.reps.recorded(), c.self)
				if len(hints) != 1 || hints[0].target != (ring.Target{Node: c.self, HintFor: down}) || hints[0].err != nil {
					t.Fatalf("hints at the coordinator: %+v, want one for %s", hints, down)
				}
				h := c.reps.hintOf(c.self, down)
				if res != nil && !h.Context.Covers(res.Dot) {
					t.Errorf("the hint does not hold the write")
				}
				if len(h.Siblings) != 1 {
					t.Errorf("hint holds %d siblings, want the one written", len(h.Siblings))
				}
				if tc.dead && len(merges(c.reps.recorded(), down)) != 0 {
					t.Errorf("a dead primary was written to")
				}
				if res != nil && res.Acks != (Acks{Primary: 2}) {
					t.Errorf("acks %+v: the hint must not count", res.Acks)
				}
			})
		})
	}
}

// The coordinator must be a replica (it mints the dot): any other node hands
// the write to the first target that takes it, in preference order, and
// stops at the first that answered with a decision.
func TestPutForwardsWhenNotAReplica(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     map[int]error // by target index
		wantTo   []int         // forwards made, by target index
		wantErr  error
		wantAcks int
	}{
		{"first target", nil, []int{0}, nil, 2},
		{"unreachable first target: the next", map[int]error{0: errReplica}, []int{0, 1}, nil, 2},
		{"a decided failure ends it", map[int]error{0: &QuorumError{Op: "put", Required: 2}}, []int{0}, ErrQuorumNotMet, 0},
		{"a bad request ends it", map[int]error{0: &ParamError{Param: "w", Msg: "bad"}}, []int{0}, ErrInvalid, 0},
		{"nobody takes it", map[int]error{0: errReplica, 1: errReplica, 2: errReplica}, []int{0, 1, 2}, ErrQuorumNotMet, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCoord(t, 5, 4, Params{N: 3, R: 2, W: 2}, nil)
				for i, err := range tc.fail {
					c.reps.set(c.pref[i], behaviour{err: err})
				}
				c.reps.forward = func(node ring.NodeID, req PutRequest) (*WriteResult, error) {
					if req.Params.N != 3 || req.Params.W != 2 || req.Params.Timeout != time.Second {
						t.Errorf("forwarded with unresolved params %+v", req.Params)
					}
					return &WriteResult{Acks: Acks{Primary: 2}, Coordinator: node}, nil
				}
				res, err := c.put(t, "v", Params{})
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Fatalf("put: %v, want %v", err, tc.wantErr)
				}
				var to []ring.NodeID
				for _, f := range c.reps.recorded("forward") {
					to = append(to, f.target.Node)
					if f.hops != 1 {
						t.Errorf("forward to %s with %d hops, want 1", f.target.Node, f.hops)
					}
				}
				if want := idsOf(c.pref, tc.wantTo); !slices.Equal(to, want) {
					t.Errorf("forwarded to %v, want %v", to, want)
				}
				if res != nil && (res.Acks.Total() != tc.wantAcks || res.Coordinator != c.pref[tc.wantTo[len(tc.wantTo)-1]]) {
					t.Errorf("result %+v", res)
				}
				if n := len(c.reps.recorded("mint", "merge")); n != 0 {
					t.Errorf("%d replica writes by a node that is not a replica", n)
				}
			})
		})
	}
}

// A write forwarded MaxForwardHops times is refused rather than forwarded
// again: nodes that disagree about the ring must not bounce it forever.
func TestPutForwardHopLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 4, 3, Params{N: 2, R: 1, W: 1}, nil)
		c.reps.forward = coordinatedBy
		req := PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v")}, Hops: 2}
		if _, err := c.Put(t.Context(), req); !errors.Is(err, ErrNoCoordinator) {
			t.Fatalf("put at the hop limit: %v, want ErrNoCoordinator", err)
		}
		if n := len(c.reps.recorded()); n != 0 {
			t.Fatalf("%d replica calls at the hop limit", n)
		}
		req.Hops = 1
		if _, err := c.Put(t.Context(), req); err != nil {
			t.Fatalf("put one hop below the limit: %v", err)
		}
		if f := c.reps.recorded("forward"); len(f) != 1 || f[0].hops != 2 {
			t.Fatalf("forwards %+v, want one with 2 hops", f)
		}
	})
}

// DW counts the acks that were fsynced, the coordinator's own included:
// the answer waits for enough of them, and fails as soon as too few can
// come.
func TestPutDurableAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		c.reps.set(c.pref[1], behaviour{delay: time.Millisecond, noSync: true})
		c.reps.set(c.pref[2], behaviour{delay: 50 * time.Millisecond})
		start := time.Now()
		res, err := c.put(t, "v", Params{DW: 2})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("answered after %s, want 50ms (the second durable ack)", d)
		}
		if res.Acks != (Acks{Primary: 3, Durable: 2}) {
			t.Errorf("acks %+v, want 3 primary, 2 durable", res.Acks)
		}
		for _, m := range c.reps.recorded("mint", "merge") {
			if !m.durable {
				t.Errorf("%s on %s without asking for fsync at dw=2", m.method, m.target.Node)
			}
		}

		// dw=3 with a replica that cannot fsync fails at its answer.
		start = time.Now()
		_, err = c.put(t, "w", Params{W: 3, DW: 3})
		var qe *QuorumError
		if !errors.As(err, &qe) {
			t.Fatalf("put at dw=3: %v, want a QuorumError", err)
		}
		if d := time.Since(start); d != time.Millisecond {
			t.Errorf("failed after %s, want 1ms (when the unsynced ack made dw=3 impossible)", d)
		}
		if qe.RequiredDurable != 3 || qe.DurableAcks != 1 || qe.Acks != 2 || qe.Targets != 3 {
			t.Errorf("counts %+v", qe)
		}
		c.Wait()
		// Without dw nothing asks for fsync.
		n := len(c.reps.recorded())
		if _, err := c.put(t, "x", Params{}); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		for _, m := range c.reps.recorded()[n:] {
			if m.durable {
				t.Errorf("%s on %s asks for fsync at dw=0", m.method, m.target.Node)
			}
		}
	})
}

// A write that cannot gather W acks before its timeout fails at the
// deadline with the counts; the replicas that did answer keep the write
// (nothing is rolled back).
func TestPutTimeoutReportsCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 4, 0, Params{N: 3, R: 2, W: 3, PW: 3}, nil)
		c.reps.set(c.pref[1], behaviour{delay: time.Millisecond})
		// Slower than the deadline and deaf to it, so that its failure lands
		// after the deadline, never at the same instant.
		c.reps.set(c.pref[2], behaviour{delay: 3 * time.Second, err: errReplica, deaf: true})
		start := time.Now()
		_, err := c.put(t, "v", Params{Timeout: 2 * time.Second})
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("failed after %s, want the 2s timeout", d)
		}
		var qe *QuorumError
		if !errors.As(err, &qe) || !errors.Is(err, ErrQuorumNotMet) {
			t.Fatalf("put: %v, want a QuorumError", err)
		}
		want := QuorumError{Op: "put", Required: 3, Acks: 2, RequiredPrimary: 3, PrimaryAcks: 2, Targets: 3}
		if qe.Errs != nil {
			t.Errorf("errors %v: none had failed by the deadline", qe.Errs)
		}
		if qe.Errs = nil; !reflect.DeepEqual(*qe, want) {
			t.Errorf("error %+v, want %+v", *qe, want)
		}
		c.Wait()
		if !holdsWrite(c, c.pref[1]) {
			t.Errorf("the replica that acked lost the write")
		}
		// The slow primary gets a hint of last resort once its call fails:
		// the deadline left no time for a fallback.
		if got := merges(c.reps.recorded(), c.self); len(got) != 1 || got[0].target.HintFor != c.pref[2] {
			t.Errorf("hints at the coordinator %+v, want one for %s", got, c.pref[2])
		}
		if got := merges(c.reps.recorded(), c.pref[3]); len(got) != 0 {
			t.Errorf("a fallback was asked after the deadline: %+v", got)
		}
	})
}

// holdsWrite reports whether id holds some write (its set has a sibling).
func holdsWrite(c *testCoord, id ring.NodeID) bool { return len(c.reps.setOf(id).Siblings) > 0 }

// An impossible quorum is refused before anything is written, so a refused
// request leaves no partial write behind.
func TestPutImpossibleQuorumRefusedBeforeAnyWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members int
		dead    []int
		p       Params
	}{
		{"w above live replicas", 3, []int{2}, Params{N: 3, W: 3}},
		{"pw above live primaries", 4, []int{1}, Params{N: 3, W: 3, PW: 3}},
		{"n = ring size, all others dead", 3, []int{1, 2}, Params{N: 3, W: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCoord(t, tc.members, 0, Params{N: 3, R: 2, W: 2}, nil)
				c.m.kill(idsOf(c.pref, tc.dead)...)
				_, err := c.put(t, "v", tc.p)
				var qe *QuorumError
				if !errors.As(err, &qe) || qe.Acks != 0 || qe.Required != tc.p.W {
					t.Fatalf("put: %v, want a QuorumError with no acks", err)
				}
				c.Wait()
				if calls := c.reps.recorded(); len(calls) != 0 {
					t.Fatalf("refused write made %d replica calls: %+v", len(calls), calls)
				}
			})
		})
	}
}

// A fallback coordinator that cannot keep the write (its hints for the
// primary are full) hands it to another target; a primary coordinator that
// cannot write its replica fails.
func TestPutLocalFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Four members at N=3 with the first primary dead: self (the last
		// member) stands in for it.
		c := newTestCoord(t, 4, 3, Params{N: 3, R: 2, W: 2}, nil)
		c.m.kill(c.pref[0])
		c.reps.set(c.self, behaviour{err: errReplica})
		c.reps.forward = coordinatedBy
		res, err := c.put(t, "v", Params{})
		if err != nil || res.Coordinator != c.pref[1] {
			t.Fatalf("put at a failing fallback coordinator: %+v, %v; want it forwarded to %s", res, err, c.pref[1])
		}
		if m := c.reps.recorded("mint"); len(m) != 1 || m[0].target.HintFor != c.pref[0] {
			t.Errorf("mint %+v, want one as a fallback for %s", m, c.pref[0])
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		c.reps.set(c.self, behaviour{err: errReplica})
		if _, err := c.put(t, "v", Params{}); !errors.Is(err, errReplica) {
			t.Fatalf("put at a failing primary coordinator: %v, want the local error", err)
		}
		if n := len(c.reps.recorded("merge", "forward")); n != 0 {
			t.Errorf("%d calls after the local write failed", n)
		}
	})
}

// A plain Redis SET supersedes every sibling the coordinating replica holds;
// it needs Replicas that can, and is refused as invalid otherwise.
func TestPutSupersedeLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		req := PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v")}, SupersedeLocal: true}
		if _, err := c.Put(t.Context(), req); !errors.Is(err, ErrInvalid) {
			t.Fatalf("supersede without LocalSuperseder: %v, want ErrInvalid", err)
		}
		if n := len(c.reps.recorded()); n != 0 {
			t.Errorf("%d calls for a refused supersede", n)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 3}, func(f *fakeReplicas) Replicas { return superseding{f} })
		for _, v := range []string{"a", "b"} { // two blind writes: siblings
			if _, err := c.put(t, v, Params{}); err != nil {
				t.Fatal(err)
			}
		}
		req := PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("c")}, SupersedeLocal: true}
		res, err := c.Put(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Set.Siblings) != 1 || string(res.Set.Siblings[0].Value.Data) != "c" {
			t.Errorf("set after a superseding write %+v, want c alone", res.Set)
		}
		if m := c.reps.recorded("supersede"); len(m) != 1 {
			t.Errorf("supersede calls %+v, want 1", m)
		}
		c.Wait()
	})
}

// Dynamo §4.5 (read repair): a read answers with the sync of the first R
// answers, then sends the sync of every answer that came in within
// ReadRepairWait to the primaries that were behind, and to nobody else.
func TestGetReadRepair(t *testing.T) {
	blind := func(s vclock.Set, node, val string) vclock.Set {
		out, _ := vclock.Update(s, nil, vclock.Actor{Node: node, Epoch: 1}, vclock.Value{Data: []byte(val)})
		return out
	}
	old := blind(vclock.Set{}, "w1", "old")
	cur := blind(old, "w2", "new")          // old and new as siblings
	other := blind(vclock.Set{}, "w3", "x") // concurrent with both
	for _, tc := range []struct {
		name     string
		members  int
		dead     []int
		sets     map[int]vclock.Set // by preference index; missing: never written
		fallback map[int]vclock.Set // hints held by the fallback for the dead primary
		b        map[int]behaviour
		r        int
		answer   []string // values of the answer
		repaired []int    // primaries repaired, in order
	}{
		{"one primary behind", 3, nil, map[int]vclock.Set{0: cur, 1: cur, 2: old}, nil, nil, 3,
			[]string{"new", "old"}, []int{2}},
		{"one primary empty", 3, nil, map[int]vclock.Set{0: cur, 1: cur}, nil, nil, 2,
			[]string{"new", "old"}, []int{2}},
		{"all equal: nothing to repair", 3, nil, map[int]vclock.Set{0: cur, 1: cur, 2: cur}, nil, nil, 2,
			[]string{"new", "old"}, nil},
		{"each holds what the other lacks: both repaired", 3, nil, map[int]vclock.Set{0: cur, 1: other, 2: vclock.Sync(cur, other)}, nil, nil, 3,
			[]string{"new", "old", "x"}, []int{0, 1}},
		{"a late answer within the wait is repaired", 3, nil, map[int]vclock.Set{0: cur, 1: cur, 2: old},
			nil, map[int]behaviour{2: {delay: 100 * time.Millisecond}}, 2, []string{"new", "old"}, []int{2}},
		{"an answer later than the wait is not", 3, nil, map[int]vclock.Set{0: cur, 1: cur, 2: old},
			nil, map[int]behaviour{2: {delay: 300 * time.Millisecond}}, 2, []string{"new", "old"}, nil},
		{"a fallback behind is not repaired", 4, []int{2}, map[int]vclock.Set{0: cur, 1: cur},
			map[int]vclock.Set{3: old}, nil, 3, []string{"new", "old"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var repaired []ring.Target
				c := newTestCoord(t, tc.members, 0, Params{N: 3, R: 2, W: 2}, nil)
				c.cfg.OnReadRepair = func(rt ring.Target, err error) { repaired = append(repaired, rt) }
				c.m.kill(idsOf(c.pref, tc.dead)...)
				for i, s := range tc.sets {
					c.reps.sets[c.pref[i]] = s
				}
				for i, s := range tc.fallback {
					c.reps.hints[[2]ring.NodeID{c.pref[i], c.pref[tc.dead[0]]}] = s
				}
				for i, b := range tc.b {
					c.reps.set(c.pref[i], b)
				}
				res, err := c.Get(t.Context(), GetRequest{Key: []byte("k"), Params: Params{R: tc.r}})
				if err != nil {
					t.Fatal(err)
				}
				var vals []string
				for _, s := range res.Set.Live() {
					vals = append(vals, string(s.Value.Data))
				}
				slices.Sort(vals)
				if !slices.Equal(vals, tc.answer) {
					t.Errorf("answer %v, want %v", vals, tc.answer)
				}
				c.Wait()
				var merged vclock.Set
				for _, s := range tc.sets {
					merged = vclock.Sync(merged, s)
				}
				enc, _ := merged.MarshalBinary()
				var got []ring.NodeID
				for _, m := range c.reps.recorded("merge") {
					got = append(got, m.target.Node)
					if m.target.HintFor != "" || !slices.Equal(m.set, enc) || m.durable {
						t.Errorf("repair %+v: want the merged set, not durable, to a primary", m.target)
					}
				}
				// Repairs follow the order answers arrived in, which is
				// not fixed for answers of the same instant.
				slices.Sort(got)
				want := idsOf(c.pref, tc.repaired)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("repaired %v, want %v", got, want)
				}
				if len(repaired) != len(got) {
					t.Errorf("OnReadRepair called %d times for %d repairs", len(repaired), len(got))
				}
				for _, i := range tc.repaired {
					if !c.reps.setOf(c.pref[i]).Equal(merged) {
						t.Errorf("%s not up to date after its repair", c.pref[i])
					}
				}
			})
		})
	}
}

// Two replicas whose sibling sets together exceed the merge cap (4,096,
// vclock.MaxSiblings): the read's merge keeps the newest within the cap
// (siblings.Policy), as replica merges do, so it answers, reports what it
// dropped once, and repairs both with a set that encodes; before, the
// merge held all 4,200 and read repair failed to encode it.
func TestGetMergeTrimmedToTheCap(t *testing.T) {
	diverged := func(node string, n int, ts int64) vclock.Set {
		var s vclock.Set
		for i := range n {
			s, _ = vclock.Update(s, nil, vclock.Actor{Node: node, Epoch: 1}, // blind: each a sibling
				vclock.Value{Data: []byte("v"), Timestamp: ts + int64(i)})
		}
		return s
	}
	older, newer := diverged("a", 2100, 0), diverged("b", 2100, 1<<40)
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		var trims, dropped int
		c.cfg.Trimmed = func(k ring.Key, hintFor string, kept int, d []vclock.Sibling) {
			trims++
			dropped += len(d)
			if hintFor != "" || kept != vclock.MaxSiblings {
				t.Errorf("Trimmed(hintFor %q, kept %d), want \"\" and %d", hintFor, kept, vclock.MaxSiblings)
			}
		}
		c.reps.sets[c.pref[0]], c.reps.sets[c.pref[1]], c.reps.sets[c.pref[2]] = older, newer, older
		res, err := c.Get(t.Context(), GetRequest{Key: []byte("k"), Params: Params{R: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Set.Siblings); n != vclock.MaxSiblings {
			t.Fatalf("answer of %d siblings, want the cap %d", n, vclock.MaxSiblings)
		}
		for _, sb := range res.Set.Siblings[len(res.Set.Siblings)-2100:] {
			if sb.Value.Timestamp < 1<<40 {
				t.Fatalf("an older sibling kept over a newer one: %+v", sb)
			}
		}
		c.Wait()
		if trims != 1 || dropped != 4200-vclock.MaxSiblings {
			t.Errorf("Trimmed called %d times with %d dropped, want once with %d", trims, dropped, 4200-vclock.MaxSiblings)
		}
		if got := len(c.reps.recorded("merge")); got != 3 {
			t.Errorf("%d repairs, want 3 (every replica lacked part of the answer)", got)
		}
		for _, id := range c.pref[:3] {
			if s := c.reps.setOf(id); !s.Equal(res.Set) {
				t.Errorf("%s holds %d siblings after its repair, want the answer's %d", id, len(s.Siblings), len(res.Set.Siblings))
			}
		}
	})
}

// A read that cannot gather R answers fails at its deadline with the counts,
// and one that gossip already shows cannot is refused without asking anyone.
func TestGetQuorumErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		c.reps.set(c.pref[1], behaviour{hang: true})
		c.reps.set(c.pref[2], behaviour{err: errReplica})
		start := time.Now()
		_, err := c.Get(t.Context(), GetRequest{Key: []byte("k"), Params: Params{Timeout: time.Second}})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Op != "get" || qe.Acks != 1 || qe.Required != 2 || qe.Targets != 3 || !errors.Is(err, errReplica) {
			t.Fatalf("get: %v (%+v), want 1 of 2 acks, 3 targets, wrapping the replica error", err, qe)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("failed after %s, want the 1s timeout", d)
		}
		c.Wait()

		c.m.kill(c.pref[1], c.pref[2])
		n := len(c.reps.recorded())
		if _, err := c.Get(t.Context(), GetRequest{Key: []byte("k")}); !errors.As(err, &qe) || qe.Targets != 1 {
			t.Fatalf("get with one live replica at r=2: %v, want a refusal", err)
		}
		if m := len(c.reps.recorded()); m != n {
			t.Errorf("a refused read made %d calls", m-n)
		}
	})
}

// Close waits for the calls still running after the answers (late acks and
// read repair), which end by their own deadlines, and refuses new requests.
func TestCloseWaitsForBackgroundCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2, Timeout: 5 * time.Second}, nil)
		c.reps.set(c.pref[2], behaviour{hang: true})
		start := time.Now()
		if _, err := c.put(t, "v", Params{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(t.Context(), GetRequest{Key: []byte("k")}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("answers took %s with two fast replicas", d)
		}
		closed := make(chan time.Time)
		go func() {
			c.Close()
			closed <- time.Now()
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while replica calls were running")
		default:
		}
		if at, want := <-closed, 5*time.Second+callsSlack; at.Sub(start) != want {
			t.Errorf("Close returned after %s, want %s (the hung calls' deadline)", at.Sub(start), want)
		}
		for _, cl := range c.reps.recorded() {
			if cl.end.IsZero() {
				t.Errorf("%s on %s still running after Close", cl.method, cl.target.Node)
			}
		}
		if _, err := c.put(t, "v", Params{}); !errors.Is(err, ErrClosed) {
			t.Errorf("put after Close: %v, want ErrClosed", err)
		}
		if _, err := c.Get(context.Background(), GetRequest{Key: []byte("k")}); !errors.Is(err, ErrClosed) {
			t.Errorf("get after Close: %v, want ErrClosed", err)
		}
	})
}

// A request that times out with a replica hung reports what it saw before
// its deadline, the same every time: the hung call ends callsSlack later,
// so its deadline error never races the request's own. (When both ended
// at one instant, the answer listed the call's error or not, as the
// scheduler had it.)
func TestTimeoutAnswerDoesNotRaceCallDeadlines(t *testing.T) {
	var putErrs, getErrs []string
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			tc := newTestCoord(t, 3, 0, Params{N: 3, R: 3, W: 3, Timeout: time.Second}, nil)
			defer tc.Close()
			tc.reps.set(tc.pref[2], behaviour{hang: true})
			_, err := tc.put(t, "v", Params{})
			if err == nil {
				t.Fatal("a write with a hung replica at W=N succeeded")
			}
			putErrs = append(putErrs, err.Error())
			_, err = tc.Get(t.Context(), GetRequest{Key: []byte("k")})
			if err == nil {
				t.Fatal("a read with a hung replica at R=N succeeded")
			}
			getErrs = append(getErrs, err.Error())
		})
	}
	for i := range putErrs {
		if putErrs[i] != putErrs[0] || getErrs[i] != getErrs[0] {
			t.Fatalf("run %d answered differently:\n%s\n%s\nfirst run:\n%s\n%s", i, putErrs[i], getErrs[i], putErrs[0], getErrs[0])
		}
	}
	if strings.Contains(putErrs[0], "deadline") || strings.Contains(getErrs[0], "deadline") {
		t.Fatalf("the answers list the hung call's own timeout: %s; %s", putErrs[0], getErrs[0])
	}
}
