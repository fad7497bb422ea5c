package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Workloads for the Docker fault tests, driven from the host through the
// published HTTP ports.
//
// The set workload is Jepsen's set test for a store with siblings: each
// client adds unique elements to a few keys, each add a read (with its
// causal context) followed by a write of the union of every sibling's
// elements plus the new one, carrying that context. An element is
// acknowledged when its write answered 2xx; it must then be in the key's
// final value.
//
// The register workload gives each client a key of its own: it reads the
// counter (r=2), counts the read stale when it is below the last counter
// it had acknowledged, and writes the next one with the read's context.
// The last acknowledged counter must survive.

// siblingsOf reads key through nd and returns the values of its live
// siblings and the context. found is false on 404.
func dockerGet(ctx context.Context, nd *dockerNode, key, query string) (vals []string, token string, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nd.url("/kv/"+key+query), nil)
	if err != nil {
		return nil, "", false, err
	}
	res, err := dockerHTTP.Do(req)
	if err != nil {
		return nil, "", false, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, "", false, err
	}
	token = res.Header.Get("X-Quorumkv-Context")
	switch res.StatusCode {
	case http.StatusOK:
		return []string{string(b)}, token, true, nil
	case http.StatusNotFound:
		return nil, token, false, nil
	case http.StatusMultipleChoices:
		var body struct {
			Siblings []struct {
				Value   string `json:"value"`
				Deleted bool   `json:"deleted"`
			} `json:"siblings"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return nil, "", false, fmt.Errorf("siblings of %s: %v", key, err)
		}
		for _, s := range body.Siblings {
			if s.Deleted {
				continue
			}
			v, err := base64.StdEncoding.DecodeString(s.Value)
			if err != nil {
				return nil, "", false, fmt.Errorf("sibling of %s: %v", key, err)
			}
			vals = append(vals, string(v))
		}
		return vals, token, true, nil
	}
	return nil, "", false, &unexpectedStatus{fmt.Sprintf("get %s via %s", key, nd.id), res.StatusCode, string(bytes.TrimSpace(b))}
}

// unexpectedStatus is an answer dockerGet does not expect (503 under
// faults, or a 4xx no fault explains).
type unexpectedStatus struct {
	op     string
	status int
	body   string
}

func (e *unexpectedStatus) Error() string { return fmt.Sprintf("%s: %d %s", e.op, e.status, e.body) }

// put writes val to key through nd (w=2) with the context token and
// reports the status (0: no answer).
func dockerPut(ctx context.Context, nd *dockerNode, key, val, token string) (int, string) {
	return dockerPutQuery(ctx, nd, key, val, token, "?w=2&timeout=2s")
}

// dockerPutQuery is dockerPut with the query given.
func dockerPutQuery(ctx context.Context, nd *dockerNode, key, val, token, query string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, nd.url("/kv/"+key+query), strings.NewReader(val))
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("X-Quorumkv-Context", token)
	}
	res, err := dockerHTTP.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return res.StatusCode, string(bytes.TrimSpace(b))
}

// elements parses a set value: elements separated by commas.
func setElements(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// union of the elements of every sibling, sorted.
func setUnion(vals []string, more ...string) []string {
	seen := map[string]bool{}
	for _, v := range vals {
		for _, e := range setElements(v) {
			seen[e] = true
		}
	}
	for _, e := range more {
		seen[e] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// phaseTally counts operations per phase and kind.
type phaseTally struct {
	phase  atomic.Int32
	names  []string
	mu     sync.Mutex
	counts map[string]*[3]int64 // phase/kind -> ok, failed, stale reads
}

func newPhaseTally() *phaseTally {
	return &phaseTally{names: []string{"start"}, counts: map[string]*[3]int64{}}
}

// enter starts a new phase.
func (p *phaseTally) enter(name string) {
	p.mu.Lock()
	p.names = append(p.names, name)
	p.mu.Unlock()
	p.phase.Add(1)
}

func (p *phaseTally) count(kind string, field int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.names[p.phase.Load()] + "\x00" + kind
	if p.counts[k] == nil {
		p.counts[k] = &[3]int64{}
	}
	p.counts[k][field]++
}

const (
	opOK = iota
	opFailed
	opStale
)

// report renders the availability table.
func (p *phaseTally) report(kinds ...string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s", "phase")
	for _, k := range kinds {
		fmt.Fprintf(&b, " | %-28s", k+" ok/failed (avail)")
	}
	b.WriteString(" | register stale reads\n")
	for _, ph := range p.names {
		fmt.Fprintf(&b, "%-34s", ph)
		for _, k := range kinds {
			c := p.counts[ph+"\x00"+k]
			if c == nil {
				c = &[3]int64{}
			}
			avail := "-"
			if n := c[opOK] + c[opFailed]; n > 0 {
				avail = fmt.Sprintf("%.1f%%", 100*float64(c[opOK])/float64(n))
			}
			fmt.Fprintf(&b, " | %-28s", fmt.Sprintf("%d/%d (%s)", c[opOK], c[opFailed], avail))
		}
		stale := int64(0)
		if c := p.counts[ph+"\x00register"]; c != nil {
			stale = c[opStale]
		}
		fmt.Fprintf(&b, " | %d\n", stale)
	}
	return b.String()
}

// badAnswers collects answers no fault explains: a 4xx other than 404, a
// value the workload never wrote.
type badAnswers struct {
	mu   sync.Mutex
	list []string
}

func (b *badAnswers) add(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.list = append(b.list, fmt.Sprintf(format, args...))
}

// readModifyWrite reads key through nd (r=2), computes the value to write
// from the siblings read, and writes it (w=2) with the read's context. It
// counts the operation in tally under kind: ok when the write was
// acknowledged, failed when the read or the write got a 503 or no answer
// (a failed write may still have landed). It reports whether the write was
// acknowledged.
func readModifyWrite(ctx context.Context, nd *dockerNode, key, kind string, tally *phaseTally, bad *badAnswers, next func(vals []string) (string, error)) bool {
	vals, token, _, err := dockerGet(ctx, nd, key, "?r=2&timeout=2s")
	if err != nil {
		var ue *unexpectedStatus
		if errors.As(err, &ue) && ue.status/100 == 4 {
			bad.add("%v", err)
		} else if ctx.Err() == nil {
			tally.count(kind, opFailed)
		}
		sleepCtx(ctx, 20*time.Millisecond)
		return false
	}
	val, err := next(vals)
	if err != nil {
		bad.add("%s via %s: %v", key, nd.id, err)
		return false
	}
	status, msg := dockerPut(ctx, nd, key, val, token)
	defer sleepCtx(ctx, 5*time.Millisecond)
	switch {
	case status/100 == 2:
		tally.count(kind, opOK)
		return true
	case status/100 == 4:
		bad.add("put %s via %s: %d %s", key, nd.id, status, msg)
	case ctx.Err() == nil:
		tally.count(kind, opFailed)
	}
	return false
}

// setWorkload is the state of the set clients.
type setWorkload struct {
	keys  int
	mu    sync.Mutex
	acked map[string][]string // key -> acknowledged elements
	bad   badAnswers
}

// run is client c's loop until ctx ends. It spreads its operations over
// the nodes in turn and over the keys.
func (w *setWorkload) run(ctx context.Context, c int, nodes []*dockerNode, tally *phaseTally) {
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("set-%d", (c+seq)%w.keys)
		elem := fmt.Sprintf("c%d.%d", c, seq)
		add := func(vals []string) (string, error) { return strings.Join(setUnion(vals, elem), ","), nil }
		if readModifyWrite(ctx, nodes[(c+seq)%len(nodes)], key, "set", tally, &w.bad, add) {
			w.mu.Lock()
			w.acked[key] = append(w.acked[key], elem)
			w.mu.Unlock()
		}
	}
}

// registerWorkload is the state of the register clients.
type registerWorkload struct {
	mu    sync.Mutex
	acked map[string]int // key -> last acknowledged counter
	bad   badAnswers
}

// registerCounter is the largest counter among a register's siblings.
func registerCounter(vals []string) (int, error) {
	best := 0
	for _, v := range vals {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("register value %q", v)
		}
		best = max(best, n)
	}
	return best, nil
}

// run is client c's loop on its own key until ctx ends. A read of a
// counter below the last one this client had acknowledged is stale.
func (w *registerWorkload) run(ctx context.Context, c int, nodes []*dockerNode, tally *phaseTally) {
	key := fmt.Sprintf("reg-%d", c)
	last := 0
	for seq := 0; ctx.Err() == nil; seq++ {
		next := 0
		incr := func(vals []string) (string, error) {
			got, err := registerCounter(vals)
			if got < last {
				tally.count("register", opStale)
			}
			next = max(got, last) + 1
			return strconv.Itoa(next), err
		}
		if readModifyWrite(ctx, nodes[(c+seq)%len(nodes)], key, "register", tally, &w.bad, incr) {
			last = next
			w.mu.Lock()
			w.acked[key] = next
			w.mu.Unlock()
		}
	}
}

// startLoad runs each loop on a goroutine of its own until the returned
// stop is called; stop waits for them, may be called more than once, and
// runs at the end of the test anyway.
func startLoad(t *testing.T, loops ...func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Go(func() { loop(ctx) })
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// dockerCopy is one node's own copy of a key (?local=true: no quorum, no
// read repair).
type dockerCopy struct {
	node    string
	context string
	values  []string // sorted sibling values
}

// localCopies reads key's local copy on every node; nodes without one are
// left out.
func dockerLocalCopies(ctx context.Context, nodes []*dockerNode, key string) ([]dockerCopy, error) {
	var out []dockerCopy
	for _, nd := range nodes {
		vals, token, found, err := dockerGet(ctx, nd, key, "?local=true")
		if err != nil {
			return nil, err
		}
		if found {
			slices.Sort(vals)
			out = append(out, dockerCopy{node: nd.id, context: token, values: vals})
		}
	}
	return out, nil
}

// converged checks that key has n local copies and that they are equal; it
// returns the copy, or why not.
func dockerConverged(ctx context.Context, nodes []*dockerNode, key string, n int) (dockerCopy, string) {
	copies, err := dockerLocalCopies(ctx, nodes, key)
	switch {
	case err != nil:
		return dockerCopy{}, err.Error()
	case len(copies) < n:
		var on []string
		for _, c := range copies {
			on = append(on, c.node)
		}
		return dockerCopy{}, fmt.Sprintf("%s: %d local copies (on %v), want %d", key, len(copies), on, n)
	}
	for _, c := range copies[1:] {
		if c.context != copies[0].context || !slices.Equal(c.values, copies[0].values) {
			return dockerCopy{}, fmt.Sprintf("%s: %s and %s hold different copies (%d vs %d siblings)", key, copies[0].node, c.node, len(copies[0].values), len(c.values))
		}
	}
	return copies[0], ""
}

// checkConverged waits until every key's replicas are equal and stay so
// over a whole pass, then checks that nothing acknowledged is lost. It
// returns how long convergence took.
//
// Equal replicas are not yet the end: repair may still move a key whose
// replicas looked equal (a hint delivered late from a fallback, then
// anti-entropy spreading it), and it moves every replica, so they are
// equal again with another context. The lost-write check must see the
// final state, so a key that moved is taken again, and the wait ends with
// a pass in which no key moved.
func dockerCheckConverged(t *testing.T, nodes []*dockerNode, sets *setWorkload, regs *registerWorkload, n int, timeout time.Duration) time.Duration {
	t.Helper()
	var keys []string
	for k := range sets.keys {
		keys = append(keys, fmt.Sprintf("set-%d", k))
	}
	for k := range regs.acked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	start := time.Now()
	final := map[string]dockerCopy{}
	moved := map[string]int{}
	var why string
	err := poll(timeout, "every key's replicas equal, and unchanged over a whole pass", func() bool {
		// Every key equal once (keys found equal before are not read).
		for _, k := range keys {
			if _, done := final[k]; done {
				continue
			}
			c, reason := dockerConverged(t.Context(), nodes, k, n)
			if reason != "" {
				why = reason
				return false
			}
			final[k] = c
		}
		// Then a whole pass that finds every key as it was.
		still := true
		for _, k := range keys {
			c, reason := dockerConverged(t.Context(), nodes, k, n)
			switch {
			case reason != "":
				why, still = reason, false
				delete(final, k)
			case c.context != final[k].context || !slices.Equal(c.values, final[k].values):
				why, still = fmt.Sprintf("%s changed after its replicas were equal", k), false
				final[k] = c
				moved[k]++
			}
		}
		return still
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%v: %s", err, why)
	}
	if len(moved) > 0 {
		t.Logf("keys that repair moved after their replicas were first equal (times): %v", moved)
	}
	lost, total := 0, 0
	for k := range sets.keys {
		key := fmt.Sprintf("set-%d", k)
		have := map[string]bool{}
		for _, e := range setUnion(final[key].values) {
			have[e] = true
		}
		for _, e := range sets.acked[key] {
			total++
			if !have[e] {
				lost++
				if lost <= 10 {
					t.Errorf("set %s lost acknowledged element %s", key, e)
				}
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged elements lost", lost, total)
	}
	for key, last := range regs.acked {
		got, err := registerCounter(final[key].values)
		if err != nil || got < last {
			t.Errorf("register %s: final %q, below the last acknowledged %d (%v)", key, final[key].values, last, err)
		}
	}
	if len(regs.acked) > 0 {
		t.Logf("%d acknowledged set elements all present; %d registers at or past their last acknowledged value", total, len(regs.acked))
	} else {
		t.Logf("%d acknowledged set elements all present", total)
	}
	return took
}
