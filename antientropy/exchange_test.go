package antientropy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"pgregory.net/rapid"
)

func equalDiffs(a, b []KeyDiff) bool {
	return slices.EqualFunc(a, b, func(x, y KeyDiff) bool {
		return string(x.Key) == string(y.Key) && x.Hash == y.Hash && x.Local == y.Local && x.Remote == y.Remote
	})
}

// The Merkle diff equals a brute-force diff of the two key -> digest maps,
// for any shape, any contents (keys absent on either side, equal maps,
// colliding key hashes) and either peer (direct or through the codec).
func TestCompareMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		pb := rapid.IntRange(0, 4).Draw(rt, "partitionBits")
		cfg := TreeConfig{
			PartitionBits: pb,
			Partition:     rapid.Uint32Range(0, 1<<pb-1).Draw(rt, "partition"),
			LeafBits:      rapid.IntRange(1, 7).Draw(rt, "leafBits"),
			FanoutBits:    rapid.IntRange(1, 4).Draw(rt, "fanoutBits"),
		}
		local, remote := newReplica(rt, cfg), newReplica(rt, cfg)
		if rapid.Bool().Draw(rt, "collidingHashes") {
			// Few distinct hashes: distinct keys share a hash and a bucket.
			spread := hashIn(cfg)
			collide := func(k []byte) uint64 { return spread([]byte{byte(xxhash.Sum64(k) % 3)}) }
			local.hashOf, remote.hashOf = collide, collide
		}
		n := rapid.IntRange(0, 60).Draw(rt, "keys")
		for i := range n {
			k := benchKey(i)
			set := rapid.Uint64Range(1, 3).Draw(rt, "set")
			switch rapid.IntRange(0, 4).Draw(rt, "state") {
			case 0: // only local
				local.put(k, set)
			case 1: // only remote
				remote.put(k, set)
			case 2: // different sets
				local.put(k, set)
				remote.put(k, set+10)
			default: // same set
				local.put(k, set)
				remote.put(k, set)
			}
		}
		var peer Peer = treePeer{remote}
		if rapid.Bool().Draw(rt, "wire") {
			peer = &wirePeer{asker: cfg, r: remote}
		}
		diff, err := Compare(context.Background(), cfg.Partition, local.tree, peer, local.list)
		if err != nil {
			rt.Fatalf("Compare: %v", err)
		}
		want := bruteDiff(local, remote)
		if !equalDiffs(diff.Keys, want) {
			rt.Fatalf("Compare found\n%+v\nbrute force\n%+v", diff.Keys, want)
		}
		buckets := map[uint32]bool{}
		for _, k := range want {
			buckets[cfg.Bucket(k.Hash)] = true
		}
		st := diff.Stats
		if st.LeavesDiffering != len(buckets) || st.LeavesWithoutKeyDiffs != 0 {
			rt.Fatalf("stats %+v, want %d differing leaves", st, len(buckets))
		}
		if len(want) == 0 && (st.Rounds != 1 || st.LevelsWalked != 0) {
			rt.Fatalf("equal replicas took %+v, want one round", st)
		}
	})
}

func TestCompareEqualAndEmpty(t *testing.T) {
	cfg := DefaultTreeConfig()
	full := func() *fakeReplica {
		r := newReplica(t, cfg)
		for i := range 1000 {
			r.put(benchKey(i), 1)
		}
		return r
	}
	tests := []struct {
		name          string
		local, remote *fakeReplica
		rounds        int // peer calls
		keys          int
	}{
		{"both empty", newReplica(t, cfg), newReplica(t, cfg), 1, 0},
		{"equal", full(), full(), 1, 0},
		// The remote root is 0: nothing below it is asked.
		{"remote empty", full(), newReplica(t, cfg), 1, 1000},
		// The local root is 0: only the remote is walked.
		{"local empty", newReplica(t, cfg), full(), 1 + cfg.Depth() + 1, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &wirePeer{asker: cfg, r: tc.remote}
			diff, err := Compare(t.Context(), cfg.Partition, tc.local.tree, w, tc.local.list)
			if err != nil {
				t.Fatal(err)
			}
			if diff.Stats.Rounds != tc.rounds || w.calls != tc.rounds {
				t.Errorf("rounds %d (peer saw %d), want %d", diff.Stats.Rounds, w.calls, tc.rounds)
			}
			if len(diff.Keys) != tc.keys {
				t.Errorf("%d differing keys, want %d", len(diff.Keys), tc.keys)
			}
			if !equalDiffs(diff.Keys, bruteDiff(tc.local, tc.remote)) {
				t.Errorf("diff differs from brute force")
			}
		})
	}
}

// countingPeer wraps a Peer, checks request sizes and can refuse key
// requests of more than tooMany buckets, as a peer over MaxKeysPerResponse.
type countingPeer struct {
	Peer
	tb            rapid.TB
	tooMany       int // refuse Keys for more buckets than this; 0: never
	hashCalls     int
	keyCalls      int
	maxReq        int
	failHashesAt  int // return an error on this Hashes call (1-based); 0: never
	failKeys      bool
	corruptHashes func([]uint64) []uint64
	corruptKeys   func(buckets []uint32, k []KeyDigest) []KeyDigest
}

func (c *countingPeer) Hashes(ctx context.Context, p uint32, l int, nodes []uint32) ([]uint64, error) {
	c.hashCalls++
	c.maxReq = max(c.maxReq, len(nodes))
	if len(nodes) > MaxNodesPerRequest {
		c.tb.Fatalf("Hashes with %d nodes", len(nodes))
	}
	if c.hashCalls == c.failHashesAt {
		return nil, errors.New("connection reset")
	}
	h, err := c.Peer.Hashes(ctx, p, l, nodes)
	if c.corruptHashes != nil {
		h = c.corruptHashes(h)
	}
	return h, err
}

func (c *countingPeer) Keys(ctx context.Context, p uint32, buckets []uint32) ([]KeyDigest, error) {
	c.keyCalls++
	c.maxReq = max(c.maxReq, len(buckets))
	if len(buckets) > MaxNodesPerRequest {
		c.tb.Fatalf("Keys with %d buckets", len(buckets))
	}
	if c.failKeys {
		return nil, errors.New("connection reset")
	}
	if c.tooMany > 0 && len(buckets) > c.tooMany {
		return nil, fmt.Errorf("peer says: %w", ErrTooManyKeys)
	}
	k, err := c.Peer.Keys(ctx, p, buckets)
	if c.corruptKeys != nil {
		k = c.corruptKeys(buckets, k)
	}
	return k, err
}

// A level wider than MaxNodesPerRequest is asked in several calls, and key
// lists over MaxKeysPerResponse are split until they fit.
func TestCompareSplitsLargeRequests(t *testing.T) {
	cfg := TreeConfig{LeafBits: 16, FanoutBits: 8} // 65536 leaves under one level
	local, remote := newReplica(t, cfg), newReplica(t, cfg)
	for i := range 40000 {
		local.put(benchKey(i), 1)
		remote.put(benchKey(i), 2) // every key differs
	}
	for i := 40000; i < 60000; i++ {
		remote.put(benchKey(i), 1) // keys the local side has no estimate for
	}
	peer := &countingPeer{Peer: &wirePeer{asker: cfg, r: remote}, tb: t}
	diff, err := Compare(t.Context(), 0, local.tree, peer, local.list)
	if err != nil {
		t.Fatal(err)
	}
	if !equalDiffs(diff.Keys, bruteDiff(local, remote)) {
		t.Fatalf("diff of %d keys differs from brute force", len(diff.Keys))
	}
	// Root, level 1 (256 nodes), level 2 (65536 leaves) in chunks.
	if want := 1 + 1 + (1<<16)/MaxNodesPerRequest; peer.hashCalls != want {
		t.Errorf("%d Hashes calls, want %d", peer.hashCalls, want)
	}
	if least := 60000 / MaxKeysPerResponse; peer.keyCalls < least {
		t.Errorf("%d Keys calls for 60000 keys, want at least %d", peer.keyCalls, least)
	}
	t.Logf("stats %+v, %d Keys calls", diff.Stats, peer.keyCalls)
}

func TestCompareHalvesOnTooManyKeys(t *testing.T) {
	cfg := TreeConfig{LeafBits: 6, FanoutBits: 2}
	local, remote := newReplica(t, cfg), newReplica(t, cfg)
	for i := range 300 {
		remote.put(benchKey(i), 1)
	}
	peer := &countingPeer{Peer: treePeer{remote}, tb: t, tooMany: 3}
	diff, err := Compare(t.Context(), 0, local.tree, peer, local.list)
	if err != nil {
		t.Fatal(err)
	}
	if !equalDiffs(diff.Keys, bruteDiff(local, remote)) {
		t.Errorf("diff differs from brute force")
	}
	// 64 buckets, refused above 3: 64 -> 32 -> 16 -> 8 -> 4 -> 2 (5 refusals),
	// then 32 calls of 2 buckets.
	if peer.keyCalls != 5+32 {
		t.Errorf("%d Keys calls, want 37", peer.keyCalls)
	}

	// A peer that refuses even one bucket.
	if _, err := Compare(t.Context(), 0, local.tree, refuseAll{treePeer{remote}}, local.list); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("a bucket over the limit: %v, want ErrTooManyKeys", err)
	}
}

type refuseAll struct{ Peer }

func (refuseAll) Keys(context.Context, uint32, []uint32) ([]KeyDigest, error) {
	return nil, ErrTooManyKeys
}

func TestCompareBadPeer(t *testing.T) {
	cfg := TreeConfig{PartitionBits: 2, Partition: 1, LeafBits: 6, FanoutBits: 3}
	local, remote := newReplica(t, cfg), newReplica(t, cfg)
	for i := range 50 {
		local.put(benchKey(i), 1)
		remote.put(benchKey(i), uint64(i%2)+1)
	}
	tests := []struct {
		name  string
		setup func(c *countingPeer)
		want  error
	}{
		{"short hashes", func(c *countingPeer) {
			c.corruptHashes = func(h []uint64) []uint64 { return h[:len(h)-1] }
		}, ErrBadResponse},
		{"hashes error", func(c *countingPeer) { c.failHashesAt = 2 }, nil},
		{"keys error", func(c *countingPeer) { c.failKeys = true }, nil},
		{"key outside buckets", func(c *countingPeer) {
			c.corruptKeys = func(buckets []uint32, k []KeyDigest) []KeyDigest {
				for b := range cfg.LevelWidth(cfg.Depth()) {
					if !slices.Contains(buckets, b) {
						lo, _ := cfg.BucketRange(b)
						return append(k, KeyDigest{Key: []byte("x"), Hash: lo, Digest: 1})
					}
				}
				t.Fatal("every bucket was asked")
				return nil
			}
		}, ErrBadResponse},
		{"key in another partition", func(c *countingPeer) {
			c.corruptKeys = func(_ []uint32, k []KeyDigest) []KeyDigest {
				x := k[0]
				x.Hash ^= 1 << 63
				return append(k, x)
			}
		}, ErrBadResponse},
		{"duplicate key", func(c *countingPeer) {
			c.corruptKeys = func(_ []uint32, k []KeyDigest) []KeyDigest { return append(k, k[0]) }
		}, ErrBadResponse},
		{"zero digest", func(c *countingPeer) {
			c.corruptKeys = func(_ []uint32, k []KeyDigest) []KeyDigest { k[0].Digest = 0; return k }
		}, ErrBadResponse},
		{"empty key", func(c *countingPeer) {
			c.corruptKeys = func(_ []uint32, k []KeyDigest) []KeyDigest { k[0].Key = nil; return k }
		}, ErrBadResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &countingPeer{Peer: treePeer{remote}, tb: t}
			tc.setup(c)
			_, err := Compare(t.Context(), cfg.Partition, local.tree, c, local.list)
			if err == nil {
				t.Fatal("Compare succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("wrong partition", func(t *testing.T) {
		if _, err := Compare(t.Context(), 2, local.tree, treePeer{remote}, local.list); !errors.Is(err, ErrShapeMismatch) {
			t.Errorf("error %v, want ErrShapeMismatch", err)
		}
	})
	t.Run("shape mismatch on the wire", func(t *testing.T) {
		other := cfg
		other.LeafBits = 5
		w := &wirePeer{asker: other, r: remote}
		if _, err := Compare(t.Context(), cfg.Partition, local.tree, w, local.list); !errors.Is(err, ErrShapeMismatch) {
			t.Errorf("error %v, want ErrShapeMismatch", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := &countingPeer{Peer: treePeer{remote}, tb: t}
		if _, err := Compare(ctx, cfg.Partition, local.tree, c, local.list); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if c.hashCalls+c.keyCalls != 0 {
			t.Errorf("peer called %d times after cancel", c.hashCalls+c.keyCalls)
		}
	})
	t.Run("local keys error", func(t *testing.T) {
		boom := errors.New("disk on fire")
		_, err := Compare(t.Context(), cfg.Partition, local.tree, treePeer{remote}, func([]uint32) ([]KeyDigest, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Errorf("error %v, want %v", err, boom)
		}
	})
}

// A tree that missed an update shows up as a differing leaf whose key lists
// agree.
func TestCompareReportsStaleTree(t *testing.T) {
	cfg := TreeConfig{LeafBits: 4, FanoutBits: 2}
	local, remote := newReplica(t, cfg), newReplica(t, cfg)
	for i := range 20 {
		local.put(benchKey(i), 1)
		remote.put(benchKey(i), 1)
	}
	_ = local.tree.Update(local.keys[benchKey(3)].Hash, 0, 12345) // tree out of step
	diff, err := Compare(t.Context(), 0, local.tree, treePeer{remote}, local.list)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff.Keys) != 0 || diff.Stats.LeavesDiffering != 1 || diff.Stats.LeavesWithoutKeyDiffs != 1 {
		t.Errorf("diff %d keys, stats %+v; want 0 keys, 1 stale leaf", len(diff.Keys), diff.Stats)
	}
}

// Bytes exchanged between two replicas of a partition of n = 100,000 keys,
// d of which differ, through the wire codec (requests and responses).
//
// Bound, with L = 16384 leaves, F = 16, key entries of e = keyLen + 21 = 37
// bytes ([key, hash, digest] in msgpack), hashes of at most 9 bytes and a
// node index of at most 1 byte on the wire (runs):
//
//	bytes(d) <= 64 + 10 * sum over levels l of min(width(l), d*F)
//	               + d * (1 + 2n/L) * e
//
// The first term is the levels walked (each differing node's children are
// fetched); the second is the keys of the differing buckets, each holding
// the diverged key plus n/L others on average (2n/L leaves room for the
// spread). At d = 0 only the two roots cross.
func TestExchangeBytes(t *testing.T) {
	const n = 100_000
	cfg := DefaultTreeConfig()
	cfg.Partition = 7
	bound := func(d int) int {
		f := 1 << cfg.FanoutBits
		levels := 0
		for l := 1; l <= cfg.Depth(); l++ {
			levels += min(int(cfg.LevelWidth(l)), d*f)
		}
		e := len(benchKey(0)) + 21
		keysPerBucket := 1 + 2*n/int(cfg.LevelWidth(cfg.Depth()))
		return 64 + 10*levels + d*keysPerBucket*e
	}
	prev := -1
	for _, d := range []int{0, 10, 1000} {
		local, remote := divergedPair(t, cfg, n, d)
		w := &wirePeer{asker: cfg, r: remote}
		diff, err := Compare(t.Context(), cfg.Partition, local.tree, w, local.list)
		if err != nil {
			t.Fatal(err)
		}
		if len(diff.Keys) != d {
			t.Fatalf("d=%d: found %d differing keys", d, len(diff.Keys))
		}
		t.Logf("n=%d d=%d: %d bytes (bound %d), %d rounds, %d hashes, %d remote keys",
			n, d, w.bytes, bound(d), diff.Stats.Rounds, diff.Stats.HashesFetched, diff.Stats.KeysRemote)
		if w.bytes > bound(d) {
			t.Errorf("d=%d: %d bytes, over the bound %d", d, w.bytes, bound(d))
		}
		if w.bytes <= prev {
			t.Errorf("d=%d: %d bytes, not more than with fewer differences (%d)", d, w.bytes, prev)
		}
		prev = w.bytes
		if d == 0 {
			if w.bytes >= 100 || diff.Stats.Rounds != 1 {
				t.Errorf("d=0: %d bytes in %d rounds, want only the roots (< 100 bytes, 1 round)", w.bytes, diff.Stats.Rounds)
			}
		}
	}
}
