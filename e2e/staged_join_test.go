package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/devcluster"
)

// ringPlanOf is `quorumkv ring plan --json` through agent a.
func ringPlanOf(t *testing.T, a *agent) api.RingPlan {
	t.Helper()
	code, out, stderr := cli(t, "", "ring", "plan", "--json", "--addr", a.http)
	var p api.RingPlan
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("quorumkv ring plan via %s: exit %d\n%s%s", a.id, code, out, stderr)
	}
	return p
}

// Plan before commit with real processes (issue 15): an agent started
// with --join-mode staged waits in `ring plan` (alive, off every ring)
// until `ring commit`, then joins; a leave staged with `ring leave` waits
// the same way and `ring clear` drops what is staged.
func TestStagedJoinWaitsForCommit(t *testing.T) {
	c := newCluster(t, 4, func(cfg *devcluster.Config) {
		cfg.AgentEnv = func(i int) []string {
			if i == 3 {
				return []string{"QUORUMKV_JOIN_MODE=staged"}
			}
			return nil
		}
	})
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	as := agentsOf(t, c)
	as[0].launch()
	as[1].launch(as[0].gossip)
	as[2].launch(as[0].gossip)
	waitRingSettled(t, as[:3], 90*time.Second)
	if p := ringPlanOf(t, as[0]); len(p.Joins)+len(p.Leaves)+len(p.Removes) != 0 {
		t.Fatalf("auto joins left something staged: %+v", p)
	}

	as[3].launch(as[0].gossip)
	waitFor(t, 30*time.Second, "n4 staged in every member's ring plan", func() bool {
		for _, a := range as[:3] {
			if p := ringPlanOf(t, a); len(p.Joins) != 1 || p.Joins[0].ID != "n4" {
				return false
			}
		}
		return true
	}, as...)
	waitAllAlive(t, as, 30*time.Second)
	// Alive, known, staged, and still on nobody's ring, its own included.
	code, out, stderr := cli(t, "", "ring", "plan", "--addr", as[2].http)
	if code != 0 || !strings.Contains(out, "join    n4") || !strings.Contains(out, "members: 3 -> 4") || !strings.Contains(out, "quorumkv ring commit applies this") {
		t.Fatalf("quorumkv ring plan: exit %d\n%s%s", code, out, stderr)
	}
	three := []string{"n1", "n2", "n3"}
	for _, a := range as {
		if got := ringOf(a); !slices.Equal(got, three) {
			t.Fatalf("%s's ring is %v while n4 is staged", a.id, got)
		}
	}

	// A staged leave waits too, and ring clear drops both; n4 stays out.
	if code, out, stderr := cli(t, "", "ring", "leave", "n2", "--addr", as[0].http); code != 0 || !strings.Contains(out, "leave   n2") {
		t.Fatalf("quorumkv ring leave n2: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "", "ring", "clear", "--addr", as[0].http); code != 0 || !strings.Contains(out, "cleared 1 join, 1 leave") {
		t.Fatalf("quorumkv ring clear: exit %d\n%s%s", code, out, stderr)
	}
	// The stage is gossiped: a commit on a member that has not seen the
	// clear yet commits what it sees (here n2's own leave, and n2 then
	// leaves for good), so wait until every member has seen it.
	waitFor(t, 30*time.Second, "the clear seen by every member", func() bool {
		for _, a := range as {
			if p := ringPlanOf(t, a); len(p.Joins)+len(p.Leaves) != 0 {
				return false
			}
		}
		return true
	}, as...)
	if code, _, stderr := cli(t, "", "ring", "commit", "--addr", as[2].http); code != 2 || !strings.Contains(stderr, "nothing is staged") {
		t.Fatalf("commit of nothing: exit %d, %s", code, stderr)
	}

	// Staged again, committed: n4 joins.
	if code, out, stderr := cli(t, "", "ring", "join", "n4", "--addr", as[1].http); code != 0 || !strings.Contains(out, "join    n4") {
		t.Fatalf("quorumkv ring join n4: exit %d\n%s%s", code, out, stderr)
	}
	for _, a := range as {
		if got := ringOf(a); !slices.Equal(got, three) {
			t.Fatalf("%s's ring is %v before the commit", a.id, got)
		}
	}
	code, out, stderr = cli(t, "", "ring", "commit", "--addr", as[1].http)
	if code != 0 || !strings.Contains(out, "committed 1 join:") {
		t.Fatalf("quorumkv ring commit: exit %d\n%s%s", code, out, stderr)
	}
	waitRingSettled(t, as, 90*time.Second)
	if p := ringPlanOf(t, as[3]); len(p.Joins)+len(p.Leaves)+len(p.Removes) != 0 {
		t.Fatalf("still staged after the commit: %+v", p)
	}
}
