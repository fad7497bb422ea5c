package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// A node that stops answering without dying (SIGSTOP: a hung process, or a
// host cut off by the network) is not a crash: its connections stay open
// and its calls time out. W=2 writes keep succeeding through the other two;
// once it resumes, hinted handoff (and anti-entropy) bring its own store up
// to date, with no client reads.
func TestPausedNodeCatchesUp(t *testing.T) {
	as := cluster(t, 3)
	n3 := as[2]
	n3.pause() // a paused agent is resumed by the cluster's Stop at cleanup
	const keys = 400
	maybe := putAll(t, keys, 8, func(i int) string { return as[i%2].url(fmt.Sprintf("/kv/paused%d?w=2&timeout=3s", i)) }, valueV)
	// Stay paused until gossip declares n3 dead and the writes' calls to it
	// have timed out, so what it missed can only reach it by handoff or
	// anti-entropy, not by the requests queued in its sockets.
	waitFor(t, 20*time.Second, "n1 and n2 to see n3 dead", func() bool {
		return memberStates(as[0])["n3"] == "dead" && memberStates(as[1])["n3"] == "dead"
	}, as[0], as[1])
	// Every write's call to n3 has failed (after its 3s timeout) and left a
	// hint on its coordinator.
	waitFor(t, 20*time.Second, "a hint for n3 of every key on n1 and n2", func() bool {
		h1, h2 := hintsFor(t, as[0], "n3"), hintsFor(t, as[1], "n3")
		return h1 >= 0 && h2 >= 0 && hintsForAll(h1+h2, keys, maybe)
	}, as[0], as[1])
	n3.resume()
	waitAllAlive(t, as, 30*time.Second)
	start := time.Now()
	waitFor(t, 30*time.Second, "n3's own copy of every key written while it was paused", func() bool {
		for i := range keys {
			if maybe.has(i) {
				continue // it may never have reached n1 or n2
			}
			status, _, b := do(t, "GET", n3.url(fmt.Sprintf("/kv/paused%d?local=true", i)), nil, nil)
			if status != 200 || string(b) != fmt.Sprint("v", i) {
				return false
			}
		}
		return true
	}, as...)
	t.Logf("n3 caught up %s after it resumed", time.Since(start).Round(time.Millisecond))
}

// hintsFor is how many hints agent a holds for target (from /status).
func hintsFor(t *testing.T, a *agent, target string) int {
	var st struct {
		Hints struct {
			Targets []struct {
				Target  string `json:"target"`
				Pending int    `json:"pending"`
			} `json:"targets"`
		} `json:"hints"`
	}
	status, _, b := do(t, "GET", a.url("/status"), nil, nil)
	if status != 200 || json.Unmarshal(b, &st) != nil {
		return -1
	}
	for _, tg := range st.Hints.Targets {
		if tg.Target == target {
			return tg.Pending
		}
	}
	return 0
}
