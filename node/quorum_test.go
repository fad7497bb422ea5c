package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

func put(t *testing.T, nd *node.Node, key, val string, vctx vclock.Vector, p quorum.Params) (*quorum.WriteResult, error) {
	t.Helper()
	return nd.Coordinator().Put(t.Context(), quorum.PutRequest{Key: []byte(key), Value: vclock.Value{Data: []byte(val)}, Context: vctx, Params: p})
}

func get(t *testing.T, nd *node.Node, key string, p quorum.Params) (*quorum.ReadResult, error) {
	t.Helper()
	return nd.Coordinator().Get(t.Context(), quorum.GetRequest{Key: []byte(key), Params: p})
}

func values(s vclock.Set) map[string]bool {
	out := map[string]bool{}
	for _, sb := range s.Live() {
		out[string(sb.Value.Data)] = true
	}
	return out
}

// localCopy reads node i's own stored copy of key, without a quorum.
func localCopy(t *testing.T, c *nodetest.Cluster, i int, key string) vclock.Set {
	t.Helper()
	s, _, err := c.Node(i).ReadLocal([]byte(key))
	if err != nil {
		t.Fatalf("local read on %s: %v", c.ID(i), err)
	}
	return s
}

// Dynamo §4.5: with R+W>N and no faults, a read that starts after a write
// was acknowledged sees it or a successor.
func TestQuorumReadYourWritesWithoutFaults(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{})
	p := quorum.Params{N: 3, R: 2, W: 2}
	rng := rand.New(rand.NewPCG(1, 2))
	last := map[string]vclock.Dot{}
	for i := range 200 {
		key := fmt.Sprintf("k%d", rng.IntN(20))
		var vctx vclock.Vector
		// Half the writes carry the context of a fresh read (a client that
		// read before writing), half are blind.
		if i%2 == 0 {
			res, err := get(t, c.Node(rng.IntN(3)), key, p)
			if err != nil {
				t.Fatal(err)
			}
			vctx = res.Set.Context
		}
		w, err := put(t, c.Node(rng.IntN(3)), key, fmt.Sprint(i), vctx, p)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		last[key] = w.Dot
		for j := range 3 {
			r, err := get(t, c.Node(j), key, p)
			if err != nil {
				t.Fatalf("get via %s: %v", c.ID(j), err)
			}
			// The value itself, not only a context covering its dot (a
			// store that dropped the value but kept the dot would pass
			// that): nothing wrote the key since, so it must be there.
			if !values(r.Set)[fmt.Sprint(i)] || !r.Set.Context.Covers(w.Dot) {
				t.Fatalf("read via %s after acked write %d (%s) of %s: values %v, context %v", c.ID(j), i, w.Dot, key, values(r.Set), r.Set.Context)
			}
		}
	}
}

// One replica partitioned away: W=2 and R=2 still succeed, W=3 fails with
// the counts, and after healing an R=3 read repairs the lagging replica's
// own store.
func TestQuorumOneReplicaPartitioned(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{})
	fast := quorum.Params{N: 3, R: 2, W: 2, Timeout: 300 * time.Millisecond}
	c.Net.Isolate(c.ID(2)) // messages lost; gossip still thinks it alive

	if _, err := put(t, c.Node(0), "k", "v1", nil, fast); err != nil {
		t.Fatalf("W=2 put with one replica away: %v", err)
	}
	r, err := get(t, c.Node(1), "k", fast)
	if err != nil {
		t.Fatalf("R=2 get with one replica away: %v", err)
	}
	if !values(r.Set)["v1"] {
		t.Fatalf("R=2 get: got %v, want v1", values(r.Set))
	}
	strict := fast
	strict.W = 3
	_, err = put(t, c.Node(0), "k", "v2", r.Set.Context, strict)
	var qe *quorum.QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, quorum.ErrQuorumNotMet) {
		t.Fatalf("W=3 with one replica away: got %v, want a QuorumError", err)
	}
	if qe.Required != 3 || qe.Acks != 2 {
		t.Fatalf("W=3 failure counts: required %d acks %d, want 3 and 2", qe.Required, qe.Acks)
	}
	// The failed write is not rolled back (Dynamo): v2 is on the two
	// reachable replicas.
	if got := values(localCopy(t, c, 2, "k")); len(got) != 0 {
		t.Fatalf("isolated replica already has %v", got)
	}

	c.Heal()
	all := quorum.Params{N: 3, R: 3, W: 2}
	r, err = get(t, c.Node(0), "k", all)
	if err != nil {
		t.Fatalf("R=3 after heal: %v", err)
	}
	if got := values(r.Set); !got["v2"] || len(got) != 1 {
		t.Fatalf("R=3 after heal: got %v, want [v2]", got)
	}
	c.WaitFor(5*time.Second, "read repair of the healed replica", func() bool {
		return localCopy(t, c, 2, "k").Equal(r.Set)
	})
}

// Concurrent blind writes, through one coordinator and through several,
// all survive as siblings; a write with the context of a read that saw them
// replaces them all.
func TestQuorumConcurrentWritersBecomeSiblings(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{})
	p := quorum.Params{N: 3, R: 3, W: 3}
	for _, tc := range []struct {
		name   string
		coords []int
	}{
		{"same coordinator", []int{0, 0, 0, 0}},
		{"different coordinators", []int{0, 1, 2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "sib-" + tc.name
			var wg sync.WaitGroup
			want := map[string]bool{}
			for i, co := range tc.coords {
				v := fmt.Sprintf("v%d", i)
				want[v] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := put(t, c.Node(co), key, v, nil, p); err != nil {
						t.Errorf("put %s: %v", v, err)
					}
				}()
			}
			wg.Wait()
			r, err := get(t, c.Node(2), key, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := values(r.Set); len(got) != len(want) {
				t.Fatalf("siblings %v, want all of %v", got, want)
			}
			if _, err := put(t, c.Node(1), key, "resolved", r.Set.Context, p); err != nil {
				t.Fatal(err)
			}
			r, err = get(t, c.Node(0), key, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := values(r.Set); len(got) != 1 || !got["resolved"] {
				t.Fatalf("after resolving write: %v, want [resolved]", got)
			}
		})
	}
}

// A replica slowed by 200ms does not slow W=2 writes or R=2 reads: the
// two fast replicas answer first.
func TestQuorumSlowReplicaDoesNotSlowQuorum(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{})
	slow := c.ID(2)
	c.Net.Delay("*", slow, func(*rand.Rand) time.Duration { return 200 * time.Millisecond })
	p := quorum.Params{N: 3, R: 2, W: 2}
	for i := range 20 {
		key := fmt.Sprintf("slow%d", i)
		start := time.Now()
		if _, err := put(t, c.Node(0), key, "v", nil, p); err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, c.Node(1), key, p); err != nil {
			t.Fatal(err)
		}
		// Generous bound for a loaded CI machine, still well under the
		// 400ms a put+get waiting for the slow replica would take.
		if d := time.Since(start); d > 150*time.Millisecond {
			t.Fatalf("put+get %d took %s with one replica 200ms slow", i, d)
		}
	}
}

// Duplicated and reordered deliveries change nothing, and a store closed
// and reopened keeps everything.
func TestQuorumDuplicatesReorderingAndRestart(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{Seed: 7})
	c.Net.Duplicate("*", "*", 0.5)
	c.Net.Delay("*", "*", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(5000)) * time.Microsecond })
	p := quorum.Params{N: 3, R: 2, W: 2}
	want := map[string]string{}
	for i := range 100 {
		key := fmt.Sprintf("d%d", i%25)
		r, err := get(t, c.Node(i%3), key, p)
		if err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprint(i)
		if _, err := put(t, c.Node((i+1)%3), key, v, r.Set.Context, p); err != nil {
			t.Fatal(err)
		}
		want[key] = v
	}
	c.Net.Heal()
	check := func() {
		t.Helper()
		for key, v := range want {
			r, err := get(t, c.Node(0), key, quorum.Params{N: 3, R: 3, W: 2})
			if err != nil {
				t.Fatal(err)
			}
			if got := values(r.Set); len(got) != 1 || !got[v] {
				t.Fatalf("%s: got %v, want only %s", key, got, v)
			}
		}
	}
	check()
	for i := range 3 {
		c.Kill(i)
	}
	for i := range 3 {
		c.Restart(i)
	}
	check()
}

var _ = context.Background

// --read-fanout quorum (Config.ReadQuorumOnly): a read asks R replicas
// first; with one replica silent but thought alive, reads whose first
// pick is the silent one ask the third after the hedge (20 ms), and
// every read still sees the acknowledged write (R+W>N). Some reads must
// have waited for the hedge: asking all N, none would (two replicas
// answer at once), so the setting is shown to reach the coordinator.
func TestQuorumReadFanoutQuorumWithASilentReplica(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.ReadQuorumOnly = true }})
	p := quorum.Params{N: 3, R: 2, W: 2, Timeout: 2 * time.Second}
	c.Net.Isolate(c.ID(2)) // messages lost; gossip still thinks it alive
	hedged := 0
	for i := range 20 {
		key, val := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if _, err := put(t, c.Node(0), key, val, nil, p); err != nil {
			t.Fatalf("W=2 put of %s with one replica silent: %v", key, err)
		}
		for _, from := range []int{0, 1} {
			start := time.Now()
			r, err := get(t, c.Node(from), key, p)
			if time.Since(start) >= 20*time.Millisecond {
				hedged++
			}
			if err != nil {
				t.Fatalf("R=2 get of %s on %s with one replica silent: %v", key, c.ID(from), err)
			}
			if got := values(r.Set); !got[val] || len(got) != 1 {
				t.Fatalf("R=2 get of %s on %s: %v, want [%s]", key, c.ID(from), got, val)
			}
		}
	}
	if hedged == 0 {
		t.Fatal("no read waited for the hedge: every read asked all N, not R first")
	}
	t.Logf("%d reads of 40 waited for the hedge", hedged)
}
