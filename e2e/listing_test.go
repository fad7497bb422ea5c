package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/internal/devcluster"
	"github.com/quorumkv/quorumkv/internal/percentile"
)

// listingClient returns a client over every agent's HTTP address.
func listingClient(t *testing.T, as []*agent) *client.Client {
	t.Helper()
	var addrs []string
	for _, a := range as {
		addrs = append(addrs, "http://"+a.http)
	}
	c, err := client.New(addrs, client.WithMaxIdleConnsPerHost(64))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestScanUnderChurn: RESP SCAN's guarantee over 100,000 keys with real
// agents.
// Keys written before the scan and never deleted are all listed; keys
// deleted before it began are not; keys created and deleted meanwhile may
// or may not be. Pages follow their cursors through whichever node, across
// a kill and restart of one agent mid-scan. It also measures the scan's
// throughput and the p99 of point reads while it runs.
func TestScanUnderChurn(t *testing.T) {
	keys := 100_000
	if agentsRace() {
		keys = 20_000 // race-built agents (QUORUMKV_E2E_RACE=1) are ~10x slower; the property is the same
	}
	as, respAddrs := respAgents(t, 3)
	c := listingClient(t, as)
	var rcs []*redis.Client
	for _, a := range respAddrs {
		rcs = append(rcs, redisClient(t, a, 4))
	}
	ctx := t.Context()
	key := func(i int) string { return fmt.Sprintf("base/%06d", i) }

	start := time.Now()
	if err := parallel(keys, 32, func(i int) error {
		return retry(func() error { _, err := c.Put(ctx, key(i), []byte("v")); return err })
	}); err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Logf("loaded %d keys in %s", keys, time.Since(start).Round(time.Millisecond))
	// Deleted before the scan: i%10 == 0.
	if err := parallel(keys/10, 32, func(i int) error {
		return retry(func() error {
			_, err := c.Delete(ctx, key(10*i))
			if errors.Is(err, client.ErrNotFound) {
				return nil // an earlier attempt deleted it and then failed its answer
			}
			return err
		})
	}); err != nil {
		t.Fatalf("delete: %v", err)
	}

	// Point-read latency without a scan, for comparison.
	idle := readLatencies(ctx, c, key, keys, 2*time.Second, nil)

	// Churn while the scan runs: new keys created, i%10 == 1 deleted.
	churnCtx, stopChurn := context.WithCancel(ctx)
	var churnWG sync.WaitGroup
	var churned atomic.Int64
	for w := range 4 {
		churnWG.Add(1)
		go func() {
			defer churnWG.Done()
			for i := w; churnCtx.Err() == nil; i += 4 {
				var err error
				if i%2 == 0 {
					_, err = c.Put(churnCtx, fmt.Sprintf("churn/%d", i), []byte("v"))
				} else if d := 10*(i/2) + 1; d < keys {
					_, err = c.Delete(churnCtx, key(d))
				}
				if err == nil {
					churned.Add(1)
				}
			}
		}()
	}
	scanning := make(chan struct{})
	readsDone := make(chan []time.Duration)
	go func() { readsDone <- readLatencies(ctx, c, key, keys, 0, scanning) }()

	ring, err := c.Ring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	partOf := partitionOf(ring.Partitions)
	seen := map[string]int{}
	var cursor uint64
	pages := 0
	// Order: within each page, partitions in ring order and keys in byte
	// order within each; from one page to the next too, except around the
	// kill (a page whose cursor key no replica asked holds restarts its
	// partition, which SCAN allows).
	var last string
	inOrder, sameParts, backSteps := true, 0, 0
	order := func(keys []string, acrossKill bool) {
		t.Helper()
		for i, k := range keys {
			prev := last
			if i > 0 {
				prev = keys[i-1]
			} else if prev == "" {
				continue
			}
			pa, pb := partOf(prev), partOf(k)
			if pa == pb {
				sameParts++
			}
			if pb > pa || (pb == pa && k > prev) {
				continue
			}
			if i == 0 && acrossKill {
				backSteps++
				continue
			}
			if inOrder {
				t.Errorf("SCAN page %d lists %q (partition %d) after %q (partition %d)", pages, k, pb, prev, pa)
			}
			inOrder = false
		}
		if len(keys) > 0 {
			last = keys[len(keys)-1]
		}
	}
	scanStart := time.Now()
	var scanTime time.Duration
	// page reads the next page with RESP SCAN through agent i, timing it.
	page := func(i int) bool {
		t.Helper()
		s := time.Now()
		var (
			keys []string
			next uint64
			err  error
		)
		for range 5 { // a loaded machine may time a replica out: same cursor again
			if keys, next, err = rcs[i].Scan(ctx, cursor, "", 1000).Result(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("SCAN page %d from cursor %d via %s: %v", pages, cursor, as[i].id, err)
		}
		scanTime += time.Since(s)
		for _, k := range keys {
			seen[k]++
		}
		order(keys, pages >= 20 && pages <= 27)
		pages++
		cursor = next
		return cursor != 0
	}
	for more := true; more; {
		more = page(pages % 3)
		if more && pages == 20 {
			// Kill one agent mid-scan; the next pages go through the others
			// (N-W+1 = 2 replicas of each partition still answer), then
			// through it again once it is back: the cursor holds no state.
			as[2].kill()
			for i := 0; i < 5 && more; i++ {
				more = page(pages % 2)
			}
			as[2].start()
		}
	}
	close(scanning)
	during := <-readsDone
	stopChurn()
	churnWG.Wait()
	elapsed := time.Since(scanStart)

	listed, dup := 0, 0
	for i := range keys {
		k := key(i)
		switch {
		case i%10 == 0 && seen[k] > 0:
			t.Errorf("%s listed: it was deleted before the scan began", k)
		case i%10 >= 2 && seen[k] == 0:
			t.Errorf("%s not listed: it existed throughout the scan", k)
		}
	}
	for _, n := range seen {
		listed += n
		if n > 1 {
			dup++
		}
	}
	if sameParts < keys/2 {
		t.Errorf("only %d neighbouring keys shared a partition: the order check checked little", sameParts)
	}
	t.Logf("order: %d neighbouring keys in one partition checked, %d partition restarts around the kill", sameParts, backSteps)
	t.Logf("scan: %d pages, %d keys listed (%d listed twice), %s wall with an agent restart (%s in page requests) while %d churn writes ran: %.0f keys/s over page time",
		pages, listed, dup, elapsed.Round(time.Millisecond), scanTime.Round(time.Millisecond), churned.Load(), float64(listed)/scanTime.Seconds())
	t.Logf("point reads (r=2): idle p50 %s p99 %s (%d reads); during the scan and churn p50 %s p99 %s (%d reads)",
		percentile.Of(idle, 50).Round(10*time.Microsecond), percentile.Of(idle, 99).Round(10*time.Microsecond), len(idle), percentile.Of(during, 50).Round(10*time.Microsecond), percentile.Of(during, 99).Round(10*time.Microsecond), len(during))
}

// partitionOf returns the partition of a key in a ring of q partitions
// (a power of two): the top bits of its xxhash64, as package ring places
// it.
func partitionOf(q int) func(key string) uint64 {
	shift := 64 - (bits.Len(uint(q)) - 1)
	return func(key string) uint64 {
		if shift == 64 {
			return 0
		}
		return xxhash.Sum64String(key) >> shift
	}
}

// retry calls fn until it succeeds, up to 5 times while it fails with a
// 503: a loaded 2-core machine sometimes times a replica out, and a
// failed write or page may be retried (a page from the same cursor).
func retry(fn func() error) error {
	var err error
	for range 5 {
		if err = fn(); !errors.Is(err, client.ErrUnavailable) {
			return err
		}
	}
	return err
}

// readLatencies reads random base keys one at a time, for d, or until
// until is closed, and returns the latencies of the reads that succeeded.
func readLatencies(ctx context.Context, c *client.Client, key func(int) string, keys int, d time.Duration, until <-chan struct{}) []time.Duration {
	var out []time.Duration
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		if until == nil && time.Now().After(deadline) {
			return out
		}
		if until != nil {
			select {
			case <-until:
				return out
			default:
			}
		}
		s := time.Now()
		_, err := c.Get(ctx, key((i*7919)%keys))
		if err == nil || errors.Is(err, client.ErrNotFound) {
			out = append(out, time.Since(s))
		}
		if ctx.Err() != nil {
			return out
		}
	}
}

// TestCreateOnlySingleClient: one client creating every key twice in a row
// (1,000 creates, through the nodes in turn) has every second create
// refused, and each key keeps its first value.
func TestCreateOnlySingleClient(t *testing.T) {
	as := cluster(t, 3)
	c := listingClient(t, as)
	ctx := t.Context()
	for i := range 1000 {
		k := fmt.Sprintf("create/%d", i/2)
		_, err := c.Put(ctx, k, []byte(fmt.Sprint(i)), client.CreateOnly(), client.Node(i%3))
		if i%2 == 0 && err != nil {
			t.Fatalf("create %d (%s): %v", i, k, err)
		}
		if i%2 == 1 && !errors.Is(err, client.ErrExists) {
			t.Fatalf("second create %d (%s): %v, want ErrExists (412)", i, k, err)
		}
	}
	for i := 0; i < 1000; i += 2 {
		k := fmt.Sprintf("create/%d", i/2)
		obj, err := c.Get(ctx, k, client.R(3))
		if err != nil || len(obj.Siblings) != 1 || string(obj.Siblings[0].Value) != fmt.Sprint(i) {
			t.Fatalf("%s: %+v, %v; want the first create's value alone", k, obj, err)
		}
	}
}

// TestScanBench measures, with QUORUMKV_SCAN_BENCH=1, full scans of
// 100,000 keys (pages of 1000 through one node, one after another) and the
// latency of point reads (r=2, one client) without a scan and while scans
// run, alternately, ROUNDS times (default 3). With QUORUMKV_SCAN_BENCH_OLD
// naming another quorumkv binary, a second cluster of that binary is
// loaded the same way and measured in every round too (first in odd
// rounds, second in even ones), so that the two compare in one run.
func TestScanBench(t *testing.T) {
	if os.Getenv("QUORUMKV_SCAN_BENCH") != "1" {
		t.Skip("set QUORUMKV_SCAN_BENCH=1")
	}
	rounds := 3
	if r, err := strconv.Atoi(os.Getenv("ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	const keys = 100_000
	ctx := t.Context()
	key := func(i int) string { return fmt.Sprintf("base/%06d", i) }
	type bench struct {
		name string
		c    *client.Client
	}
	load := func(name string, adjust ...func(*devcluster.Config)) bench {
		c := listingClient(t, cluster(t, 3, adjust...))
		if err := parallel(keys, 32, func(i int) error {
			return retry(func() error { _, err := c.Put(ctx, key(i), []byte("v")); return err })
		}); err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		return bench{name, c}
	}
	benches := []bench{load("this")}
	if old := os.Getenv("QUORUMKV_SCAN_BENCH_OLD"); old != "" {
		benches = append(benches, load(old, func(cfg *devcluster.Config) { cfg.Exe = old }))
	}
	for r := range rounds {
		for i := range benches {
			b := benches[(i+r)%len(benches)]
			scanBenchRound(t, b.c, key, keys, fmt.Sprintf("round %d, %s", r+1, b.name))
		}
	}
}

// scanBenchRound is one round of TestScanBench on one cluster: 5 s of
// point reads alone, then 5 s of full scans with point reads beside them.
func scanBenchRound(t *testing.T, c *client.Client, key func(int) string, keys int, name string) {
	ctx := t.Context()
	idle := readLatencies(ctx, c, key, keys, 5*time.Second, nil)
	scanning := make(chan struct{})
	readsDone := make(chan []time.Duration)
	go func() { readsDone <- readLatencies(ctx, c, key, keys, 0, scanning) }()
	start, listed, scans := time.Now(), 0, 0
	for time.Since(start) < 5*time.Second {
		cursor := ""
		for {
			pg, err := c.Keys(ctx, "", cursor, 1000, client.Node(0))
			if err != nil {
				close(scanning)
				<-readsDone
				t.Fatal(err)
			}
			listed += len(pg.Keys)
			if cursor = pg.Next; cursor == "" {
				break
			}
		}
		scans++
	}
	elapsed := time.Since(start)
	close(scanning)
	during := <-readsDone
	p := func(d []time.Duration, q int) time.Duration { return percentile.Of(d, q).Round(10 * time.Microsecond) }
	t.Logf("%s: %d full scans, %.0f keys/s; point reads idle p50 %s p99 %s (%d), during scans p50 %s p99 %s (%d); p99 during/idle %.2fx",
		name, scans, float64(listed)/elapsed.Seconds(), p(idle, 50), p(idle, 99), len(idle), p(during, 50), p(during, 99), len(during),
		float64(percentile.Of(during, 99))/float64(percentile.Of(idle, 99)))
	if listed != scans*keys {
		t.Errorf("%s: %d keys listed in %d scans of %d keys", name, listed, scans, keys)
	}
}
