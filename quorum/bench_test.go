package quorum

import (
	"context"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// nopReplicas answers every call at once with fixed results, so that the
// benchmarks below measure the coordinator alone: planning, the goroutine
// and channel per replica call, tracking, and the drain.
type nopReplicas struct {
	minted Minted
	set    vclock.Set
}

func (r *nopReplicas) Mint(context.Context, ring.Target, key, vclock.Vector, vclock.Value, bool) (Minted, error) {
	return r.minted, nil
}

func (r *nopReplicas) Merge(_ context.Context, _ ring.Target, _ key, _ []byte, durable bool) (bool, error) {
	return durable, nil
}

func (r *nopReplicas) Read(context.Context, ring.Target, key) (vclock.Set, error) { return r.set, nil }

func (r *nopReplicas) Forward(context.Context, ring.NodeID, PutRequest) (*WriteResult, error) {
	return &WriteResult{}, nil
}

// benchCases are the cluster shapes of the coordinator benchmarks: members,
// dead members (by preference index) and what the write plan does then.
var benchCases = []struct {
	name    string
	members int
	dead    []int
}{
	{"all-alive", 5, nil},              // three primaries
	{"one-dead-fallback", 5, []int{1}}, // a fallback stands in
	{"one-dead-no-spare", 3, []int{2}}, // a hint of last resort
}

func newBenchCoord(b *testing.B, members int, dead []int) *Coordinator {
	r, pref := testRing(b, members)
	m := &fakeMembership{r: r, dead: map[ring.NodeID]bool{}}
	for _, i := range dead {
		m.dead[pref[i]] = true
	}
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "a", Epoch: 1}, vclock.Value{Data: make([]byte, 100)})
	enc, err := s.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	reps := &nopReplicas{minted: Minted{Set: s, Encoded: enc, Dot: s.Siblings[0].Dot}, set: s}
	c, err := New(Config{Self: pref[0], Membership: m, Replicas: reps, Defaults: Params{N: 3, R: 2, W: 2, Timeout: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPut measures one write through the coordinator with replicas
// that answer at once (N=3, W=2).
func BenchmarkPut(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			c := newBenchCoord(b, bc.members, bc.dead)
			defer c.Close()
			req := PutRequest{Key: []byte("user:42"), Value: vclock.Value{Data: make([]byte, 100)}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Put(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGet measures one read through the coordinator (N=3, R=2) with
// replicas that answer at once and agree (no repair).
func BenchmarkGet(b *testing.B) {
	c := newBenchCoord(b, 5, nil)
	defer c.Close()
	req := GetRequest{Key: []byte("user:42")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// checkingNop is nopReplicas as node's replicas are for an overwrite: it
// supersedes locally and answers checked merges at once, clean.
type checkingNop struct{ *nopReplicas }

func (r checkingNop) MintSupersedingLocal(context.Context, ring.Target, key, vclock.Vector, vclock.Value, bool) (Minted, error) {
	return r.minted, nil
}

func (checkingNop) MergeCheckAsync(_ context.Context, t ring.Target, _ key, _ []byte, durable bool, done MergeCheckDone) {
	done.MergeChecked(t, MergeCheck{Synced: durable, Clean: true}, nil)
}

func (checkingNop) PeerTooOld(error) bool { return false }

// BenchmarkOverwrite measures one overwrite (a RESP SET) through the
// coordinator, its checked write in one round, with replicas that answer
// at once and clean (N=3, R=2, W=2).
func BenchmarkOverwrite(b *testing.B) {
	c := newBenchCoord(b, 5, nil)
	defer c.Close()
	c.cfg.Replicas = checkingNop{c.cfg.Replicas.(*nopReplicas)}
	req := PutRequest{Key: []byte("user:42"), Value: vclock.Value{Data: make([]byte, 100)}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Overwrite(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
