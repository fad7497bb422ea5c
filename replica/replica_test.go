package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
)

// observed is one Observer call.
type observed struct {
	key      string
	old, new uint64
}

// fixture is a replica of node "n1" over an in-memory store, with a gate,
// an observer that records its calls and a hint cap that can be switched.
type fixture struct {
	st   *store.Store
	dir  Dir
	gate *Gate
	rep  *Replica

	mu        sync.Mutex
	seen      []observed
	refuse    error
	hintsSeen []string
}

func newFixture(t *testing.T, st *store.Store) *fixture {
	t.Helper()
	f := &fixture{st: st, gate: &Gate{}}
	var err error
	if f.dir, err = OpenDir(st, "n1"); err != nil {
		t.Fatal(err)
	}
	f.rep, err = New(Config{
		Self: "n1", Store: st, Epochs: f.dir.Epochs, Gate: f.gate,
		Observer: func(k ring.Key, old, nw uint64) {
			f.mu.Lock()
			f.seen = append(f.seen, observed{string(k.Key), old, nw})
			f.mu.Unlock()
		},
		AcceptHint: func(string, ring.Key) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.refuse
		},
		HintStored: func(target string) {
			f.mu.Lock()
			f.hintsSeen = append(f.hintsSeen, target)
			f.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func key(s string) ring.Key { return ring.Key{Partition: 1, Hash: uint64(len(s)), Key: []byte(s)} }

func val(s string) vclock.Value { return vclock.Value{Data: []byte(s)} }

func (f *fixture) mint(t *testing.T, k string, hintFor string) vclock.Dot {
	t.Helper()
	return f.mintValue(t, k, hintFor, "v").Dot
}

// mintValue mints a write of v to k at n1 (a hint for hintFor if not
// empty), without a context.
func (f *fixture) mintValue(t *testing.T, k, hintFor, v string) quorum.Minted {
	t.Helper()
	m, err := f.rep.Mint(t.Context(), ring.Target{Node: "n1", HintFor: ring.NodeID(hintFor)}, key(k), nil, val(v), false)
	if err != nil {
		t.Fatalf("mint %s: %v", k, err)
	}
	return m
}

// wantOnly fails the test unless set, what a write of k returned (after
// what), holds one live sibling of value want, and is what the replica
// stores for k.
func (f *fixture) wantOnly(t *testing.T, k string, set vclock.Set, want, after string) {
	t.Helper()
	if live := set.Live(); len(live) != 1 || string(live[0].Value.Data) != want {
		t.Fatalf("siblings after %s: %+v", after, set.Siblings)
	}
	s, found, err := f.rep.ReadLocal("", key(k))
	if err != nil || !found || !s.Equal(set) {
		t.Fatalf("stored %+v, %v, %v; want %+v", s, found, err, set)
	}
}

// TestMintEpochRules: the KV679 guard. A node mints a dot of a key under
// the epoch its record remembers only while that record holds every dot of
// the epoch; otherwise under a fresh epoch, never handed out before.
func TestMintEpochRules(t *testing.T) {
	tests := []struct {
		name string
		// prepare runs after a first mint of "k" (under epoch e0) and
		// returns the fixture the second mint of "k" runs on.
		prepare   func(t *testing.T, f *fixture) *fixture
		sameEpoch bool
	}{
		{"a record minted under a valid epoch reuses it", func(t *testing.T, f *fixture) *fixture { return f }, true},
		{"a clean restart keeps the record's epoch valid", func(t *testing.T, f *fixture) *fixture {
			if err := CloseDir(f.st); err != nil {
				t.Fatal(err)
			}
			return newFixture(t, f.st)
		}, true},
		{"an unclean restart moves validFrom past the record's epoch", func(t *testing.T, f *fixture) *fixture {
			g := newFixture(t, f.st)
			if !g.dir.Unclean || g.dir.Fresh {
				t.Fatalf("reopen without CloseDir: %+v, want unclean", g.dir)
			}
			return g
		}, false},
		{"a key whose local copy is gone gets a fresh epoch", func(t *testing.T, f *fixture) *fixture {
			if err := f.st.DropPartition(1); err != nil {
				t.Fatal(err)
			}
			return f
		}, false},
		{"an unreadable record counts as no local copy", func(t *testing.T, f *fixture) *fixture {
			if _, _, err := f.st.Update(t.Context(), key("k"), false, func([]byte, bool) ([]byte, error) { return []byte{9, 9, 9}, nil }); err != nil {
				t.Fatal(err)
			}
			return f
		}, false},
		{"after DropAll every old epoch is invalid", func(t *testing.T, f *fixture) *fixture {
			rec, err := f.st.Get(key("k"))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.rep.DropAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Put the old record back, as if a copy survived somewhere:
			// its epoch must not be reused.
			if _, _, err := f.st.Update(t.Context(), key("k"), false, func([]byte, bool) ([]byte, error) { return rec, nil }); err != nil {
				t.Fatal(err)
			}
			return f
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storetest.Open(t))
			if !f.dir.Fresh || f.dir.Unclean || f.dir.Incarnation == 0 {
				t.Fatalf("new directory: %+v", f.dir)
			}
			e0 := f.mint(t, "k", "").Actor.Epoch
			g := tc.prepare(t, f)
			d := g.mint(t, "k", "")
			if (d.Actor.Epoch == e0) != tc.sameEpoch {
				t.Fatalf("second mint under epoch %d, first %d; want same=%v", d.Actor.Epoch, e0, tc.sameEpoch)
			}
			if d.Actor.Node != "n1" {
				t.Fatalf("minted for actor %q", d.Actor.Node)
			}
		})
	}
}

// TestEpochLeaseIsPersistedBeforeUse: every epoch handed out is below the
// high-water mark on disk, so no restart can hand it out again.
func TestEpochLeaseIsPersistedBeforeUse(t *testing.T) {
	st := storetest.Open(t)
	d, err := OpenDir(st, "n1")
	if err != nil {
		t.Fatal(err)
	}
	e := d.Epochs
	var last uint64
	for i := range 3 * epochLease {
		if e.low() {
			if err := e.extend(); err != nil {
				t.Fatal(err)
			}
		}
		v, err := e.alloc()
		if err != nil {
			t.Fatalf("alloc %d: %v", i, err)
		}
		if v <= last && i > 0 {
			t.Fatalf("epoch %d after %d", v, last)
		}
		last = v
		if i%4096 == 0 || i == 3*epochLease-1 {
			hw, ok, err := getUint64Meta(st, metaEpochHW)
			if err != nil || !ok || hw <= v {
				t.Fatalf("epoch %d handed out with %d persisted (%v, %v)", v, hw, ok, err)
			}
		}
	}
	// Without extend, a lease runs out instead of going past the mark.
	for range 2 * epochLease {
		if _, err := e.alloc(); err != nil {
			if !errors.Is(err, errEpochsExhausted) {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("a whole lease was handed out past the persisted mark")
}

// TestOpenDirRefusesAnotherNode: a data directory belongs to one node.
func TestOpenDirRefusesAnotherNode(t *testing.T) {
	st := storetest.Open(t)
	if _, err := OpenDir(st, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(st, "n2"); err == nil {
		t.Fatal("n2 opened n1's data directory")
	}
	d, err := OpenDir(st, "n1")
	if err != nil || d.Fresh {
		t.Fatalf("reopen by its own node: %+v, %v", d, err)
	}
}

// TestGateClosesRecordsNotHints: a closed gate (quarantine) refuses every
// read and write of records with ErrQuarantined, and takes hints.
func TestGateClosesRecordsNotHints(t *testing.T) {
	ctx := context.Background()
	records := map[string]func(f *fixture) error{
		"mint": func(f *fixture) error {
			_, err := f.rep.Mint(ctx, ring.Target{Node: "n1"}, key("k"), nil, val("v"), false)
			return err
		},
		"merge": func(f *fixture) error {
			_, err := f.rep.MergeSet(ctx, "", key("k"), testSet(t, "x"), false)
			return err
		},
		"read": func(f *fixture) error { _, _, err := f.rep.ReadLocal("", key("k")); return err },
		"view": func(f *fixture) error {
			_, err := f.rep.ViewSet("", key("k"), false, func([]byte) error { return nil })
			return err
		},
		"record": func(f *fixture) error { _, err := f.rep.Record(key("k")); return err },
		"scan": func(f *fixture) error {
			return f.rep.Scan(1, 0, math.MaxUint64, func(ring.Key, []byte) error { return nil })
		},
		"confirm": func(f *fixture) error { _, err := f.rep.ConfirmTomb(ctx, key("k"), 1, time.Now()); return err },
		"reap":    func(f *fixture) error { _, err := f.rep.Reap(ctx, key("k"), 1); return err },
		"drop":    func(f *fixture) error { _, err := f.rep.DropIfUnchanged(ctx, key("k"), nil); return err },
	}
	hints := map[string]func(f *fixture) error{
		"mint a hint": func(f *fixture) error {
			_, err := f.rep.Mint(ctx, ring.Target{Node: "n1", HintFor: "n2"}, key("h"), nil, val("v"), false)
			return err
		},
		"merge a hint": func(f *fixture) error {
			_, err := f.rep.MergeSet(ctx, "n2", key("h2"), testSet(t, "x"), false)
			return err
		},
	}
	f := newFixture(t, storetest.Open(t))
	f.mint(t, "k", "")
	f.gate.Close()
	for name, op := range records {
		if err := op(f); !errors.Is(err, ErrQuarantined) {
			t.Errorf("%s with the gate closed: %v, want ErrQuarantined", name, err)
		}
	}
	for name, op := range hints {
		if err := op(f); err != nil {
			t.Errorf("%s with the gate closed: %v", name, err)
		}
	}
	f.gate.Open()
	for name, op := range records {
		if err := op(f); err != nil {
			t.Errorf("%s with the gate open again: %v", name, err)
		}
	}
}

// TestGateCloseWaitsForReadsInFlight: Close returns only once every read or
// write that entered has left.
func TestGateCloseWaitsForReadsInFlight(t *testing.T) {
	g := &Gate{}
	if err := g.enter(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	deadline := time.Now().Add(5 * time.Second)
	for !g.Closed() {
		if time.Now().After(deadline) {
			t.Fatal("Close never marked the gate closed")
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.enter(); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("enter while closing: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned with a read in flight")
	case <-time.After(20 * time.Millisecond):
	}
	g.exit()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the read left")
	}
	var nilGate *Gate
	if err := nilGate.enter(); err != nil || nilGate.Closed() {
		t.Fatal("a nil gate is not open")
	}
	nilGate.exit()
}

// TestObserverSeesEveryRecordChange: the observer gets the old and new set
// digests of every record write that changes a set, and of every delete;
// hint writes and writes that change nothing are not reported.
func TestObserverSeesEveryRecordChange(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.Open(t))
	m := f.mintValue(t, "k", "", "v")
	d1 := m.Set.Digest()
	if _, err := f.rep.MergeSet(ctx, "", key("k"), m.Set, false); err != nil { // no change
		t.Fatal(err)
	}
	f.mint(t, "h", "n2") // a hint
	del, err := f.rep.Mint(ctx, ring.Target{Node: "n1"}, key("k"), m.Set.Context, vclock.Value{Deleted: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	d2 := del.Set.Digest()
	if ok, err := f.rep.ConfirmTomb(ctx, key("k"), d2, time.UnixMilli(5000)); err != nil || !ok {
		t.Fatalf("confirm: %v, %v", ok, err)
	}
	rec, err := f.rep.Record(key("k"))
	if err != nil || !rec.Confirmed() || rec.Tomb != 5000 {
		t.Fatalf("record after confirm: %+v, %v", rec, err)
	}
	if ok, err := f.rep.Reap(ctx, key("k"), d2); err != nil || !ok {
		t.Fatalf("reap: %v, %v", ok, err)
	}
	want := []observed{{"k", 0, d1}, {"k", d1, d2}, {"k", d2, 0}}
	if fmt.Sprint(f.seen) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", f.seen, want)
	}
	if fmt.Sprint(f.hintsSeen) != "[n2]" {
		t.Fatalf("hint writes seen %v, want [n2]", f.hintsSeen)
	}
}

// TestReapOnlyConfirmedTombstones: ConfirmTomb and Reap act only on the set
// they were asked about, in order; a write in between stops them.
func TestReapOnlyConfirmedTombstones(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.Open(t))
	live, _ := f.rep.Mint(ctx, ring.Target{Node: "n1"}, key("k"), nil, val("v"), false)
	if ok, _ := f.rep.ConfirmTomb(ctx, key("k"), live.Set.Digest(), time.Now()); ok {
		t.Fatal("confirmed a live set")
	}
	del, _ := f.rep.Mint(ctx, ring.Target{Node: "n1"}, key("k"), live.Set.Context, vclock.Value{Deleted: true}, false)
	if ok, _ := f.rep.Reap(ctx, key("k"), del.Set.Digest()); ok {
		t.Fatal("reaped an unconfirmed tombstone")
	}
	if ok, _ := f.rep.ConfirmTomb(ctx, key("k"), del.Set.Digest()+1, time.Now()); ok {
		t.Fatal("confirmed another set's digest")
	}
	if ok, err := f.rep.ConfirmTomb(ctx, key("k"), del.Set.Digest(), time.Now()); !ok || err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if _, err := f.rep.MergeSet(ctx, "", key("k"), testSet(t, "concurrent"), false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.rep.Reap(ctx, key("k"), del.Set.Digest()); ok {
		t.Fatal("reaped after a concurrent write changed the set")
	}
	if rec, _ := f.rep.Record(key("k")); !rec.Found || rec.Tomb != TombLive {
		t.Fatalf("record after the concurrent write: %+v", rec)
	}
}

// TestHintCapRefuses: a hint AcceptHint refuses is not written.
func TestHintCapRefuses(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	full := errors.New("full")
	f.refuse = full
	_, err := f.rep.Mint(t.Context(), ring.Target{Node: "n1", HintFor: "n2"}, key("h"), nil, val("v"), false)
	if !errors.Is(err, full) {
		t.Fatalf("mint of a refused hint: %v", err)
	}
	if _, err := f.st.GetHint("n2", key("h")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused hint stored: %v", err)
	}
	if len(f.hintsSeen) != 0 {
		t.Fatalf("HintStored called for a refused hint: %v", f.hintsSeen)
	}
	// Records are not hints: the cap does not apply.
	f.mint(t, "k", "")
}

// TestSetSizeCap: a write that would make a key's siblings exceed
// MaxSetBytes is refused; a set that fits within it always fits in a
// message (wire.MaxSet).
func TestSetSizeCap(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	tgt := ring.Target{Node: "n1"}
	if _, err := f.rep.Mint(t.Context(), tgt, key("k"), nil, vclock.Value{Data: make([]byte, MaxSetBytes+1)}, false); !errors.Is(err, ErrSetTooLarge) {
		t.Fatalf("a value over the cap: %v, want ErrSetTooLarge", err)
	}
	// Siblings already stored count: two of 1000 bytes and a new one that
	// alone would fit.
	two := testSet(t, "")
	for _, actor := range []string{"a", "b"} {
		two, _ = vclock.Update(two, nil, vclock.Actor{Node: actor, Epoch: 1}, vclock.Value{Data: make([]byte, 1000)})
	}
	if _, err := f.rep.MergeSet(t.Context(), "", key("k"), two, false); err != nil {
		t.Fatal(err)
	}
	_, err := f.rep.Mint(t.Context(), tgt, key("k"), nil, vclock.Value{Data: make([]byte, MaxSetBytes-1000)}, false)
	if !errors.Is(err, ErrSetTooLarge) {
		t.Fatalf("a sibling that makes the set too large: %v, want ErrSetTooLarge", err)
	}
	if s, _, _ := f.rep.ReadLocal("", key("k")); !s.Equal(two) {
		t.Fatal("a refused write changed the stored set")
	}
	// The encoding of a set within the cap: values and content types
	// (counted), at most 64 bytes of framing per sibling (counted), and a
	// context the cap does not count, of at most MaxActors entries.
	maxEntry := 1 + 2 + vclock.MaxNodeLen + 9 + 9
	if worst := MaxSetBytes + vclock.MaxActors*maxEntry + 16; worst > wire.MaxSet {
		t.Fatalf("a set within MaxSetBytes may encode to %d bytes, over wire.MaxSet %d", worst, wire.MaxSet)
	}
}

// TestMintSupersedingLocal: the write replaces every sibling stored here.
func TestMintSupersedingLocal(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.Open(t))
	if _, err := f.rep.MergeSet(ctx, "", key("k"), testSet(t, "a"), false); err != nil {
		t.Fatal(err)
	}
	f.mint(t, "k", "") // a sibling of "a"
	m, err := f.rep.MintSupersedingLocal(ctx, ring.Target{Node: "n1"}, key("k"), nil, val("only"), false)
	if err != nil {
		t.Fatal(err)
	}
	f.wantOnly(t, "k", m.Set, "only", "a superseding write")
}

// TestMergeSetOutright: a merge of a newer write over the stored copy
// (written without decoding the copy, see recordUpdate.merge) stores
// exactly what vclock.Sync makes of the two, keeps the record's mint
// epoch, tells the observer, and still expires what has passed its
// deadline; a concurrent write and a stale set take the decoding path
// and give Sync's answer too.
func TestMergeSetOutright(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.Open(t))
	minted := f.mintValue(t, "k", "", "local")
	before, err := f.rep.Record(key("k"))
	if err != nil {
		t.Fatal(err)
	}
	mintOf := func() uint64 {
		t.Helper()
		b, err := f.st.Get(key("k"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		return h.Mint
	}
	mint0 := mintOf()
	if mint0 == 0 {
		t.Fatalf("minted record has no mint epoch")
	}
	n2 := vclock.Actor{Node: "n2", Epoch: 9}
	over, _ := vclock.Update(minted.Set, minted.Set.Context, n2, val("newer"))      // supersedes
	beside, _ := vclock.Update(minted.Set, nil, vclock.Actor{Node: "n3"}, val("x")) // concurrent with over
	expired := vclock.Value{Data: []byte("gone"), Expires: 1}                       // deadline in 1970
	dead, _ := vclock.Update(over, over.Context, n2, expired)                       // supersedes over, expired
	cur := minted.Set
	for i, in := range []vclock.Set{over, dead, beside, minted.Set} {
		want := vclock.Sync(cur, in)
		want, _ = vclock.Expire(want, time.Now().UnixNano())
		if _, err := f.rep.MergeSet(ctx, "", key("k"), in, false); err != nil {
			t.Fatalf("merge %d: %v", i, err)
		}
		got, _, err := f.rep.ReadLocal("", key("k"))
		if err != nil || !got.Equal(want) {
			t.Fatalf("merge %d: stored %v, %v; want %v", i, got, err, want)
		}
		if m := mintOf(); m != mint0 {
			t.Fatalf("merge %d: mint epoch %d, want %d kept", i, m, mint0)
		}
		cur = want
	}
	if v, ok := cur.Find(dead.Siblings[0].Dot); !ok || !v.Deleted {
		t.Fatalf("the expired value was stored live: %v", cur)
	}
	after, _ := f.rep.Record(key("k"))
	if len(f.seen) < 4 || f.seen[1].old != SetBytesDigest(before.Set) || f.seen[len(f.seen)-1].new != SetBytesDigest(after.Set) {
		t.Fatalf("observer saw %v", f.seen)
	}
}

// TestMintQueued: the queued mint is MintSupersedingLocal's write, stored
// and reported to the observer once commit returned, not before.
func TestMintQueued(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.Open(t))
	f.mint(t, "k", "")
	f.mu.Lock()
	f.seen = nil
	f.mu.Unlock()
	m, commit, err := f.rep.MintQueued(ctx, ring.Target{Node: "n1"}, key("k"), nil, val("only"), false, true)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	early := len(f.seen)
	f.mu.Unlock()
	if early != 0 {
		t.Errorf("observer told of the write before its commit: %d calls", early)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	f.wantOnly(t, "k", m.Set, "only", "a queued superseding write")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) != 1 || f.seen[0].new != SetBytesDigest(m.Encoded) {
		t.Errorf("observer calls after the commit: %+v, want one with the new set's digest", f.seen)
	}
}

// ViewSet with ctxOnly (an overwrite's read, wire.MethodReadContext)
// answers exactly the context ReadLocal gives, record or hint, and no
// sibling; without it, the set ReadLocal gives. Nothing held: not found.
func TestViewSetContextOnly(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	ctx := t.Context()
	if _, err := f.rep.MergeSet(ctx, "", key("k"), testSet(t, "a", "b"), false); err != nil {
		t.Fatal(err)
	}
	blind, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n2", Epoch: 7}, val("c"))
	if _, err := f.rep.MergeSet(ctx, "", key("k"), blind, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rep.MergeSet(ctx, "n3", key("k"), testSet(t, "h"), false); err != nil {
		t.Fatal(err)
	}
	for _, hintFor := range []string{"", "n3"} {
		want, _, err := f.rep.ReadLocal(hintFor, key("k"))
		if err != nil || len(want.Siblings) < 2 {
			t.Fatalf("ReadLocal(%q): %v, %v; want siblings", hintFor, want, err)
		}
		for _, ctxOnly := range []bool{false, true} {
			var got vclock.Set
			found, err := f.rep.ViewSet(hintFor, key("k"), ctxOnly, func(set []byte) (err error) {
				got, err = vclock.DecodeSet(set)
				return err
			})
			exp := want
			if ctxOnly {
				exp = vclock.Set{Context: want.Context}
			}
			if err != nil || !found || !got.Equal(exp) {
				t.Errorf("ViewSet(%q, ctxOnly %v) = %v, %v, %v; want %v", hintFor, ctxOnly, got, found, err, exp)
			}
		}
	}
	if found, err := f.rep.ViewSet("", key("none"), true, func([]byte) error { t.Error("fn called"); return nil }); found || err != nil {
		t.Errorf("ViewSet of an absent key: %v, %v", found, err)
	}
}
