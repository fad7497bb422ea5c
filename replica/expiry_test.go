package replica

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
)

// fakeClock is a settable clock for expiry.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newExpiryReplica(t *testing.T, clk *fakeClock, observe Observer) *Replica {
	t.Helper()
	st := storetest.Open(t)
	dir, err := OpenDir(st, "n1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Self: "n1", Store: st, Epochs: dir.Epochs, Now: clk.now, ExpiryMargin: time.Second, Observer: observe})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A record whose values all expire carries the time they do in its
// envelope (format 3); the reaper's Expire turns them into tombstones only
// ExpiryMargin after the deadline, and the record then takes the path of
// deleted ones (tomb field unconfirmed, format 2).
func TestExpireTurnsExpiredRecordIntoTombstones(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{}
	clk.ns.Store(time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()) // past 2038
	var changes atomic.Int32
	r := newExpiryReplica(t, clk, func(ring.Key, uint64, uint64) { changes.Add(1) })
	deadline := clk.now().Add(10 * time.Second).UnixNano()
	m, err := r.Mint(ctx, ring.Target{Node: "n1"}, key("k"), nil, vclock.Value{Data: []byte("v"), Expires: deadline}, false)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Record(key("k"))
	if err != nil || rec.Tomb != TombLive {
		t.Fatalf("record = %+v, %v", rec, err)
	}
	raw, _ := r.st.Get(key("k"))
	h, err := ParseHeader(raw)
	if err != nil || h.Format != formatV3 || h.DeadAt != deadline/1e6 {
		t.Fatalf("header = %+v, %v; want format 3, dead at %d ms", h, err, deadline/1e6)
	}

	clk.advance(10*time.Second + time.Second/2) // past the deadline, within the margin
	if changed, _, err := r.Expire(ctx, key("k")); changed || err != nil {
		t.Fatalf("Expire within the margin changed the record (%v)", err)
	}
	clk.advance(time.Second)
	changed, dig, err := r.Expire(ctx, key("k"))
	if !changed || err != nil {
		t.Fatalf("Expire past the margin: %v, %v", changed, err)
	}
	rec, _ = r.Record(key("k"))
	s, _, _ := r.ReadLocal("", key("k"))
	if rec.Tomb != TombUnconfirmed || SetBytesDigest(rec.Set) != dig || !s.IsDeleted() ||
		s.Siblings[0].Dot != m.Dot || s.Siblings[0].Value.Data != nil {
		t.Fatalf("after Expire: record %+v, set %+v", rec, s)
	}
	raw, _ = r.st.Get(key("k"))
	if h, _ := ParseHeader(raw); h.Format != formatV2 {
		t.Fatalf("a record of tombstones is written in format %d", h.Format)
	}
	if changes.Load() != 2 {
		t.Fatalf("observer saw %d changes, want 2 (the write and the conversion)", changes.Load())
	}
	if changed, _, _ := r.Expire(ctx, key("k")); changed {
		t.Fatal("Expire is not idempotent")
	}
	// The same set merged back from a replica that never converted it
	// changes nothing: the tombstone wins.
	if changed, err := r.MergeSet(ctx, "", key("k"), m.Set, false); changed || err != nil {
		t.Fatalf("merging the old value back changed the record (%v)", err)
	}
	if ok, err := r.ConfirmTomb(ctx, key("k"), dig, clk.now()); !ok || err != nil {
		t.Fatalf("the expired record cannot be confirmed as tombstones: %v", err)
	}
	if ok, err := r.Reap(ctx, key("k"), dig); !ok || err != nil {
		t.Fatalf("reap: %v", err)
	}
}

// A merge (hint, repair, anti-entropy) that brings a value already past
// its deadline and margin stores its tombstone; one that mixes an expired
// value with a live one keeps the live one and the live record.
func TestMergeStoresExpiredValuesAsTombstones(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{}
	clk.ns.Store(int64(1e18))
	r := newExpiryReplica(t, clk, nil)
	a := vclock.Actor{Node: "n2", Epoch: 1}
	old, _ := vclock.Update(vclock.Set{}, nil, a, vclock.Value{Data: []byte("old"), Expires: clk.now().Add(-time.Minute).UnixNano()})
	if _, err := r.MergeSet(ctx, "", key("k"), old, false); err != nil {
		t.Fatal(err)
	}
	s, _, _ := r.ReadLocal("", key("k"))
	if len(s.Siblings) != 1 || !s.Siblings[0].Value.Deleted {
		t.Fatalf("stored %+v, want the tombstone of the expired value", s)
	}
	mixed, _ := vclock.Update(old, nil, a, vclock.Value{Data: []byte("new")})
	if _, err := r.MergeSet(ctx, "hintfor", key("h"), mixed, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.MergeSet(ctx, "", key("k"), mixed, false); err != nil {
		t.Fatal(err)
	}
	s, _, _ = r.ReadLocal("hintfor", key("k"))
	if live := s.Live(); len(live) != 1 || string(live[0].Value.Data) != "new" {
		t.Fatalf("live = %+v", live)
	}
	if rec, _ := r.Record(key("k")); rec.Tomb != TombLive {
		t.Fatalf("tomb = %d, want live", rec.Tomb)
	}
}
