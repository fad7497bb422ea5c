package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/api"
)

// TestExpiry (issue 18): keys written with SET ... EX 2 read as absent
// after 3 s through every agent at R=1, including one that was down (killed)
// while they expired and comes back with its old copies; anti-entropy's
// reaper then removes them from every agent's store, while keys without a
// time to live stay.
func TestExpiry(t *testing.T) {
	as, resp := respAgents(t, 3, "--tombstone-grace", "3s", "--hint-max-age", "1s", "--max-downtime", "2m", "--ae-interval", "1s")
	ctx := t.Context()
	cls := make([]*redis.Client, 3)
	for i := range cls {
		cls[i] = redisClient(t, resp[i], 4)
	}
	const keys = 20
	ttlKey := func(i int) string { return fmt.Sprintf("ttl-%02d", i) }
	keepKey := func(i int) string { return fmt.Sprintf("keep-%02d", i) }
	for i := range keys {
		if err := cls[i%3].Do(ctx, "SET", keepKey(i), "v", "W", "3").Err(); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Now()
	for i := range keys {
		if err := cls[i%3].Do(ctx, "SET", ttlKey(i), "v", "EX", "2", "W", "3").Err(); err != nil {
			t.Fatalf("SET %s EX 2: %v", ttlKey(i), err)
		}
		if i == 0 {
			if ttl, err := cls[1].Do(ctx, "PTTL", ttlKey(0)).Int64(); err != nil || ttl <= 0 || ttl > 2000 {
				t.Fatalf("PTTL right after the write = %d, %v", ttl, err)
			}
		}
	}
	last := time.Now() // every deadline is before last+2s
	// Every agent holds every key (W=3); n3 goes down with its copies.
	as[2].kill()
	if d := time.Since(written); d > 2*time.Second {
		t.Logf("the kill came %s after the first write: some keys expired before it", d)
	}

	time.Sleep(time.Until(last.Add(3 * time.Second))) // 3 s after each key's SET EX 2
	absentAt := func(cl *redis.Client, who string) {
		t.Helper()
		for i := range keys {
			if v, err := cl.Do(ctx, "GET", ttlKey(i), "R", "1").Text(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET %s R 1 via %s, 3 s after SET EX 2: %q, %v; want nil", ttlKey(i), who, v, err)
			}
			if v, err := cl.Do(ctx, "GET", keepKey(i), "R", "1").Text(); err != nil || v != "v" {
				t.Fatalf("GET %s via %s: %q, %v", keepKey(i), who, v, err)
			}
		}
		if ttl, err := cl.Do(ctx, "TTL", ttlKey(0)).Int64(); err != nil || ttl != -2 {
			t.Fatalf("TTL of an expired key via %s = %d, %v; want -2", who, ttl, err)
		}
	}
	absentAt(cls[0], "n1")
	absentAt(cls[1], "n2")
	// Nor does SCAN list them (it merges the partitions' copies and judges
	// deadlines as reads do), while it lists the others.
	var listed []string
	for cursor := uint64(0); ; {
		keys, next, err := cls[0].Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		listed = append(listed, keys...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	for _, k := range listed {
		if strings.HasPrefix(k, "ttl-") {
			t.Fatalf("SCAN lists the expired key %s", k)
		}
	}
	if len(listed) != keys {
		t.Fatalf("SCAN listed %d keys, want the %d without TTL: %v", len(listed), keys, listed)
	}

	// n3 comes back holding the values, which expired while it was down.
	as[2].start()
	waitAllAlive(t, as, 30*time.Second)
	cls[2] = redisClient(t, as[2].resp, 4)
	for i := range keys {
		if a := localCopy(ctx, as[2], ttlKey(i)); a.status != 404 {
			t.Fatalf("n3's own copy of %s after its return: %d %q; want 404", ttlKey(i), a.status, a.body)
		}
	}
	absentAt(cls[2], "n3")
	for _, a := range as[:2] {
		absentAt(cls[a.i], a.id)
	}

	// The reaper turns them into tombstones, every primary confirms, and
	// after the grace each removes its record: a local read then finds
	// no record at all (404 without a context).
	waitFor(t, 60*time.Second, "every agent to reap the expired keys", func() bool {
		for _, a := range as {
			for i := range keys {
				if an := localCopy(ctx, a, ttlKey(i)); an.status != 404 || an.context != "" {
					return false
				}
			}
		}
		return true
	}, as...)
	for _, a := range as {
		for i := range keys {
			if an := localCopy(ctx, a, keepKey(i)); an.status != 200 {
				t.Fatalf("%s lost %s: %d", a.id, keepKey(i), an.status)
			}
		}
		// The reaper did it (n3 restarted: it counts its own reaps only).
		var st api.Status
		if status, _, b := do(t, "GET", a.url("/status"), nil, nil); status != 200 || json.Unmarshal(b, &st) != nil ||
			st.AntiEntropy.TombstonesReaped < keys {
			t.Fatalf("%s /status: %d, %d tombstones reaped; want at least %d", a.id, status, st.AntiEntropy.TombstonesReaped, keys)
		}
	}
	// None comes back: a last round of reads at R=3 after anti-entropy ran.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range keys {
		if _, err := cls[i%3].Do(cctx, "GET", ttlKey(i), "R", "3").Text(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET %s R 3 after the reap: %v", ttlKey(i), err)
		}
	}
}
