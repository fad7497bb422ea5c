package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// vv is a version vector: node -> highest counter seen.
type vv map[string]uint64

func (v vv) covers(node string, counter uint64) bool { return v[node] >= counter }

func (v vv) clone() vv {
	c := make(vv, len(v))
	for k, n := range v {
		c[k] = n
	}
	return c
}

func (v vv) merge(o vv) vv {
	c := v.clone()
	for k, n := range o {
		c[k] = max(c[k], n)
	}
	return c
}

func (v vv) encode() string {
	keys := slices.Sorted(maps.Keys(v))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + ":" + strconv.FormatUint(v[k], 10))
	}
	return b.String()
}

func decodeVV(s string) vv {
	v := vv{}
	if s == "" {
		return v
	}
	for _, f := range strings.Split(s, ",") {
		k, n, _ := strings.Cut(f, ":")
		c, _ := strconv.ParseUint(n, 10, 64)
		v[k] = c
	}
	return v
}

// fakeSib is one stored value and its dot.
type fakeSib struct {
	node    string
	counter uint64
	value   []byte
}

// fakeState is a key's sibling set under a version vector, the way a DVV
// set works: a write drops the siblings its context covers.
type fakeState struct {
	clock vv
	sibs  []fakeSib
}

func (st fakeState) values() [][]byte {
	out := make([][]byte, len(st.sibs))
	for i, sb := range st.sibs {
		out[i] = sb.value
	}
	return out
}

// fakeStore is an in-memory store behind the Client seam. With staleP = 0,
// dropP = 0 and no bug it is linearizable: one sibling set per key,
// updated under a lock, every read sees every acknowledged write. staleP
// makes a read return one of the last few states instead of the newest;
// dropP acknowledges a write without applying it (a lost write);
// keepNewest is the planted merge bug: a write keeps only itself, dropping
// the concurrent siblings it did not see, while the clock still merges
// their dots (the bug the old dot-covered checker missed); keepCovered
// is the planted resurrection bug: a write keeps the siblings its context
// covered, next to itself.
type fakeStore struct {
	nodes       int
	staleP      float64
	dropP       float64
	keepNewest  bool
	keepCovered bool
	// stall, when set, is called before every request with its sequence
	// number and may sleep (a simulated pause of the whole store).
	stall func(seq int64)
	// meet, when set, makes updates of a key that exists meet in pairs
	// before they apply (see meeting).
	meet *meeting

	mu      sync.Mutex
	rng     *rand.Rand
	seq     int64
	keys    map[string]*fakeKey
	gets    int64
	puts    int64
	allR    int64
	dropped []string // keys of acknowledged writes that were dropped
}

type fakeKey struct {
	cur fakeState
	old []fakeState // most recent first, at most 4
}

func newFake(nodes int) *fakeStore {
	return &fakeStore{nodes: nodes, rng: rand.New(rand.NewPCG(7, 7)), keys: map[string]*fakeKey{}}
}

func (f *fakeStore) Coordinators() int { return f.nodes }

func (f *fakeStore) next() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return f.seq
}

// enter starts a request: it stalls if the test asks, and refuses a
// request whose context ended or whose coordinator does not exist.
func (f *fakeStore) enter(ctx context.Context, coord int) error {
	if f.stall != nil {
		f.stall(f.next())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if coord < 0 || coord >= f.nodes {
		return fmt.Errorf("bad coordinator %d", coord)
	}
	return nil
}

func (f *fakeStore) Get(ctx context.Context, coord int, key string, q Quorum, allR bool) (ReadResult, error) {
	if err := f.enter(ctx, coord); err != nil {
		return ReadResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if allR {
		f.allR++
	}
	k := f.keys[key]
	if k == nil {
		return ReadResult{}, nil
	}
	st := k.cur
	if !allR && len(k.old) > 0 && f.rng.Float64() < f.staleP {
		st = k.old[f.rng.IntN(len(k.old))]
	}
	return ReadResult{Found: len(st.sibs) > 0, Values: st.values(), Context: st.clock.encode()}, nil
}

func (f *fakeStore) Put(ctx context.Context, coord int, key string, value []byte, context string, q Quorum) (WriteResult, error) {
	if err := f.enter(ctx, coord); err != nil {
		return WriteResult{}, err
	}
	if f.meet != nil {
		f.mu.Lock()
		exists := f.keys[key] != nil
		f.mu.Unlock()
		if exists {
			if err := f.meet.wait(ctx, key); err != nil {
				return WriteResult{}, err
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	k := f.keys[key]
	if k == nil {
		k = &fakeKey{cur: fakeState{clock: vv{}}}
		f.keys[key] = k
	}
	node := "n" + strconv.Itoa(coord)
	wctx := decodeVV(context)
	sib := fakeSib{node: node, counter: k.cur.clock[node] + 1, value: bytes.Clone(value)}
	next := fakeState{clock: k.cur.clock.merge(wctx)}
	next.clock[node] = sib.counter
	for _, sb := range k.cur.sibs {
		if (!wctx.covers(sb.node, sb.counter) || f.keepCovered) && !f.keepNewest {
			next.sibs = append(next.sibs, sb)
		}
	}
	next.sibs = append(next.sibs, sib)
	if f.dropP > 0 && f.rng.Float64() < f.dropP {
		// Acknowledged, never applied: the answer shows the write, the
		// store forgets it.
		f.dropped = append(f.dropped, key)
		return WriteResult{Context: next.clock.encode(), Values: next.values()}, nil
	}
	k.old = append([]fakeState{k.cur}, k.old...)
	if len(k.old) > 4 {
		k.old = k.old[:4]
	}
	k.cur = next
	return WriteResult{Context: next.clock.encode(), Values: next.values()}, nil
}

// meeting pairs up updates of one key: the first of a pair waits (until
// its request's deadline) for a second update of the same key, then both
// go on together. Neither can have seen the other's answer, so each pair
// is two concurrent writes however the scheduler runs the workers: the
// condition under which a store that keeps only the newest sibling drops
// one. With two workers each pair holds one write of each, so the last
// two writes of a run meet too, and the one applied first, dropped by
// such a store, is seen by no later write: a lost write in every run.
type meeting struct {
	mu      sync.Mutex
	met     int
	waiting map[string]chan struct{}
}

func newMeeting() *meeting { return &meeting{waiting: map[string]chan struct{}{}} }

func (m *meeting) wait(ctx context.Context, key string) error {
	m.mu.Lock()
	if first, ok := m.waiting[key]; ok {
		delete(m.waiting, key)
		m.met++
		close(first)
		m.mu.Unlock()
		return nil
	}
	here := make(chan struct{})
	m.waiting[key] = here
	m.mu.Unlock()
	select {
	case <-here:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.waiting[key] != here {
			return nil // met after all, as the deadline passed
		}
		delete(m.waiting, key)
		return ctx.Err()
	}
}

// pairs returns how many pairs met.
func (m *meeting) pairs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.met
}

// recordingFaults implements Faults and records every call.
type recordingFaults struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error // "kill:1" -> error
}

func (r *recordingFaults) do(action string, i int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := action + ":" + strconv.Itoa(i)
	r.calls = append(r.calls, k)
	return r.fail[k]
}

func (r *recordingFaults) Kill(i int) error    { return r.do("kill", i) }
func (r *recordingFaults) Restart(i int) error { return r.do("restart", i) }
func (r *recordingFaults) Pause(i int) error   { return r.do("pause", i) }
func (r *recordingFaults) Resume(i int) error  { return r.do("resume", i) }

func (r *recordingFaults) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// testConfig is a small, fast, deterministic configuration for the fakes.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Keys = 100
	cfg.Concurrency = 4
	cfg.Duration = 0
	cfg.Ops = 2000
	cfg.Settle = 0
	cfg.Timeout = 5 * time.Second
	return cfg
}
