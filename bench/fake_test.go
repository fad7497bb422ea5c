package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// vv is a version vector: node -> highest counter seen. As an Observed it
// covers a dot when its entry reaches the dot's counter (epochs are all 1
// in the fakes).
type vv map[string]uint64

func (v vv) Covers(id WriteID) bool { return v[id.Node] >= id.Counter }

func (v vv) clone() vv {
	c := make(vv, len(v))
	for k, n := range v {
		c[k] = n
	}
	return c
}

// dominates reports whether v has seen everything o has.
func (v vv) dominates(o vv) bool {
	for k, n := range o {
		if v[k] < n {
			return false
		}
	}
	return true
}

func (v vv) encode() string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
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

// fakeStore is an in-memory store behind the Client seam. With staleP = 0
// and dropP = 0 it is linearizable: one version vector per key, updated
// under a lock, every read sees every acknowledged write. staleP makes a
// read return one of the last few versions instead of the newest; dropP
// acknowledges a write without applying it (a lost write).
type fakeStore struct {
	nodes  int
	staleP float64
	dropP  float64
	// stall, when set, is called before every request with its sequence
	// number and may sleep (a simulated pause of the whole store).
	stall func(seq int64)

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
	cur      vv
	old      []vv // most recent first, at most 4
	siblings int
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

func (f *fakeStore) Get(ctx context.Context, coord int, key string, q Quorum, allR bool) (ReadResult, error) {
	if f.stall != nil {
		f.stall(f.next())
	}
	if err := ctx.Err(); err != nil {
		return ReadResult{}, err
	}
	if coord < 0 || coord >= f.nodes {
		return ReadResult{}, fmt.Errorf("bad coordinator %d", coord)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if allR {
		f.allR++
	}
	k := f.keys[key]
	if k == nil {
		return ReadResult{Context: ""}, nil
	}
	v := k.cur
	if !allR && len(k.old) > 0 && f.rng.Float64() < f.staleP {
		v = k.old[f.rng.IntN(len(k.old))]
	}
	return ReadResult{Found: true, Siblings: k.siblings, Context: v.encode(), Observed: v.clone()}, nil
}

func (f *fakeStore) Put(ctx context.Context, coord int, key string, value []byte, context string, q Quorum) (WriteResult, error) {
	if f.stall != nil {
		f.stall(f.next())
	}
	if err := ctx.Err(); err != nil {
		return WriteResult{}, err
	}
	if coord < 0 || coord >= f.nodes {
		return WriteResult{}, fmt.Errorf("bad coordinator %d", coord)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	k := f.keys[key]
	if k == nil {
		k = &fakeKey{cur: vv{}}
		f.keys[key] = k
	}
	node := "n" + strconv.Itoa(coord)
	// Counters are per key and node, as dots are in a DVV set.
	id := WriteID{Node: node, Epoch: 1, Counter: k.cur[node] + 1}
	if f.dropP > 0 && f.rng.Float64() < f.dropP {
		// Acknowledged, never applied: a dot no replica will ever hold, so
		// no later context covers it.
		f.dropped = append(f.dropped, key)
		return WriteResult{ID: WriteID{Node: "lost-" + node, Epoch: 1, Counter: uint64(len(f.dropped))}, Context: context}, nil
	}
	if decodeVV(context).dominates(k.cur) {
		k.siblings = 1
	} else {
		k.siblings = min(k.siblings+1, 100)
	}
	k.old = append([]vv{k.cur}, k.old...)
	if len(k.old) > 4 {
		k.old = k.old[:4]
	}
	next := k.cur.clone()
	next[node] = id.Counter
	k.cur = next
	return WriteResult{ID: id, Context: next.encode()}, nil
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
