package antientropy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Peer is the remote side of an exchange, usually an RPC client. Methods may
// block on the network and must honour ctx. Slices passed in must not be
// retained; slices returned belong to the caller.
type Peer interface {
	// Hashes returns the hashes of the given nodes at level l of the peer's
	// tree of partition p (level 0 = root), in the order asked.
	Hashes(ctx context.Context, p uint32, level int, nodes []uint32) ([]uint64, error)
	// Keys returns the keys and per-key digests the peer holds in the given
	// leaf buckets, in any order. If they would not fit in one response it
	// returns an error satisfying errors.Is(err, ErrTooManyKeys) (see
	// KeysResponse.TooMany), and Compare asks again for fewer buckets.
	Keys(ctx context.Context, p uint32, buckets []uint32) ([]KeyDigest, error)
}

// LocalTree is the local side of an exchange. *Tree implements it; a node
// that guards its trees with a lock wraps them so that each call takes the
// lock: Compare holds nothing between calls, so writes go on during an
// exchange.
type LocalTree interface {
	// Config returns the tree's shape.
	Config() TreeConfig
	// Hashes is Tree.Hashes.
	Hashes(level int, nodes []uint32) ([]uint64, error)
}

var _ LocalTree = (*Tree)(nil)

// KeyDigest is one key of a partition as an exchange sees it.
type KeyDigest struct {
	Key    []byte
	Hash   uint64 // the key's hash (ring placement)
	Digest uint64 // Digest(Hash, Key, set digest); never 0 for a present key
}

// KeyDiff is one key whose digests differ between the two replicas.
type KeyDiff struct {
	Key    []byte
	Hash   uint64
	Local  uint64 // local digest; 0 = absent locally
	Remote uint64 // remote digest; 0 = absent on the peer
}

// Diff is the result of Compare.
type Diff struct {
	// Keys are the differing keys, sorted by (Hash, Key).
	Keys  []KeyDiff
	Stats ExchangeStats
}

// ExchangeStats describes the work of one Compare.
type ExchangeStats struct {
	// Rounds is the number of calls made to the Peer (round trips).
	Rounds int
	// HashesFetched is the number of node hashes received from the peer.
	HashesFetched int
	// NodesCompared is the number of nodes whose hashes were compared,
	// including those known equal to 0 on one side without asking.
	NodesCompared int
	// LevelsWalked is the deepest level reached (0: the roots were equal).
	LevelsWalked int
	// LeavesDiffering is the number of buckets whose hashes differed.
	LeavesDiffering int
	// KeysLocal and KeysRemote are the keys listed for the differing
	// buckets on each side.
	KeysLocal, KeysRemote int
	// LeavesWithoutKeyDiffs counts differing buckets whose key lists agreed
	// after all: the tree was out of step with the key lists on one side
	// (writes racing the exchange, or a tree that missed an update). A
	// steady non-zero value across exchanges means a tree needs rebuilding.
	LeavesWithoutKeyDiffs int
}

// frontierNode is a node of the frontier of an exchange: its hashes differ.
// A zero hash on one side means that side's subtree is empty, so its
// descendants are known to be 0 there without asking.
type frontierNode struct {
	i                  uint32
	localHash, remHash uint64
}

// Compare finds the keys that differ between the local tree of partition p
// and the peer's. It compares the roots (one round trip; if they are equal it
// stops there), then level by level fetches the children of the nodes that
// differ, with all of a level in as few calls as MaxNodesPerRequest allows,
// and finally lists the keys of the differing buckets on both sides:
// localKeys for the local side (it must return the keys of exactly those
// buckets) and remote.Keys for the peer. A side whose subtree hash is 0 is
// not asked about it.
//
// Compare does not merge anything: the caller fetches each differing key's
// sibling sets, merges them and writes the result where it was behind.
// Writes during the exchange may or may not show up in the diff; they are
// safe either way because merging is idempotent, and the next exchange sees
// what this one missed.
//
// Compare is deterministic for given answers, starts no goroutines and makes
// one call at a time. On error it returns no keys and the statistics so far
// (the rounds spent, for instance).
func Compare(ctx context.Context, p uint32, local LocalTree, remote Peer, localKeys func(buckets []uint32) ([]KeyDigest, error)) (Diff, error) {
	var d Diff
	cfg := local.Config()
	if err := cfg.Validate(); err != nil {
		return d, fmt.Errorf("compare: local tree: %w", err)
	}
	if cfg.Partition != p {
		return d, fmt.Errorf("compare partition %d with tree of partition %d: %w", p, cfg.Partition, ErrShapeMismatch)
	}
	depth := cfg.Depth()

	// Level 0: the roots.
	frontier, err := compareLevel(ctx, &d.Stats, p, local, remote, 0, nil, cfg)
	if err != nil {
		return d, err
	}
	for l := 1; l <= depth && len(frontier) > 0; l++ {
		d.Stats.LevelsWalked = l
		frontier, err = compareLevel(ctx, &d.Stats, p, local, remote, l, frontier, cfg)
		if err != nil {
			return d, err
		}
	}
	if len(frontier) == 0 {
		return d, nil
	}
	d.Stats.LeavesDiffering = len(frontier)

	var lb, rb []uint32
	for _, n := range frontier {
		if n.localHash != 0 {
			lb = append(lb, n.i)
		}
		if n.remHash != 0 {
			rb = append(rb, n.i)
		}
	}
	var lk, rk []KeyDigest
	if len(lb) > 0 {
		if lk, err = localKeys(lb); err != nil {
			return d, fmt.Errorf("local keys: %w", err)
		}
		if err := sortKeys(cfg, lb, lk); err != nil {
			return d, fmt.Errorf("local keys: %w", err)
		}
	}
	if len(rb) > 0 {
		est := make(map[uint32]int, len(lb))
		for _, k := range lk {
			est[cfg.Bucket(k.Hash)]++
		}
		if rk, err = remoteKeys(ctx, &d.Stats, p, remote, rb, est); err != nil {
			return d, err
		}
		if err := sortKeys(cfg, rb, rk); err != nil {
			return d, fmt.Errorf("keys from peer: %w", err)
		}
	}
	d.Stats.KeysLocal, d.Stats.KeysRemote = len(lk), len(rk)
	d.Keys = diffKeys(lk, rk)

	// Count differing buckets that produced no key difference.
	withDiff := make(map[uint32]bool, len(d.Keys))
	for _, k := range d.Keys {
		withDiff[cfg.Bucket(k.Hash)] = true
	}
	d.Stats.LeavesWithoutKeyDiffs = len(frontier) - len(withDiff)
	return d, nil
}

// compareLevel fetches level l's hashes of the children of parents (for
// l == 0: the root itself) on both sides and returns those that differ.
func compareLevel(ctx context.Context, st *ExchangeStats, p uint32, local LocalTree, remote Peer, l int, parents []frontierNode, cfg TreeConfig) ([]frontierNode, error) {
	// Candidates at level l, with the sides that must be asked.
	var cand []frontierNode
	var askLocal, askRemote []uint32
	if l == 0 {
		cand = []frontierNode{{}}
		askLocal, askRemote = []uint32{0}, []uint32{0}
	} else {
		for _, par := range parents {
			first, n := cfg.Children(l-1, par.i)
			for c := range n {
				i := first + c
				cand = append(cand, frontierNode{i: i})
				if par.localHash != 0 {
					askLocal = append(askLocal, i)
				}
				if par.remHash != 0 {
					askRemote = append(askRemote, i)
				}
			}
		}
	}
	var lh []uint64
	if len(askLocal) > 0 {
		var err error
		if lh, err = local.Hashes(l, askLocal); err != nil {
			return nil, fmt.Errorf("local hashes at level %d: %w", l, err)
		}
		if len(lh) != len(askLocal) {
			return nil, fmt.Errorf("local hashes at level %d: %d for %d nodes: %w", l, len(lh), len(askLocal), ErrBadResponse)
		}
	}
	rh := make([]uint64, 0, len(askRemote))
	for chunk := range slices.Chunk(askRemote, MaxNodesPerRequest) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st.Rounds++
		h, err := remote.Hashes(ctx, p, l, chunk)
		if err != nil {
			return nil, fmt.Errorf("peer hashes at level %d: %w", l, err)
		}
		if len(h) != len(chunk) {
			return nil, fmt.Errorf("peer hashes at level %d: %d for %d nodes: %w", l, len(h), len(chunk), ErrBadResponse)
		}
		st.HashesFetched += len(h)
		rh = append(rh, h...)
	}
	// askLocal and askRemote are subsequences of cand in the same order:
	// merge them in.
	var li, ri int
	out := cand[:0]
	for _, c := range cand {
		if li < len(askLocal) && askLocal[li] == c.i {
			c.localHash = lh[li]
			li++
		}
		if ri < len(askRemote) && askRemote[ri] == c.i {
			c.remHash = rh[ri]
			ri++
		}
		st.NodesCompared++
		if c.localHash != c.remHash {
			out = append(out, c)
		}
	}
	return out, nil
}

// remoteKeys lists the peer's keys of buckets in as few calls as the limits
// allow. A batch is cut before MaxNodesPerRequest buckets, and before its
// expected keys (each bucket's local key count, at least 1, from est) would
// pass 7/8 of MaxKeysPerResponse. If the peer still has too many, the batch
// is halved, and later batches keep the smaller size.
func remoteKeys(ctx context.Context, st *ExchangeStats, p uint32, remote Peer, buckets []uint32, est map[uint32]int) ([]KeyDigest, error) {
	const budget = MaxKeysPerResponse / 8 * 7
	var out []KeyDigest
	limit := MaxNodesPerRequest
	for len(buckets) > 0 {
		n, sum := 0, 0
		for n < len(buckets) && n < limit {
			e := max(est[buckets[n]], 1)
			if n > 0 && sum+e > budget {
				break
			}
			sum += e
			n++
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		st.Rounds++
		k, err := remote.Keys(ctx, p, buckets[:n])
		if errors.Is(err, ErrTooManyKeys) && n > 1 {
			limit = n / 2
			continue
		}
		if err != nil {
			return out, fmt.Errorf("peer keys of %d buckets: %w", n, err)
		}
		out = append(out, k...)
		buckets = buckets[n:]
	}
	return out, nil
}

// sortKeys sorts keys by (Hash, Key) and checks that they lie in the sorted
// buckets, are listed once, have a valid length and a present digest.
func sortKeys(cfg TreeConfig, buckets []uint32, keys []KeyDigest) error {
	for _, k := range keys {
		if _, ok := slices.BinarySearch(buckets, cfg.Bucket(k.Hash)); !ok || !cfg.Contains(k.Hash) {
			return fmt.Errorf("key hash %#x outside the requested buckets: %w", k.Hash, ErrBadResponse)
		}
		if k.Digest == 0 {
			return fmt.Errorf("key %q with digest 0: %w", k.Key, ErrBadResponse)
		}
		if len(k.Key) == 0 || len(k.Key) > MaxKeyLen {
			return fmt.Errorf("key of %d bytes: %w", len(k.Key), ErrBadResponse)
		}
	}
	slices.SortFunc(keys, compareKeyDigest)
	for i := 1; i < len(keys); i++ {
		if compareKeyDigest(keys[i-1], keys[i]) == 0 {
			return fmt.Errorf("key %q listed twice: %w", keys[i].Key, ErrBadResponse)
		}
	}
	return nil
}

func compareKeyDigest(a, b KeyDigest) int {
	if c := cmp.Compare(a.Hash, b.Hash); c != 0 {
		return c
	}
	return bytes.Compare(a.Key, b.Key)
}

// diffKeys merges two key lists sorted by sortKeys and returns the keys
// whose digests differ, sorted by (Hash, Key).
func diffKeys(local, remote []KeyDigest) []KeyDiff {
	var out []KeyDiff
	i, j := 0, 0
	for i < len(local) || j < len(remote) {
		var c int
		switch {
		case i == len(local):
			c = 1
		case j == len(remote):
			c = -1
		default:
			c = compareKeyDigest(local[i], remote[j])
		}
		switch {
		case c < 0:
			out = append(out, KeyDiff{Key: local[i].Key, Hash: local[i].Hash, Local: local[i].Digest})
			i++
		case c > 0:
			out = append(out, KeyDiff{Key: remote[j].Key, Hash: remote[j].Hash, Remote: remote[j].Digest})
			j++
		default:
			if local[i].Digest != remote[j].Digest {
				out = append(out, KeyDiff{Key: local[i].Key, Hash: local[i].Hash, Local: local[i].Digest, Remote: remote[j].Digest})
			}
			i++
			j++
		}
	}
	return out
}
