package antientropy

import (
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/vclock"
)

// A value past its deadline takes the path of a delete: each primary's
// reaper turns it into its tombstone (after the expiry margin), the
// tombstones are confirmed once both hold them and reaped after the grace;
// the value merged back later from an old copy stores as a tombstone,
// never as a live value.
func TestReaperExpiresReapsAndKeepsExpired(t *testing.T) {
	fc := clock.NewFake(time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC))
	now, advance := fc.Now, fc.Advance
	net := newTestNetClock(t, now, "a", "b")
	a, b := net.nodes["a"], net.nodes["b"]

	deadline := now().Add(time.Minute).UnixNano()
	old, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "a", Epoch: 1}, vclock.Value{Data: []byte("v"), Expires: deadline})
	keep := oneWrite("a", "forever")
	for _, n := range []*testNode{a, b} {
		n.merge(t, net, "ttl", old)
		n.merge(t, net, "keep", keep)
	}
	pass := func(n *testNode) ReapStatus {
		t.Helper()
		st, err := n.d.reap(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := pass(a); st.Expired != 0 || st.Candidates != 0 {
		t.Fatalf("before the deadline: %+v", st)
	}
	advance(time.Minute + replica.DefaultExpiryMargin/2)
	if st := pass(a); st.Expired != 0 {
		t.Fatalf("within the expiry margin: %+v", st)
	}
	advance(replica.DefaultExpiryMargin)
	if st := pass(a); st.Expired != 1 || st.Confirmed != 0 || st.Blocked != 1 {
		t.Fatalf("a's pass past the margin: %+v; want one expired, blocked by b's copy", st)
	}
	if st := pass(b); st.Expired != 1 || st.Confirmed != 1 {
		t.Fatalf("b's pass: %+v; want one expired and confirmed (a holds the same tombstone)", st)
	}
	if st := pass(a); st.Confirmed != 1 {
		t.Fatalf("a's second pass: %+v", st)
	}
	advance(DefaultLocalConfig().TombstoneGrace)
	for _, n := range []*testNode{a, b} {
		if st := pass(n); st.Reaped != 1 {
			t.Fatalf("%s after the grace: %+v", n.id, st)
		}
		if _, found := n.read(t, net, "ttl"); found {
			t.Fatalf("%s still holds the expired key", n.id)
		}
		if s, found := n.read(t, net, "keep"); !found || s.IsDeleted() {
			t.Fatalf("%s lost the key without a deadline", n.id)
		}
	}
	// A replica that was away comes back with the old copy.
	a.merge(t, net, "ttl", old)
	s, _ := a.read(t, net, "ttl")
	if !s.IsDeleted() || !s.IsDeletedAt(now().UnixNano()) {
		t.Fatalf("the old copy came back live: %+v", s)
	}
}
