package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// respAgents starts n agents with a RESP port each and extra agent flags,
// and returns them with their RESP addresses.
func respAgents(t *testing.T, n int, extra ...string) ([]*agent, []string) {
	t.Helper()
	as := cluster(t, n, withRESP, withArgs(extra...))
	resp := make([]string, n)
	for i, a := range as {
		resp[i] = a.resp
	}
	return as, resp
}

func redisClient(t *testing.T, addr string, pool int) *redis.Client {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: addr, PoolSize: pool, MaxRetries: -1,
		DialTimeout: 2 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestRESP: every agent serves RESP; writes through one are read through
// the others; siblings and quorum options work across processes; a kill -9
// of one agent does not stop writes at W=2.
func TestRESP(t *testing.T) {
	as, resp := respAgents(t, 3)
	ctx := t.Context()
	cls := make([]*redis.Client, 3)
	for i := range cls {
		cls[i] = redisClient(t, resp[i], 32)
	}
	// The member list publishes the RESP addresses.
	if _, _, b := do(t, "GET", as[0].url("/cluster/members"), nil, nil); !strings.Contains(string(b), resp[2]) {
		t.Fatalf("members do not list n3's RESP address %s:\n%s", resp[2], b)
	}
	if err := cls[0].Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i, cl := range cls {
		if got, err := cl.Do(ctx, "GET", "greeting", "R", "3").Text(); err != nil || got != "hello" {
			t.Fatalf("GET via n%d = %q, %v", i+1, got, err)
		}
	}
	// The HTTP API sees RESP writes, and RESP sees HTTP writes.
	if status, _, b := do(t, "GET", as[1].url("/kv/greeting"), nil, nil); status != 200 || string(b) != "hello" {
		t.Fatalf("HTTP GET of a RESP write: %d %q", status, b)
	}
	if status, _, b := do(t, "PUT", as[2].url("/kv/from-http?w=3"), []byte("h"), nil); status != 204 {
		t.Fatalf("HTTP PUT: %d %s", status, b)
	}
	if got, err := cls[0].Get(ctx, "from-http").Result(); err != nil || got != "h" {
		t.Fatalf("RESP GET of an HTTP write = %q, %v", got, err)
	}
	// A context from QGET on one agent is accepted by another.
	for _, v := range []string{"a", "b"} {
		if err := cls[0].Do(ctx, "QSET", "sib", v, "W", "3").Err(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := cls[1].Do(ctx, "QGET", "sib", "R", "3").Slice()
	if err != nil || len(res) != 2 || len(res[1].([]any)) != 2 {
		t.Fatalf("QGET = %v, %v; want two siblings", res, err)
	}
	if err := cls[2].Do(ctx, "QSET", "sib", "ab", "CONTEXT", res[0], "W", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := cls[0].Do(ctx, "QGET", "sib", "R", "3").Slice(); err != nil || len(res[1].([]any)) != 1 {
		t.Fatalf("QGET after resolving = %v, %v", res, err)
	}
	err = cls[0].Do(ctx, "GET", "greeting", "R", "4").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "ERR bad parameter r: r=4: cannot exceed n=3") {
		t.Fatalf("GET R 4: %v", err)
	}

	// Writers on n1 while n3 is killed with SIGKILL.
	var okAfterKill, failed atomic.Int64
	var killedAt atomic.Bool
	stop := make(chan struct{})
	acked, writersDone := writeUntil(16, "load", stop, func(_ int, k string) error {
		err := cls[0].Set(ctx, k, k, 0).Err()
		switch {
		case err != nil:
			failed.Add(1)
		case killedAt.Load():
			okAfterKill.Add(1)
		}
		return err
	})
	time.Sleep(500 * time.Millisecond) // load before the kill; the checks below do not depend on it
	as[2].kill()
	killedAt.Store(true)
	waitFor(t, 20*time.Second, "writes to go on after the kill", func() bool { return okAfterKill.Load() >= 500 })
	close(stop)
	writersDone()
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if got, err := cls[1].Get(ctx, k.(string)).Result(); err != nil || got != k {
			t.Errorf("GET %s via n2 = %q, %v", k, got, err)
			return false
		}
		return true
	})
	t.Logf("%d writes acknowledged, %d failed (all around the kill), %d after it", n, failed.Load(), okAfterKill.Load())
}

// loadUntilKilled writes distinct keys through every agent's RESP port
// until stop closes. It returns the keys acknowledged so far (a live view)
// and a function that waits for the writers to finish.
func loadUntilKilled(cls []*redis.Client, stop <-chan struct{}) (*sync.Map, func()) {
	return writeUntil(24, "d", stop, func(w int, k string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cls[w%len(cls)].Set(ctx, k, "value-"+k, 0).Err()
	})
}

// writeUntil runs workers writers, writer w calling set(w, k) for the
// distinct keys k = prefix-w-0, prefix-w-1, ... until stop closes. It
// returns the keys whose set succeeded (a live view) and a function that
// waits for the writers to finish.
func writeUntil(workers int, prefix string, stop <-chan struct{}, set func(w int, k string) error) (*sync.Map, func()) {
	var acked sync.Map
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if stopped(stop) {
					return
				}
				k := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				if set(w, k) == nil {
					acked.Store(k, true)
				}
			}
		})
	}
	return &acked, wg.Wait
}

// checkAcked reads every acknowledged key (R=2) and fails for any missing.
func checkAcked(t *testing.T, cl *redis.Client, acked *sync.Map) int {
	t.Helper()
	n, missing := 0, 0
	acked.Range(func(k, _ any) bool {
		n++
		got, err := cl.Get(t.Context(), k.(string)).Result()
		if err != nil || got != "value-"+k.(string) {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged SET %s: GET = %q, %v", k, got, err)
			}
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", missing, n)
	}
	if n == 0 {
		t.Fatal("no write was acknowledged")
	}
	return n
}

// TestRESPDurability: every SET acknowledged at W=2 is readable after the
// agents restart, whether they were killed with SIGKILL under load (--sync,
// and the default mode, whose promise covers a process crash too) or
// stopped cleanly under load. See store/doc.go for the promises: --sync
// fsyncs every group commit before acknowledging (survives a machine
// crash); the default leaves them in badger's memory-mapped log (survives a
// process crash or a clean stop, not a kernel crash or power loss).
func TestRESPDurability(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		stop  func(a *agent) error
	}{
		{"sync, kill -9", []string{"--sync"}, func(a *agent) error { a.kill(); return nil }},
		{"no sync, clean stop", nil, func(a *agent) error { return a.stop(30 * time.Second) }},
		{"no sync, kill -9", nil, func(a *agent) error { a.kill(); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, resp := respAgents(t, 3, tc.flags...)
			cls := make([]*redis.Client, 3)
			for i := range cls {
				cls[i] = redisClient(t, resp[i], 24)
			}
			stop := make(chan struct{})
			acked, writersDone := loadUntilKilled(cls, stop)
			defer writersDone()
			waitFor(t, 30*time.Second, "a few hundred acknowledged writes", func() bool {
				n := 0
				acked.Range(func(_, _ any) bool { n++; return n < 300 })
				return n >= 300
			}, as...)
			// Every agent at once, while the writers are still writing.
			var wg sync.WaitGroup
			for _, a := range as {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := tc.stop(a); err != nil {
						t.Errorf("stop %s: %v", a.id, err)
					}
				}()
			}
			wg.Wait()
			close(stop)
			writersDone()
			for _, a := range as {
				a.start() // on its ports and data, with its flags
			}
			waitAllAlive(t, as, 30*time.Second)
			n := checkAcked(t, redisClient(t, resp[1], 8), acked)
			t.Logf("%d acknowledged writes, all readable after the restart", n)
		})
	}
}
