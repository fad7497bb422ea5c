package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Wait blocks until background replica calls started so far have finished:
// the tests observe read repair and late acks deterministically.
func (c *Coordinator) Wait() { c.wg.Wait() }

// key is the key type Replicas methods take (one line to change if it moves).
type key = ring.Key

// testRing returns a ring of m members with one partition, so that every key
// shares one preference list, and that list: pref[0..n-1] are the primaries
// at replication factor n, the rest fallbacks in order.
func testRing(t testing.TB, m int) (*ring.Ring, []ring.NodeID) {
	t.Helper()
	members := make([]ring.Member, m)
	for i := range members {
		members[i] = ring.Member{ID: ring.NodeID(fmt.Sprintf("node-%c", 'a'+i))}
	}
	r, err := ring.New(ring.Config{Partitions: 1, Tokens: 8}, members)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.Preference(0)
}

// fakeMembership is a ring and a set of dead members, changeable by tests.
type fakeMembership struct {
	r    *ring.Ring
	mu   sync.Mutex
	dead map[ring.NodeID]bool
}

var _ Membership = (*fakeMembership)(nil)

func (m *fakeMembership) Ring() *ring.Ring { return m.r }

func (m *fakeMembership) Alive(id ring.NodeID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.dead[id]
}

func (m *fakeMembership) kill(ids ...ring.NodeID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.dead[id] = true
	}
}

// behaviour is how one member's replica answers.
type behaviour struct {
	delay  time.Duration // before answering (bounded by ctx)
	err    error         // answer this error after delay
	hang   bool          // never answer before ctx ends, then answer ctx.Err()
	noSync bool          // cannot fsync: reports every merge unsynced
	deaf   bool          // delay is not cut short by ctx (a replica that ignores deadlines)
}

// call is one recorded replica call.
type call struct {
	method     string      // "mint", "supersede", "merge", "read" or "forward"
	target     ring.Target // for forward, Node only
	set        []byte      // merged bytes
	durable    bool        // durability asked for
	hops       int         // forward: the request's hop count
	start, end time.Time   // end is zero while the call runs
	err        error
}

// fakeReplicas is an in-memory replica set with real behaviour: each
// member keeps its sets and its hints, merges with vclock.Sync and mints
// with vclock.Update. Behaviours delay, fail or hang calls per member, and
// every call is recorded.
type fakeReplicas struct {
	self ring.NodeID

	mu     sync.Mutex
	behave map[ring.NodeID]behaviour
	sets   map[ring.NodeID]vclock.Set
	hints  map[[2]ring.NodeID]vclock.Set // (holder, primary) → hint
	calls  []*call
	// forward answers Forward; nil answers an error.
	forward func(node ring.NodeID, req PutRequest) (*WriteResult, error)
}

var _ Replicas = (*fakeReplicas)(nil)

func newFakeReplicas(self ring.NodeID) *fakeReplicas {
	return &fakeReplicas{self: self, behave: map[ring.NodeID]behaviour{},
		sets: map[ring.NodeID]vclock.Set{}, hints: map[[2]ring.NodeID]vclock.Set{}}
}

func (f *fakeReplicas) set(id ring.NodeID, b behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behave[id] = b
}

// begin records a call to node and returns its behaviour.
func (f *fakeReplicas) begin(c *call, node ring.NodeID) behaviour {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.start = time.Now()
	f.calls = append(f.calls, c)
	return f.behave[node]
}

// wait plays b out: its delay or hang, bounded by ctx, then its error.
func wait(ctx context.Context, b behaviour) error {
	if b.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if b.deaf {
		time.Sleep(b.delay)
		return b.err
	}
	if b.delay > 0 {
		tm := time.NewTimer(b.delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.err
}

func (f *fakeReplicas) end(c *call, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.end, c.err = time.Now(), err
}

func (f *fakeReplicas) Mint(ctx context.Context, t ring.Target, k key, vctx vclock.Vector, v vclock.Value, durable bool) (Minted, error) {
	return f.mint(ctx, "mint", t, vctx, v, durable)
}

func (f *fakeReplicas) mint(ctx context.Context, method string, t ring.Target, vctx vclock.Vector, v vclock.Value, durable bool) (Minted, error) {
	c := &call{method: method, target: t, durable: durable}
	b := f.begin(c, t.Node)
	err := wait(ctx, b)
	if err == nil && t.Node != f.self {
		err = fmt.Errorf("mint on %s, not on the coordinator %s", t.Node, f.self)
	}
	defer func() { f.end(c, err) }()
	if err != nil {
		return Minted{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.sets[t.Node]
	if t.HintFor != "" {
		cur = f.hints[[2]ring.NodeID{t.Node, t.HintFor}]
	}
	if method == "supersede" {
		vctx = vctx.Merge(cur.Context)
	}
	s, dot := vclock.Update(cur, vctx, vclock.Actor{Node: string(t.Node), Epoch: 1}, v)
	enc, err := s.MarshalBinary()
	if err != nil {
		return Minted{}, err
	}
	if t.HintFor != "" {
		f.hints[[2]ring.NodeID{t.Node, t.HintFor}] = s
	} else {
		f.sets[t.Node] = s
	}
	return Minted{Set: s, Encoded: enc, Dot: dot, Durable: durable && !b.noSync}, nil
}

func (f *fakeReplicas) Merge(ctx context.Context, t ring.Target, k key, set []byte, durable bool) (bool, error) {
	c := &call{method: "merge", target: t, set: slices.Clone(set), durable: durable}
	b := f.begin(c, t.Node)
	err := wait(ctx, b)
	defer func() { f.end(c, err) }()
	if err != nil {
		return false, err
	}
	s, err := vclock.DecodeSet(set)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.HintFor != "" {
		h := [2]ring.NodeID{t.Node, t.HintFor}
		f.hints[h] = vclock.Sync(f.hints[h], s)
	} else {
		f.sets[t.Node] = vclock.Sync(f.sets[t.Node], s)
	}
	return durable && !b.noSync, nil
}

func (f *fakeReplicas) Read(ctx context.Context, t ring.Target, k key) (vclock.Set, error) {
	c := &call{method: "read", target: t}
	b := f.begin(c, t.Node)
	err := wait(ctx, b)
	defer func() { f.end(c, err) }()
	if err != nil {
		return vclock.Set{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.HintFor != "" {
		return f.hints[[2]ring.NodeID{t.Node, t.HintFor}], nil
	}
	return f.sets[t.Node], nil
}

func (f *fakeReplicas) Forward(ctx context.Context, node ring.NodeID, req PutRequest) (*WriteResult, error) {
	c := &call{method: "forward", target: ring.Target{Node: node}, hops: req.Hops}
	b := f.begin(c, node)
	err := wait(ctx, b)
	defer func() { f.end(c, err) }()
	if err != nil {
		return nil, err
	}
	if f.forward == nil {
		err = errors.New("no forward handler")
		return nil, err
	}
	var res *WriteResult
	res, err = f.forward(node, req)
	return res, err
}

// superseding adds LocalSuperseder to a fakeReplicas.
type superseding struct{ *fakeReplicas }

var _ LocalSuperseder = superseding{}

func (s superseding) MintSupersedingLocal(ctx context.Context, t ring.Target, k key, vctx vclock.Vector, v vclock.Value, durable bool) (Minted, error) {
	return s.mint(ctx, "supersede", t, vctx, v, durable)
}

// recorded returns copies of the calls so far, in the order they started,
// keeping those whose method is among methods (all when none is given).
func (f *fakeReplicas) recorded(methods ...string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if len(methods) == 0 || slices.Contains(methods, c.method) {
			out = append(out, *c)
		}
	}
	return out
}

// setOf returns member id's replica of the key.
func (f *fakeReplicas) setOf(id ring.NodeID) vclock.Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets[id]
}

// hintOf returns the hint holder keeps for primary.
func (f *fakeReplicas) hintOf(holder, primary ring.NodeID) vclock.Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hints[[2]ring.NodeID{holder, primary}]
}

// testCoord is a Coordinator over a fake replica set of m members, self
// being pref[selfIdx].
type testCoord struct {
	*Coordinator
	pref []ring.NodeID
	self ring.NodeID
	m    *fakeMembership
	reps *fakeReplicas
}

// newTestCoord is a coordinator over m fake replicas, the selfIdx-th of
// the preference list being this node; it is closed when the test ends.
func newTestCoord(t testing.TB, m, selfIdx int, defaults Params, wrap func(*fakeReplicas) Replicas) *testCoord {
	t.Helper()
	r, pref := testRing(t, m)
	tc := &testCoord{pref: pref, self: pref[selfIdx], m: &fakeMembership{r: r, dead: map[ring.NodeID]bool{}}}
	tc.reps = newFakeReplicas(tc.self)
	var reps Replicas = tc.reps
	switch {
	case wrap != nil:
		reps = wrap(tc.reps)
	case asyncFakes != nil:
		reps = asyncReplicas{tc.reps, asyncFakes}
	}
	if defaults.Timeout == 0 {
		defaults.Timeout = time.Second
	}
	c, err := New(Config{Self: tc.self, Membership: tc.m, Replicas: reps, Defaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	tc.Coordinator = c
	t.Cleanup(c.Close)
	return tc
}

func (tc *testCoord) put(t testing.TB, val string, p Params) (*WriteResult, error) {
	t.Helper()
	return tc.Put(context.Background(), PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte(val)}, Params: p})
}
