package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
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
// others refill its partitions; every key stays readable at R=3 and is held
// by each remaining node's own store.
func TestRingLeaveAndRemove(t *testing.T) {
	as := cluster(t, 5)
	const keys = 300
	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < keys; i += 4 {
				status, _, b := do(t, "PUT", as[i%5].url(fmt.Sprintf("/kv/rk%d?w=3", i)), []byte(fmt.Sprint("v", i)), nil)
				if status != 204 {
					errs <- fmt.Errorf("put rk%d: %d %s", i, status, b)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// n5 leaves: the CLI returns once its data is handed over.
	if code, out, stderr := cli(t, "", "leave", "--addr", as[4].http); code != 0 {
		t.Fatalf("quorumkv leave: exit %d\n%s%s", code, out, stderr)
	}
	waitFor(t, 20*time.Second, "n5 off every ring", func() bool {
		for _, a := range as[:4] {
			if strings.Contains(strings.Join(ringOf(a), ","), "n5") {
				return false
			}
		}
		return true
	}, as...)
	if status, _, b := do(t, "GET", as[4].url("/kv/rk7?local=true"), nil, nil); status != 404 {
		t.Fatalf("n5 still holds data after leaving: %d %s", status, b)
	}
	as[4].stop(20 * time.Second)

	// n4 dies for good; a live member cannot be removed, a dead one can.
	if code, _, _ := cli(t, "", "remove", "n3", "--addr", as[0].http); code != 2 {
		t.Fatalf("quorumkv remove of a live member: exit %d, want 2", code)
	}
	as[3].kill()
	waitFor(t, 20*time.Second, "n1 to see n4 dead", func() bool { return memberStates(as[0])["n4"] == "dead" }, as[0])
	if code, out, stderr := cli(t, "", "remove", "n4", "--addr", as[0].http); code != 0 {
		t.Fatalf("quorumkv remove n4: exit %d\n%s%s", code, out, stderr)
	}
	waitFor(t, 20*time.Second, "a ring of n1, n2, n3 everywhere", func() bool {
		for _, a := range as[:3] {
			if strings.Join(ringOf(a), ",") != "n1,n2,n3" {
				return false
			}
		}
		return true
	}, as[:3]...)
	// With three members at N=3 every node holds every key in its own store.
	waitFor(t, 60*time.Second, "every key in every remaining node's own store", func() bool {
		for i := range keys {
			for _, a := range as[:3] {
				status, _, b := do(t, "GET", a.url(fmt.Sprintf("/kv/rk%d?local=true", i)), nil, nil)
				if status != 200 || string(b) != fmt.Sprint("v", i) {
					return false
				}
			}
		}
		return true
	}, as[:3]...)
}
