package node_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

// Issue 14, siblings: three replicas, each cut off from the others,
// take blind writes of one key up to the client cap (4); a fifth is
// refused with 413 too_many_siblings naming the count. After the heal
// their sets together (12 siblings) exceed the merge cap (6): merges are
// not refused (before, a union past the encoding's 4,096 failed at every
// retry and the replicas never converged) but keep the 6 newest, count
// the others in quorumkv_siblings_trimmed_total and log them, and all
// three replicas end with the same set.
func TestSiblingsDivergedPastTheCapConverge(t *testing.T) {
	var logged atomic.Int64
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true,
		Logger: slog.New(countHandler{prefix: "a replica merge dropped siblings", n: &logged}),
		Config: func(_ int, cfg *node.Config) {
			cfg.Defaults = quorum.Params{N: 3, R: 1, W: 1, Timeout: 2 * time.Second}
			cfg.MaxSiblings, cfg.MergeSiblings = 4, 6
			cfg.AntiEntropy.Interval = 0 // the test repairs by hand
		}})
	for i := range 3 {
		c.Isolate(i)
	}
	for i := range 3 {
		for j := range 4 {
			if a := httpDo(t, "PUT", c.URL(i)+"/kv/hot?w=1", fmt.Sprintf("n%d-%d", i, j), nil); a.status != 204 {
				t.Fatalf("blind put %d at node %d: %d %s", j, i, a.status, a.body)
			}
		}
		a := httpDo(t, "PUT", c.URL(i)+"/kv/hot?w=1", "one too many", nil)
		if a.status != 413 || errorCode(t, a) != api.CodeTooManySiblings || !strings.Contains(a.body, "would hold 5 siblings, over the cap of 4") {
			t.Fatalf("fifth blind put at node %d: %d %s, want 413 too_many_siblings with the count", i, a.status, a.body)
		}
	}
	var all []vclock.Sibling
	for i := range 3 {
		s := aeLocal(t, c.Node(i), "hot")
		if len(s.Siblings) != 4 {
			t.Fatalf("node %d holds %d siblings before the heal, want 4", i, len(s.Siblings))
		}
		all = append(all, s.Siblings...)
	}
	// The six newest, by timestamp: what every replica must keep.
	slices.SortFunc(all, func(a, b vclock.Sibling) int { return int(min(max(b.Value.Timestamp-a.Value.Timestamp, -1), 1)) })
	want := map[string]bool{}
	for _, sb := range all[:6] {
		want[string(sb.Value.Data)] = true
	}

	c.Heal()
	c.WaitConverged(10 * time.Second)
	c.WaitFor(20*time.Second, "all three replicas hold the same 6 siblings", func() bool {
		for i := range 3 {
			aeRepair(t, c.Node(i), -1)
		}
		first := aeLocal(t, c.Node(0), "hot")
		for i := 1; i < 3; i++ {
			if !aeLocal(t, c.Node(i), "hot").Equal(first) {
				return false
			}
		}
		return len(first.Siblings) == 6
	})
	for _, sb := range aeLocal(t, c.Node(0), "hot").Siblings {
		if !want[string(sb.Value.Data)] {
			t.Fatalf("kept %q, not among the six newest %v", sb.Value.Data, want)
		}
	}
	var trimmed float64
	for i := range 3 {
		m := httpDo(t, "GET", c.URL(i)+"/metrics", "", nil)
		var v float64
		for _, l := range strings.Split(m.body, "\n") {
			if _, err := fmt.Sscanf(l, "quorumkv_siblings_trimmed_total %g", &v); err == nil {
				trimmed += v
			}
		}
	}
	if trimmed < 6 || logged.Load() == 0 {
		t.Fatalf("%g siblings counted as trimmed, %d log lines; want at least 6 (the union's 12 less the 6 kept) and a line", trimmed, logged.Load())
	}
	// A client write with the context resolves them, everywhere.
	g := httpDo(t, "GET", c.URL(1)+"/kv/hot?r=3", "", map[string]string{"Accept": "multipart/mixed"})
	if a := httpDo(t, "PUT", c.URL(1)+"/kv/hot?w=3", "resolved", map[string]string{api.HeaderContext: g.header.Get(api.HeaderContext)}); a.status != 204 || a.header.Get(api.HeaderSiblings) != "1" {
		t.Fatalf("write with the read's context: %d %s (siblings %q)", a.status, a.body, a.header.Get(api.HeaderSiblings))
	}
	t.Logf("trimmed %g siblings across the replicas, %d log lines", trimmed, logged.Load())
}
