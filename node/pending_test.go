package node_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/transport"
)

// Issue 15, pending ownership: a joining member is a pending owner until
// it holds its partitions whole. Meanwhile reads keep going to the old
// owners, every write also reaches it (as an extra), and its transfer
// waits for an old owner that is down but still on the ring (it may hold
// acknowledged writes nobody else has). Once that owner is back, the
// partitions move, ownership switches everywhere and the old copies are
// dropped.
func TestPendingOwnerReadsStayOnOldOwners(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	old := writeKeys(t, c, "old", 60)

	c.Gossip.SetDead("n3", true) // down, not removed
	i := c.StartNode()
	n4 := c.Node(i)
	c.WaitFor(10*time.Second, "n4 pending on every live node", func() bool {
		for _, j := range []int{0, 1, 3} {
			p := c.Node(j).Pending()
			if p == nil || !p.Has("n4") {
				return false
			}
		}
		return true
	})
	c.WaitFor(10*time.Second, "n4's transfer waiting for n3", func() bool {
		return slices.Equal(n4.Transfers().WaitingFor, []string{"n3"})
	})
	for _, j := range []int{0, 1, 3} {
		if r := c.Node(j).Ring(); r.Has("n4") {
			t.Fatalf("%s routes reads to n4 before it received its partitions", c.ID(j))
		}
	}
	st := n4.Transfers()
	if st.Ready || st.Gains == 0 || st.Received != 0 {
		t.Fatalf("n4 transfer status while blocked: %+v", st)
	}
	// /status and /metrics say the same.
	if s := n4.Status().Transfers; s == nil || s.Target != st.Target || s.Gains != st.Gains || s.Throttle.Partitions == 0 {
		t.Fatalf("/status transfers while blocked: %+v, /cluster/transfers %+v", s, st)
	}
	rec := httptest.NewRecorder()
	n4.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := fmt.Sprintf("quorumkv_transfer_partitions{state=\"gained\"} %d", st.Gains); !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("/metrics lacks %q", want)
	}

	// Reads through the pending owner go to the old owners and see every
	// acknowledged write.
	for k, v := range old {
		res, err := get(t, n4, k, quorum.Params{N: 3, R: 2})
		if err != nil || !values(res.Set)[v] {
			t.Fatalf("read %s through pending n4: %v, %v", k, res, err)
		}
	}
	// A write acknowledged by the old owners also reaches the pending one
	// (for keys of partitions it gains).
	target := n4.Pending()
	during := map[string]string{}
	for j := 0; len(during) < 20; j++ {
		k, v := fmt.Sprintf("during%d", j), fmt.Sprintf("d%d", j)
		if !target.IsPrimary(target.PartitionOf([]byte(k)), 3, "n4") {
			continue
		}
		if _, err := put(t, c.Node(0), k, v, nil, quorum.Params{N: 3, W: 2}); err != nil {
			t.Fatalf("put %s while n4 is pending: %v", k, err)
		}
		during[k] = v
	}
	c.WaitFor(5*time.Second, "writes made during the change on pending n4", func() bool {
		for k, v := range during {
			s, found, err := n4.ReadLocal([]byte(k))
			if err != nil || !found || !values(s)[v] {
				return false
			}
		}
		return true
	})
	if st := n4.Transfers(); st.Ready || st.Received == st.Gains {
		t.Fatalf("n4 ready while n3, an old owner, is down: %+v", st)
	}

	c.Gossip.SetDead("n3", false)
	c.WaitFor(20*time.Second, "every ring with n4", func() bool {
		for j := range 4 {
			if !c.Node(j).Ring().Has("n4") || c.Node(j).Pending() != nil {
				return false
			}
		}
		return true
	})
	for k, v := range during {
		old[k] = v
	}
	waitPlaced(t, c, old, 10*time.Second)
}

// Issue 15's anti-entropy bug: a node that left the ring must hold
// nothing it does not own afterwards. A peer whose view of the ring is
// older may still push partitions to it: it refuses them.
func TestLeftNodeRefusesAntiEntropyPush(t *testing.T) {
	c := nodetest.NewCluster(t, 4, nodetest.Options{})
	want := writeKeys(t, c, "ae", 100)
	if err := c.Node(3).Leave(t.Context()); err != nil {
		t.Fatalf("leave: %v", err)
	}
	waitPlaced(t, c, want, 10*time.Second)

	// A stale peer's exchange: a merge of a key into n4.
	probe, err := c.Net.Listen("probe", "probe", transport.HandlerFunc(func(context.Context, string, transport.Method, []byte) ([]byte, error) {
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	var key string
	for k := range want {
		key = k
		break
	}
	raw, err := c.Node(0).RawRecord([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	rk := c.Node(0).Ring().KeyOf([]byte(key))
	body, err := (&wire.MergeManyRequest{Partition: rk.Partition,
		Entries: []wire.MergeManyEntry{{Hash: rk.Hash, Key: rk.Key, Set: replica.SetBytes(raw)}}}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = probe.Call(t.Context(), "n4", wire.MethodMergeMany, body)
	if err == nil || !strings.Contains(err.Error(), "does not replicate") {
		t.Fatalf("merge into a node that left: %v, want a refusal", err)
	}
	if _, found, _ := c.Node(3).ReadLocal([]byte(key)); found {
		t.Fatalf("%s is on n4, which left the ring", key)
	}
	// And the exchanges of the remaining members never push to it: after
	// a repair of every partition, n4 still holds nothing.
	if _, err := c.Node(0).Repair(t.Context(), -1); err != nil {
		t.Logf("repair: %v", err)
	}
	for k := range want {
		if _, found, _ := c.Node(3).ReadLocal([]byte(k)); found {
			t.Fatalf("%s came back to n4 after it left", k)
		}
	}
}
