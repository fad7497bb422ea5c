package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/percentile"
)

func hkey(prefix string, i int) string { return fmt.Sprintf("%s%06d", prefix, i) }

// writeKeys writes n keys with w=2, each through one of via in turn, and
// returns the keys whose write's outcome is unknown (outcomeUnknown).
func writeKeys(t *testing.T, via []*agent, prefix string, n int) *maybeWritten {
	t.Helper()
	start := time.Now()
	maybe := &maybeWritten{}
	err := parallel(n, 16, func(i int) error {
		k := hkey(prefix, i)
		a := loadReq(t.Context(), http.MethodPut, via[i%len(via)].url("/kv/"+k+"?w=2"), []byte("v-"+k))
		switch {
		case a.status == http.StatusNoContent || a.status == http.StatusOK:
		case outcomeUnknown(a.status):
			maybe.add(i)
		default:
			return fmt.Errorf("put %s via %s: %d %s", k, via[i%len(via)].id, a.status, a.body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes with w=2 through %d agents in %s (%d maybe written: 503 or no answer)", n, len(via), time.Since(start).Round(time.Millisecond), maybe.len())
	return maybe
}

// hintsForAll reports whether got hints may be one for each of keys
// writes of which maybe are maybe written (each of those may or may not
// have left a hint).
func hintsForAll(got, keys int, maybe *maybeWritten) bool {
	return got >= keys-maybe.len() && got <= keys
}

// hintStatus is what these tests read of /status.
type hintStatus struct {
	Stored    uint64            `json:"stored"`
	Delivered uint64            `json:"delivered"`
	Failed    uint64            `json:"failed"`
	Dropped   map[string]uint64 `json:"dropped"`
	Rate      float64           `json:"rate_per_second"`
	Targets   []struct {
		Target  string `json:"target"`
		Pending int    `json:"pending"`
	} `json:"targets"`
}

// hintsOf reads a's hint status; ok is false when a does not answer.
func hintsOf(t *testing.T, a *agent) (hintStatus, bool) {
	var body struct {
		Hints hintStatus `json:"hints"`
	}
	ans := loadReq(t.Context(), http.MethodGet, a.url("/status"), nil)
	if ans.status != http.StatusOK || json.Unmarshal(ans.body, &body) != nil {
		return hintStatus{}, false
	}
	return body.Hints, true
}

// pendingFor sums the hints the holders keep for target (-1 if one does
// not answer).
func pendingFor(t *testing.T, target string, holders ...*agent) int {
	n := 0
	for _, a := range holders {
		h, ok := hintsOf(t, a)
		if !ok {
			return -1
		}
		for _, ts := range h.Targets {
			if ts.Target == target {
				n += ts.Pending
			}
		}
	}
	return n
}

// checkLocalCopies reads every key's local copy on a first (no quorum, so
// no read repair can have fixed it), then a quorum read (r=2) through
// quorum, and fails the test for every key whose local value or context
// differs. A key maybe written may be absent; if present, it has its value.
func checkLocalCopies(t *testing.T, a, quorum *agent, prefix string, n int, maybe *maybeWritten) {
	t.Helper()
	local := make([]answer, n)
	if err := parallel(n, 16, func(i int) error {
		local[i] = loadReq(t.Context(), http.MethodGet, a.url("/kv/"+hkey(prefix, i)+"?local=true"), nil)
		if local[i].status == 0 {
			return fmt.Errorf("local get of %s on %s: %s", hkey(prefix, i), a.id, local[i].body)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var bad atomic.Int64
	if err := parallel(n, 16, func(i int) error {
		k := hkey(prefix, i)
		q := loadReq(t.Context(), http.MethodGet, quorum.url("/kv/"+k), nil)
		if maybe.has(i) {
			if q.status != http.StatusNotFound && (q.status != http.StatusOK || string(q.body) != "v-"+k) {
				return fmt.Errorf("quorum get of %s (maybe written) via %s: %d %s", k, quorum.id, q.status, q.body)
			}
			return nil
		}
		if q.status != http.StatusOK || string(q.body) != "v-"+k {
			return fmt.Errorf("quorum get of %s via %s: %d %s", k, quorum.id, q.status, q.body)
		}
		l := local[i]
		if l.status != q.status || !bytes.Equal(l.body, q.body) || l.context != q.context {
			if bad.Add(1) <= 5 {
				t.Errorf("%s on %s: local copy %d %q context %q; quorum read %d %q context %q",
					k, a.id, l.status, l.body, l.context, q.status, q.body, q.context)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b := bad.Load(); b > 0 {
		t.Fatalf("%d of %d keys differ on %s", b, n, a.id)
	}
}

// TestHintedHandoff runs the real-process cases on three agents:
// one killed with SIGKILL while 10,000 keys are written with w=2, then
// restarted on its data directory, must hold every key within 30 s; then
// the fallbacks holding hints are themselves killed before delivery and
// restarted, and the hints still arrive.
func TestHintedHandoff(t *testing.T) {
	as := cluster(t, 3)
	n1, n2, n3 := as[0], as[1], as[2]
	live := []*agent{n1, n2}

	t.Run("agent killed, 10000 writes, restarted", func(t *testing.T) {
		const keys = 10000
		maybe := writeWhileDown(t, n3, live, "hh-", keys)
		restarted := restartAndDeliver(t, n3, as, "every hint for n3 delivered", keys)
		checkLocalCopies(t, n3, n1, "hh-", keys, maybe)
		if d := time.Since(restarted); d > 30*time.Second {
			t.Fatalf("n3 held every key only %s after its restart", d)
		}
	})

	t.Run("fallbacks killed before delivery", func(t *testing.T) {
		const keys = 2000
		maybe := writeWhileDown(t, n3, live, "hf-", keys)
		n1.kill()
		n2.kill()
		n1.start()
		n2.start()
		waitFor(t, 30*time.Second, "n1 and n2 back, seeing each other", func() bool {
			s1, s2 := memberStates(n1), memberStates(n2)
			return s1["n2"] == "alive" && s2["n1"] == "alive"
		}, live...)
		if got := pendingFor(t, n3.id, live...); !hintsForAll(got, keys, maybe) {
			t.Fatalf("%d hints for n3 after the fallbacks' kill -9 and restart, want %d (%d writes maybe written)", got, keys, maybe.len())
		}
		restartAndDeliver(t, n3, as, "the restarted fallbacks' hints delivered", keys)
		checkLocalCopies(t, n3, n2, "hf-", keys, maybe)
		var delivered uint64
		for _, a := range live {
			h, _ := hintsOf(t, a)
			delivered += h.Delivered
		}
		if delivered < uint64(keys-maybe.len()) {
			t.Fatalf("the restarted fallbacks report %d hints delivered, want at least %d", delivered, keys-maybe.len())
		}
	})

	t.Run("status shows hints", func(t *testing.T) {
		code, out, errOut := cli(t, "", "status", "--addr", n1.http)
		if code != 0 || !strings.Contains(out, "hints") || !strings.Contains(out, "hints for n3") {
			t.Fatalf("quorumkv status: exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("quorumkv status:\n%s", out)
		st := loadReq(t.Context(), http.MethodGet, n1.url("/metrics"), nil)
		for _, m := range []string{"quorumkv_hints_delivered_total", "quorumkv_hints_stored_total", `quorumkv_hints_dropped_total{reason="bytes"}`, "quorumkv_hints_failed_total"} {
			if !bytes.Contains(st.body, []byte(m)) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	})
}

// writeWhileDown kills down, writes keys under prefix through live (every
// write must succeed with w=2, or its outcome be unknown) and waits for a
// hint of every key on them; it returns the keys maybe written.
func writeWhileDown(t *testing.T, down *agent, live []*agent, prefix string, keys int) *maybeWritten {
	t.Helper()
	down.kill()
	maybe := writeKeys(t, live, prefix, keys)
	waitFor(t, 10*time.Second, "a hint for every key on the live agents", func() bool {
		return hintsForAll(pendingFor(t, down.id, live...), keys, maybe)
	}, live...)
	return maybe
}

// restartAndDeliver starts down again and waits (what) until the other
// agents of as hold no hint for it; it returns when down was restarted.
func restartAndDeliver(t *testing.T, down *agent, as []*agent, what string, keys int) time.Time {
	t.Helper()
	var others []*agent
	for _, a := range as {
		if a != down {
			others = append(others, a)
		}
	}
	restarted := time.Now()
	down.start()
	waitFor(t, 30*time.Second, what, func() bool {
		return pendingFor(t, down.id, others...) == 0
	}, as...)
	t.Logf("hints for %d keys delivered %s after %s was restarted", keys, time.Since(restarted).Round(time.Millisecond), down.id)
	return restarted
}

// failedLatency is what a failed request counts as in latencies: slower
// than any answer, so a quantile check cannot pass by dropping failures.
const failedLatency = time.Hour

// latencies records request latencies; safe for concurrent use. A failed
// request is recorded as failedLatency (and counted in errors).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	at []time.Time // when each request was due
	// errors counts failed requests.
	errors atomic.Int64
}

func (l *latencies) add(due time.Time, d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.at = append(l.at, due)
	l.mu.Unlock()
}

// windows returns the p99 of each window of width w from start.
func (l *latencies) windows(start time.Time, w time.Duration) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var buckets [][]time.Duration
	for i, at := range l.at {
		b := int(at.Sub(start) / w)
		if b < 0 {
			continue
		}
		for len(buckets) <= b {
			buckets = append(buckets, nil)
		}
		buckets[b] = append(buckets[b], l.d[i])
	}
	var out []string
	for i, b := range buckets {
		p99 := percentile.Of(b, 99)
		out = append(out, fmt.Sprintf("%s:%s", time.Duration(i)*w, p99.Round(10*time.Microsecond)))
	}
	return out
}

func (l *latencies) pct(p int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentile.Of(l.d, p)
}

// count is the number of requests that succeeded.
func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d) - int(l.errors.Load())
}

// load writes w=2 PUTs of 100-byte values, keys prefix+counter, through
// the agents in turn, with 16 workers. With rate > 0 it is open loop:
// request i is due at start+i/rate and its latency counts from then, so a
// stall is charged to every request queued behind it. It runs until stop
// is closed or, with max > 0, max requests were sent.
func load(t *testing.T, via []*agent, prefix string, rate float64, max int, stop <-chan struct{}) *latencies {
	l := &latencies{}
	val := bytes.Repeat([]byte("x"), 100)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if max > 0 && i >= max {
					return
				}
				due := time.Now()
				if rate > 0 {
					due = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if w := time.Until(due); w > 0 {
						if !sleepUnless(stop, w) {
							return
						}
					}
				}
				if stopped(stop) {
					return
				}
				a := via[i%len(via)]
				ans := loadReq(t.Context(), http.MethodPut, a.url("/kv/"+hkey(prefix, i)+"?w=2"), val)
				if ans.status != http.StatusNoContent && ans.status != http.StatusOK {
					if l.errors.Add(1) <= 3 {
						t.Logf("put via %s: %d %s", a.id, ans.status, ans.body)
					}
					l.add(due, failedLatency)
					continue
				}
				l.add(due, time.Since(due))
			}
		})
	}
	wg.Wait()
	return l
}

// quietCluster is cluster with warn-level logs (the harness runs agents at
// debug level, whose per-commit store lines would be measured too) and the
// extra agent flags of QUORUMKV_HINTS_BENCH_FLAGS (e.g. "--ae-interval 0"
// to separate hint delivery from anti-entropy); restarts keep both.
func quietCluster(t *testing.T, n int) []*agent {
	t.Helper()
	return cluster(t, n, withArgs(append([]string{"--log-level", "warn"}, strings.Fields(os.Getenv("QUORUMKV_HINTS_BENCH_FLAGS"))...)...))
}

// aeActivity summarises a's anti-entropy counters (its /status), to tell
// the cost of hint delivery from that of anti-entropy repairs running at
// the same time.
func aeActivity(t *testing.T, a *agent) string {
	var body struct {
		AE map[string]any `json:"anti_entropy"`
	}
	ans := loadReq(t.Context(), http.MethodGet, a.url("/status"), nil)
	if json.Unmarshal(ans.body, &body) != nil || body.AE == nil {
		return a.id + ": -"
	}
	out := a.id + ":"
	for _, k := range []string{"exchanges", "keys_differing", "repaired_local", "repaired_remote", "quarantined", "wipes"} {
		out += fmt.Sprintf(" %s=%v", k, body.AE[k])
	}
	return out
}

// runFor runs load for d and returns its latencies and throughput.
func runFor(t *testing.T, via []*agent, prefix string, rate float64, d time.Duration) (*latencies, float64) {
	stop := make(chan struct{})
	timer := time.AfterFunc(d, func() { close(stop) })
	defer timer.Stop()
	start := time.Now()
	l := load(t, via, prefix, rate, 0, stop)
	return l, float64(l.count()) / time.Since(start).Seconds()
}

// TestHintsBench measures, on three real agents: write throughput and
// latency with all up and with one killed; the time to deliver 100,000
// hints to the restarted agent; and the p99 of a paced write load while
// they drain, against the same load before the agent went down, which must
// stay within 2x. It takes a few minutes, so it runs only with
// QUORUMKV_HINTS_BENCH=1; the figures go to docs/bench/hints.md.
//
//	QUORUMKV_HINTS_BENCH=1 go test ./e2e -run TestHintsBench -v -timeout 20m
//
// QUORUMKV_HINTS_BENCH_FLAGS adds agent flags (e.g. "--ae-interval 0").
func TestHintsBench(t *testing.T) {
	if os.Getenv("QUORUMKV_HINTS_BENCH") != "1" {
		t.Skip("set QUORUMKV_HINTS_BENCH=1 to run (a few minutes)")
	}
	const (
		hints = 100000
		rate  = 500.0 // paced load, writes/s
		d     = 10 * time.Second
	)
	as := quietCluster(t, 3)
	n1, n2, n3 := as[0], as[1], as[2]
	live := []*agent{n1, n2}

	// Warm up (connections, badger), then measure with all up.
	runFor(t, as, "warm-", 0, 3*time.Second)
	paced, _ := runFor(t, live, "paced-up-", rate, d)
	up, upThr := runFor(t, as, "closed-up-", 0, d)

	n3.kill()
	down, downThr := runFor(t, live, "closed-down-", 0, d)
	t.Logf("closed loop, 16 workers, w=2: all up %.0f writes/s p50 %s p99 %s (errors %d); one down %.0f writes/s p50 %s p99 %s (errors %d)",
		upThr, up.pct(50), up.pct(99), up.errors.Load(), downThr, down.pct(50), down.pct(99), down.errors.Load())
	t.Logf("paced %.0f writes/s, all up: p50 %s p99 %s (%d requests)", rate, paced.pct(50), paced.pct(99), paced.count())

	// Top the hints up to exactly 100,000 keys written while n3 is down.
	have := pendingFor(t, n3.id, live...)
	if have < hints {
		load(t, live, "fill-", 0, hints-have, nil)
	}
	waitFor(t, time.Minute, "hints stored", func() bool { return pendingFor(t, n3.id, live...) >= hints }, live...)
	total := pendingFor(t, n3.id, live...)

	// Restart n3 and time the drain while the paced load runs.
	stop := make(chan struct{})
	var drain *latencies
	done := make(chan struct{})
	go func() {
		defer close(done)
		drain = load(t, live, "paced-drain-", rate, 0, stop)
	}()
	aeBefore := []string{aeActivity(t, n1), aeActivity(t, n2)}
	restarted := time.Now()
	n3.start()
	var first time.Duration
	var rates []string
	lastRate := time.Now()
	for {
		if time.Since(lastRate) >= 2*time.Second {
			lastRate = time.Now()
			var rs []string
			for _, a := range live {
				h, _ := hintsOf(t, a)
				rs = append(rs, fmt.Sprintf("%.0f", h.Rate))
			}
			rates = append(rates, fmt.Sprintf("%s:%s", time.Since(restarted).Round(time.Second), strings.Join(rs, "/")))
		}
		p := pendingFor(t, n3.id, live...)
		if p >= 0 && p < total && first == 0 {
			first = time.Since(restarted)
		}
		if p == 0 {
			break
		}
		if time.Since(restarted) > 5*time.Minute {
			close(stop)
			<-done
			t.Fatalf("%d hints still pending 5 minutes after restart", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	drained := time.Since(restarted)
	close(stop)
	<-done
	t.Logf("%d hints delivered %s after restart (first delivery seen at %s: %s from first delivery to empty, %.0f hints/s)",
		total, drained.Round(time.Millisecond), first.Round(time.Millisecond), (drained - first).Round(time.Millisecond),
		float64(total)/(drained-first).Seconds())
	t.Logf("paced %.0f writes/s while draining: p50 %s p99 %s (%d requests, errors %d); before the node went down p99 %s",
		rate, drain.pct(50), drain.pct(99), drain.count(), drain.errors.Load(), paced.pct(99))
	t.Logf("p99 per 2s window from the restart: %s", strings.Join(drain.windows(restarted, 2*time.Second), " "))
	t.Logf("delivery rate caps of n1/n2 every 2s: %s", strings.Join(rates, " "))
	t.Logf("anti-entropy before the restart: %s; after the drain: %s; %s; %s",
		strings.Join(aeBefore, "; "), aeActivity(t, n1), aeActivity(t, n2), aeActivity(t, n3))
	if p99, base := drain.pct(99), paced.pct(99); p99 > 2*base {
		t.Errorf("p99 while hints drain %s is more than twice the p99 before the node went down (%s)", p99, base)
	}
}
