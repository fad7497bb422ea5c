package antientropy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/driverenv"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// Drivers without a node: two replicas on in-memory stores whose Hosts
// call each other's Serve directly (the bytes still go through the wire
// codecs), on a ring of 8 partitions where both are primaries of all.

type testNode struct {
	id    string
	st    *store.Store
	rep   *replica.Replica
	gate  *replica.Gate
	trees *Trees
	d     *Driver
}

type testNet struct {
	r     *ring.Ring
	nodes map[string]*testNode
	down  map[string]bool
}

type testHost struct {
	net  *testNet
	self string
}

func (h testHost) Ring() *ring.Ring { return h.net.r }
func (h testHost) Alive(id ring.NodeID) bool {
	return string(id) == h.self || !h.net.down[string(id)]
}
func (h testHost) Call(ctx context.Context, peer string, m transport.Method, body []byte) ([]byte, error) {
	if h.net.down[peer] {
		return nil, transport.ErrUnreachable
	}
	return h.net.nodes[peer].d.Serve(ctx, h.self, m, body)
}

const testLeafBits = 4

func newTestNet(t *testing.T, ids ...string) *testNet {
	t.Helper()
	return newTestNetClock(t, nil, ids...)
}

// newTestNetClock is newTestNet with every replica and driver on the clock
// now (nil: time.Now).
func newTestNetClock(t *testing.T, now func() time.Time, ids ...string) *testNet {
	t.Helper()
	var members []ring.Member
	for _, id := range ids {
		members = append(members, ring.Member{ID: ring.NodeID(id)})
	}
	r, err := ring.New(ring.Config{Partitions: 8, Tokens: 8}, members)
	if err != nil {
		t.Fatal(err)
	}
	net := &testNet{r: r, nodes: map[string]*testNode{}, down: map[string]bool{}}
	cfg := DefaultLocalConfig()
	cfg.Interval, cfg.KeysPerSecond, cfg.LeafBits = 0, 0, testLeafBits
	for _, id := range ids {
		st := storetest.Open(t)
		n := &testNode{id: id, st: st, gate: &replica.Gate{}}
		var err error
		if n.trees, err = NewTrees(8, testLeafBits); err != nil {
			t.Fatal(err)
		}
		dir, err := replica.OpenDir(st, id)
		if err != nil {
			t.Fatal(err)
		}
		n.rep, err = replica.New(replica.Config{Self: id, Store: st, Epochs: dir.Epochs, Gate: n.gate, Observer: n.trees.Observe, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		n.d, err = New(cfg, Deps{Env: driverenv.Env{Self: id, N: len(ids), CallTimeout: time.Second, Now: now}, MaxKeySize: 1024,
			Host: testHost{net, id}, Replica: n.rep, Gate: n.gate, Trees: n.trees, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.d.Close)
		net.nodes[id] = n
	}
	return net
}

func (n *testNode) merge(t *testing.T, net *testNet, key string, s vclock.Set) {
	t.Helper()
	if _, err := n.rep.MergeSet(t.Context(), "", net.r.KeyOf([]byte(key)), s, false); err != nil {
		t.Fatal(err)
	}
}

func (n *testNode) read(t *testing.T, net *testNet, key string) (vclock.Set, bool) {
	t.Helper()
	s, found, err := n.rep.ReadLocal("", net.r.KeyOf([]byte(key)))
	if err != nil {
		t.Fatal(err)
	}
	return s, found
}

func oneWrite(actor, v string) vclock.Set {
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: actor, Epoch: 1}, vclock.Value{Data: []byte(v)})
	return s
}

// An on-demand repair brings keys only one side holds, and concurrent
// writes to one key, to both sides, and the trees to equal roots.
func TestDriverRepairConverges(t *testing.T) {
	net := newTestNet(t, "a", "b")
	a, b := net.nodes["a"], net.nodes["b"]
	for i := range 20 {
		a.merge(t, net, fmt.Sprintf("only-a-%d", i), oneWrite("a", "x"))
		b.merge(t, net, fmt.Sprintf("only-b-%d", i), oneWrite("b", "y"))
	}
	a.merge(t, net, "both", oneWrite("a", "1"))
	b.merge(t, net, "both", oneWrite("b", "2"))
	rep, err := a.d.Repair(t.Context(), -1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.KeysDiffering != 41 || rep.RepairedLocal != 21 || rep.RepairedRemote != 21 {
		t.Fatalf("report %+v: want 41 differing, 21 repaired each way", rep)
	}
	for i := range 20 {
		for _, n := range []*testNode{a, b} {
			for _, k := range []string{fmt.Sprintf("only-a-%d", i), fmt.Sprintf("only-b-%d", i)} {
				if _, found := n.read(t, net, k); !found {
					t.Fatalf("%s lacks %s after the repair", n.id, k)
				}
			}
		}
	}
	sa, _ := a.read(t, net, "both")
	sb, _ := b.read(t, net, "both")
	if !sa.Equal(sb) || len(sa.Siblings) != 2 {
		t.Fatalf("concurrent writes after the repair: %v and %v", sa, sb)
	}
	for p := range uint32(8) {
		if a.trees.Root(p) != b.trees.Root(p) {
			t.Fatalf("partition %d: roots differ after the repair", p)
		}
	}
	if again, _ := b.d.Repair(t.Context(), -1); again.KeysDiffering != 0 {
		t.Fatalf("a second repair found %d differences", again.KeysDiffering)
	}
}

// A tombstone every primary was known to hold is not copied to a replica
// without the key: that replica reaped it already.
func TestDriverLeavesConfirmedTombstonesToTheReaper(t *testing.T) {
	net := newTestNet(t, "a", "b")
	a, b := net.nodes["a"], net.nodes["b"]
	live := oneWrite("a", "v")
	dead, _ := vclock.Update(live, live.Context, vclock.Actor{Node: "a", Epoch: 1}, vclock.Value{Deleted: true})
	a.merge(t, net, "gone", dead)
	a.merge(t, net, "fresh", dead) // unconfirmed: copied like any set
	k := net.r.KeyOf([]byte("gone"))
	if ok, err := a.rep.ConfirmTomb(t.Context(), k, dead.Digest(), time.Now()); !ok || err != nil {
		t.Fatalf("confirm: %v", err)
	}
	rep, err := a.d.Repair(t.Context(), int(k.Partition))
	if err != nil {
		t.Fatal(err)
	}
	if _, found := b.read(t, net, "gone"); found {
		t.Fatal("a confirmed tombstone was copied to a replica without the key")
	}
	if rep.Details[0].LeftToReaper != 1 {
		t.Fatalf("report %+v: want one key left to the reaper", rep.Details)
	}
	if _, err := a.d.Repair(t.Context(), -1); err != nil {
		t.Fatal(err)
	}
	if s, found := b.read(t, net, "fresh"); !found || !s.IsDeleted() {
		t.Fatal("an unconfirmed tombstone was not copied")
	}
}

// A closed gate (quarantine) refuses repairs and every anti-entropy RPC but
// the peer-status question; a peer in the exclusion ledger is refused.
func TestDriverRefusals(t *testing.T) {
	net := newTestNet(t, "a", "b")
	a, b := net.nodes["a"], net.nodes["b"]
	a.gate.Close()
	if _, err := a.d.Repair(t.Context(), -1); !errors.Is(err, replica.ErrQuarantined) {
		t.Fatalf("repair while quarantined: %v", err)
	}
	req, _ := (&wire.PeerStatusRequest{}).Append(nil)
	if _, err := a.d.Serve(t.Context(), "b", wire.MethodPeerStatus, req); err != nil {
		t.Fatalf("peer status while quarantined: %v", err)
	}
	rep, err := b.d.Repair(t.Context(), -1)
	if err != nil || rep.Exchanges != 8 || rep.Failed != 8 {
		t.Fatalf("repair with a quarantined peer: %+v, %v; want its 8 exchanges failed", rep, err)
	}
	var re *transport.RemoteError
	a.gate.Open()
	if err := b.d.exclude([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.d.Refusal("a"); err == nil || !errors.As(err, &re) || re.Code != wire.CodeExcluded {
		t.Fatalf("refusal of an excluded peer: %v", err)
	}
	if err := b.d.CheckPeer("a"); err == nil {
		t.Fatal("calls to an excluded peer are not refused")
	}
	if b.d.Refusal("c") != nil {
		t.Fatal("a peer outside the ledger is refused")
	}
}
