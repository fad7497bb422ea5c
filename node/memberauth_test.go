package node_test

import (
	"math"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/ring"
)

func stateOf(t *testing.T, n *node.Node) node.ClusterState {
	t.Helper()
	s, err := node.DecodeClusterState(n.LocalState())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forged is rec with rpc and the highest version a record may carry,
// signed by a new identity that claims rec's id: an impostor's record.
func forged(t *testing.T, rec node.MemberRecord, rpc string) node.MemberRecord {
	t.Helper()
	rogue, err := memberauth.NewIdentity(rec.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec.RPC, rec.Version = rpc, memberauth.MaxVersion
	if rec, err = rogue.Sign(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// gossip encodes what a peer would gossip: the ring of st, with members.
func gossip(t *testing.T, st node.ClusterState, members map[string]node.MemberRecord) []byte {
	t.Helper()
	b, err := node.ClusterState{Partitions: st.Partitions, Tokens: st.Tokens, Mode: st.Mode, Replicas: st.Replicas, Members: members}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Issue 13: a member's record is changed only by that member (or an admin
// remove). A rogue gossip member's record for another member, its
// removal of another member, an unsigned record and a version meant to
// wrap the counter are all ignored.
func TestRogueMemberRecordsIgnored(t *testing.T) {
	c := nodetest.NewCluster(t, 2, nodetest.Options{InMemory: true})
	c.WaitConverged(10 * time.Second)
	n1, id2 := c.Node(0), c.ID(1)
	st := stateOf(t, n1)
	real := st.Members[id2]
	none := func(string) (node.MemberRecord, bool) { return node.MemberRecord{}, false }
	if real.Key.IsZero() || memberauth.Verify(real, none, memberauth.Policy{}) != nil {
		t.Fatalf("%s's record as n1 holds it is not signed by its member: %+v", id2, real)
	}

	hijack := forged(t, real, "127.0.0.1:1")
	unsigned := real
	unsigned.RPC, unsigned.Version, unsigned.Key, unsigned.Sig = "127.0.0.1:2", real.Version+5, memberauth.PublicKey{}, memberauth.Signature{}
	wrap := real
	wrap.Version = math.MaxUint64 // past MaxVersion: the next +1 would wrap to 0
	stranger, err := memberauth.NewIdentity("rogue", nil)
	if err != nil {
		t.Fatal(err)
	}
	removal, err := stranger.SignRemoval(real, "mallory", true)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]node.MemberRecord{"hijack": hijack, "unsigned": unsigned, "wrap": wrap, "removal": removal} {
		n1.MergeRemoteState(gossip(t, st, map[string]node.MemberRecord{id2: r}))
		got := stateOf(t, n1).Members[id2]
		if got.Version < real.Version || got.RPC != real.RPC || got.Left || got.Key != real.Key {
			t.Fatalf("%s: n1 took the rogue record: %+v, was %+v", name, got, real)
		}
		if !n1.Ring().Has(ring.NodeID(id2)) {
			t.Fatalf("%s: %s is off n1's ring", name, id2)
		}
	}
	// A rogue record for n1 itself does not make n1 outbid it past the
	// version bound (theirs.Version+1 once wrapped to 0).
	self := stateOf(t, n1).Members[c.ID(0)]
	h := forged(t, self, "127.0.0.1:3")
	n1.MergeRemoteState(gossip(t, st, map[string]node.MemberRecord{h.ID: h}))
	if got := stateOf(t, n1).Members[c.ID(0)]; got.Key != self.Key || got.RPC != self.RPC || got.Version >= memberauth.MaxVersion {
		t.Fatalf("n1's own record after a rogue record for it: %+v, was %+v", got, self)
	}
}

// During a rolling upgrade from the release before signed records
// (AcceptV1Peers), an old node's unsigned record is taken, while a member
// whose signed record this node holds cannot be replaced by an unsigned
// one.
func TestUnsignedRecordsInUpgradeWindow(t *testing.T) {
	c := nodetest.NewCluster(t, 2, nodetest.Options{InMemory: true, Config: func(_ int, cfg *node.Config) { cfg.AcceptV1Peers = true }})
	c.WaitConverged(10 * time.Second)
	n1, id2 := c.Node(0), c.ID(1)
	st := stateOf(t, n1)
	real := st.Members[id2]
	old := node.MemberRecord{ID: "old1", RPC: "127.0.0.1:9", HTTP: "127.0.0.1:10", Version: 4, Incarnation: 7}
	stripped := real
	stripped.RPC, stripped.Version, stripped.Key, stripped.Sig = "127.0.0.1:11", real.Version+1, memberauth.PublicKey{}, memberauth.Signature{}
	n1.MergeRemoteState(gossip(t, st, map[string]node.MemberRecord{old.ID: old, id2: stripped}))
	got := stateOf(t, n1)
	if got.Members["old1"] != old {
		t.Fatalf("the old node's unsigned record was not taken: %+v", got.Members["old1"])
	}
	if got.Members[id2] != real {
		t.Fatalf("an unsigned record replaced %s's signed one: %+v", id2, got.Members[id2])
	}
}
