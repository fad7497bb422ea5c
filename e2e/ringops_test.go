package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ringOf is agent a's ring members (nil on error).
func ringOf(a *agent) []string {
	var body struct {
		Members []string `json:"members"`
	}
	if status, _, b := do(a.t, http.MethodGet, a.url("/cluster/ring"), nil, nil); status != 200 || json.Unmarshal(b, &body) != nil {
		return nil
	}
	return body.Members
}

// Ring changes with real processes: a member that leaves hands its data to
// the others first; a member killed for good is removed with the CLI and the
// others refill its partitions. Every key stays readable at R=3 (checked
// for every key, through every remaining member in turn, after each
// change) and ends up in each remaining node's own store.
//
// Deadlines, measured on this machine over 7 runs (2 cores shared, load
// ~4; agents with and without -race): a leave's ring change reached every
// member in 1.3-10.8 s (it rides memberlist's push/pull every 5 s), a
// killed member was seen dead in 0.66-0.87 s, its removal reached every
// ring in 0.01-4.1 s, and the refill of its partitions took 0.07-0.76 s.
// Each wait is 4.6-4.9x the slowest of its kind, except the removal's:
// at load ~38 (2 cores shared by several sessions) it took 17.0 s, so it
// waits 60 s.
func TestRingLeaveAndRemove(t *testing.T) {
	as := cluster(t, 5)
	const keys = 300
	maybe := putAll(t, keys, 4, func(i int) string { return as[i%5].url(fmt.Sprintf("/kv/rk%d?w=3", i)) }, valueV)

	// n5 leaves: the CLI returns once its data is handed over.
	start := time.Now()
	if code, out, stderr := cli(t, "", "leave", "--addr", as[4].http); code != 0 {
		t.Fatalf("quorumkv leave: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("leave with handoff: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	waitFor(t, 50*time.Second, "n5 off every ring", func() bool {
		for _, a := range as[:4] {
			if strings.Contains(strings.Join(ringOf(a), ","), "n5") {
				return false
			}
		}
		return true
	}, as...)
	t.Logf("leave seen everywhere: %s", time.Since(start).Round(time.Millisecond))
	// Every key is readable at R=3 without n5, and n5 holds none: it
	// dropped its copies once every member routed without it, and members
	// whose view of the ring was older cannot push them back (it refuses
	// exchanges of partitions it does not replicate; issue 15).
	held := 0
	for i := range keys {
		status, _, b := do(t, "GET", as[4].url(fmt.Sprintf("/kv/rk%d?local=true", i)), nil, nil)
		switch status {
		case 200:
			held++
		case 404:
		default:
			t.Fatalf("local read of rk%d on n5: %d %s", i, status, b)
		}
	}
	if held != 0 {
		t.Errorf("n5 holds %d of %d keys after leaving the ring", held, keys)
	}
	readAllAtR3(t, as[:4], keys, maybe)
	if err := as[4].stop(20 * time.Second); err != nil {
		t.Fatalf("stopping n5 after it left: %v", err)
	}

	// n4 dies for good; a live member cannot be removed, a dead one can.
	if code, _, _ := cli(t, "", "remove", "n3", "--addr", as[0].http); code != 2 {
		t.Fatalf("quorumkv remove of a live member: exit %d, want 2", code)
	}
	as[3].kill()
	start = time.Now()
	waitFor(t, 4*time.Second, "n1 to see n4 dead", func() bool { return memberStates(as[0])["n4"] == "dead" }, as[0])
	t.Logf("n4 seen dead: %s", time.Since(start).Round(time.Millisecond))
	// Seen alive a moment ago: refused within --remove-min-down (1m),
	// taken with --force.
	if code, _, stderr := cli(t, "", "remove", "n4", "--addr", as[0].http); code != 2 || !strings.Contains(stderr, "remove-min-down") {
		t.Fatalf("quorumkv remove n4 just after it died: exit %d, want 2 naming --remove-min-down\n%s", code, stderr)
	}
	if code, out, stderr := cli(t, "", "remove", "--force", "n4", "--addr", as[0].http); code != 0 {
		t.Fatalf("quorumkv remove --force n4: exit %d\n%s%s", code, out, stderr)
	}
	start = time.Now()
	waitFor(t, 60*time.Second, "a ring of n1, n2, n3 everywhere", func() bool {
		for _, a := range as[:3] {
			if strings.Join(ringOf(a), ",") != "n1,n2,n3" {
				return false
			}
		}
		return true
	}, as[:3]...)
	t.Logf("removal seen everywhere: %s", time.Since(start).Round(time.Millisecond))
	// With three members at N=3 every node holds every key in its own store.
	start = time.Now()
	waitFor(t, 3500*time.Millisecond, "every key in every remaining node's own store", func() bool {
		for i := range keys {
			if maybe.has(i) {
				continue // readAllAtR3 checks it below
			}
			for _, a := range as[:3] {
				status, _, b := do(t, "GET", a.url(fmt.Sprintf("/kv/rk%d?local=true", i)), nil, nil)
				if status != 200 || string(b) != fmt.Sprint("v", i) {
					return false
				}
			}
		}
		return true
	}, as[:3]...)
	t.Logf("refill after the removal: %s", time.Since(start).Round(time.Millisecond))
	readAllAtR3(t, as[:3], keys, maybe)
}

// readAllAtR3 reads every key at R=3 through each agent in turn: each read
// must answer 200 with the key's one value (or 404 for a key maybe
// written).
func readAllAtR3(t *testing.T, as []*agent, keys int, maybe *maybeWritten) {
	t.Helper()
	for i := range keys {
		a := as[i%len(as)]
		status, _, b := do(t, "GET", a.url(fmt.Sprintf("/kv/rk%d?r=3", i)), nil, nil)
		if status == 404 && maybe.has(i) {
			continue
		}
		if status != 200 || string(b) != fmt.Sprint("v", i) {
			t.Fatalf("R=3 read of rk%d via %s: %d %q, want 200 %q", i, a.id, status, b, fmt.Sprint("v", i))
		}
	}
}
