package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/devcluster"
)

// zoneOf is the zone the zone tests give agent i: az1, az2, az3, az1, ...
func zoneOf(i int) string { return fmt.Sprintf("az%d", i%3+1) }

// withZones starts agent i with --zone zoneOf(i) (by its environment, as
// an operator's unit file might).
func withZones(cfg *devcluster.Config) {
	prev := cfg.AgentEnv
	cfg.AgentEnv = func(i int) []string {
		var env []string
		if prev != nil {
			env = prev(i)
		}
		return append(env, "QUORUMKV_ZONE="+zoneOf(i))
	}
}

// checkZoneSpread checks agent a's ring at n=3: its members are want, it
// says the zone guarantee holds and names each member's zone, and every
// partition's three primaries are in three distinct zones by the zones the
// test gave the agents.
func checkZoneSpread(t *testing.T, a *agent, want []string) {
	t.Helper()
	var r api.Ring
	status, _, b := do(t, "GET", a.url("/cluster/ring?n=3"), nil, nil)
	if status != 200 || json.Unmarshal(b, &r) != nil {
		t.Fatalf("%s: /cluster/ring: %d %s", a.id, status, b)
	}
	if !slices.Equal(r.Members, want) || !r.ZoneGuarantee || r.ZoneReason != "" {
		t.Fatalf("%s: ring of %v (want %v), zone guarantee %v (%s)", a.id, r.Members, want, r.ZoneGuarantee, r.ZoneReason)
	}
	zone := map[string]string{}
	for i := range 7 {
		zone[fmt.Sprintf("n%d", i+1)] = zoneOf(i)
	}
	for _, id := range want {
		if r.Zones[id] != zone[id] {
			t.Fatalf("%s: ring says %s is in zone %q, it was started in %q", a.id, id, r.Zones[id], zone[id])
		}
	}
	if len(r.Owners) != r.Partitions {
		t.Fatalf("%s: %d owner rows for %d partitions", a.id, len(r.Owners), r.Partitions)
	}
	for _, o := range r.Owners {
		zs := map[string]bool{}
		for _, id := range o.Primaries {
			zs[zone[id]] = true
		}
		if len(o.Primaries) != 3 || len(zs) != 3 {
			t.Fatalf("%s: partition %d's primaries %v span %d zone(s)", a.id, o.Partition, o.Primaries, len(zs))
		}
	}
}

// Zones with real processes (issue 15): six agents in three zones at N=3.
// Every partition's primaries span the three zones before and after a
// join and a leave; /cluster/members, quorumkv members and quorumkv ring
// show the zones. With one zone down entirely (both its agents killed),
// W=2 writes and R=2 reads keep succeeding, a pz=2 write succeeds and
// reports its zones, and a pz=3 write is refused with an error that names
// the zones.
func TestZonesSixAgentsThreeZones(t *testing.T) {
	c := newCluster(t, 7, withZones)
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	as := agentsOf(t, c)
	as[0].launch()
	for _, a := range as[1:6] {
		a.launch(as[0].gossip)
	}
	waitRingSettled(t, as[:6], 90*time.Second)
	six := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	checkZoneSpread(t, as[0], six)

	// The zones as an operator sees them.
	var ms api.Members
	if status, _, b := do(t, "GET", as[1].url("/cluster/members"), nil, nil); status != 200 || json.Unmarshal(b, &ms) != nil {
		t.Fatalf("/cluster/members: %d %s", status, b)
	}
	for _, m := range ms.Members {
		var n int
		if _, err := fmt.Sscanf(m.ID, "n%d", &n); err != nil || m.Zone != zoneOf(n-1) {
			t.Fatalf("/cluster/members: %s in zone %q", m.ID, m.Zone)
		}
	}
	if code, out, stderr := cli(t, "", "members", "--addr", as[0].http); code != 0 || !strings.Contains(out, "ZONE") || !strings.Contains(out, "az3") {
		t.Fatalf("quorumkv members: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "", "ring", "--addr", as[0].http); code != 0 || !strings.Contains(out, "every partition's 3 primaries are in 3 distinct zones") || !strings.Contains(out, "az2") {
		t.Fatalf("quorumkv ring: exit %d\n%s%s", code, out, stderr)
	}

	// A join (n7, az1), then a leave (n4, az1).
	as[6].launch(as[0].gossip)
	waitRingSettled(t, as[:7], 90*time.Second)
	checkZoneSpread(t, as[2], append(slices.Clone(six), "n7"))
	if code, out, stderr := cli(t, "", "leave", "--addr", as[3].http); code != 0 {
		t.Fatalf("quorumkv leave n4: exit %d\n%s%s", code, out, stderr)
	}
	rest := []*agent{as[0], as[1], as[2], as[4], as[5], as[6]}
	waitRingSettled(t, rest, 90*time.Second)
	checkZoneSpread(t, as[5], []string{"n1", "n2", "n3", "n5", "n6", "n7"})

	// Zone az3 down entirely: n3 and n6.
	as[2].kill()
	as[5].kill()
	up := []*agent{as[0], as[1], as[4], as[6]}
	waitFor(t, 30*time.Second, "n3 and n6 seen dead", func() bool {
		for _, a := range up {
			st := memberStates(a)
			if st["n3"] == "alive" || st["n6"] == "alive" {
				return false
			}
		}
		return true
	}, up...)
	const keys = 60
	for i := range keys {
		a := up[i%len(up)]
		key := fmt.Sprintf("zk%d", i)
		if status, _, b := do(t, "PUT", a.url("/kv/"+key+"?w=2"), []byte(key), nil); status != 204 {
			t.Fatalf("put %s at w=2 with az3 down, via %s: %d %s", key, a.id, status, b)
		}
	}
	for i := range keys {
		a := up[(i+1)%len(up)]
		key := fmt.Sprintf("zk%d", i)
		if status, _, b := do(t, "GET", a.url("/kv/"+key+"?r=2"), nil, nil); status != 200 || string(b) != key {
			t.Fatalf("get %s at r=2 with az3 down, via %s: %d %q", key, a.id, status, b)
		}
	}
	for i, a := range up {
		key := fmt.Sprintf("pz%d", i)
		status, h, b := do(t, "PUT", a.url("/kv/"+key+"?w=2&pz=2"), []byte("v"), nil)
		if status != 204 || h.Get(api.HeaderAcksZones) != "2" {
			t.Fatalf("put %s at pz=2 via %s: %d %s %q", key, a.id, status, b, h.Get(api.HeaderAcksZones))
		}
		status, _, b = do(t, "PUT", a.url("/kv/"+key+"?w=2&pz=3"), []byte("v"), nil)
		var e api.Error
		if status != 503 || json.Unmarshal(b, &e) != nil || e.Code != api.CodeQuorumNotMet || !strings.Contains(e.Error, "zone") {
			t.Fatalf("put %s at pz=3 with az3 down via %s: %d %s, want 503 quorum_not_met naming the zones", key, a.id, status, b)
		}
	}
	// pz above n is a bad request.
	if status, _, b := do(t, "PUT", as[0].url("/kv/pzbad?pz=4"), []byte("v"), nil); status != 400 || !strings.Contains(string(b), "pz=4: cannot exceed n=3") {
		t.Fatalf("pz=4: %d %s", status, b)
	}
}
