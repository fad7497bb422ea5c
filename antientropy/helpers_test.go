package antientropy

import (
	"context"
	"fmt"
	"slices"

	"pgregory.net/rapid"

	"github.com/cespare/xxhash/v2"
)

// fakeReplica is a naive model of one node's partition: the keys it holds with
// their digests, and the tree kept current by every write.
type fakeReplica struct {
	tb    rapid.TB
	cfg   TreeConfig
	tree  *Tree
	keys  map[string]KeyDigest
	index map[uint32][]KeyDigest // bucket -> keys; nil when stale
	// hashOf places keys; default hashIn(cfg).
	hashOf func(key []byte) uint64
}

func newReplica(tb rapid.TB, cfg TreeConfig) *fakeReplica {
	tb.Helper()
	t, err := NewTree(cfg)
	if err != nil {
		tb.Fatalf("NewTree(%+v): %v", cfg, err)
	}
	return &fakeReplica{tb: tb, cfg: cfg, tree: t, keys: make(map[string]KeyDigest), hashOf: hashIn(cfg)}
}

// hashIn returns a key hash function whose results fall in cfg's partition:
// the partition prefix followed by xxhash bits.
func hashIn(cfg TreeConfig) func([]byte) uint64 {
	return func(key []byte) uint64 {
		h := xxhash.Sum64(key)
		if cfg.PartitionBits == 0 {
			return h
		}
		return uint64(cfg.Partition)<<(64-cfg.PartitionBits) | h>>cfg.PartitionBits
	}
}

// put stores key with a set whose digest is setDigest (0 deletes the key).
func (r *fakeReplica) put(key string, setDigest uint64) {
	h := r.hashOf([]byte(key))
	var d uint64
	if setDigest != 0 {
		d = Digest(h, []byte(key), setDigest)
	}
	r.putDigest(key, h, d)
}

// putDigest stores key with hash h and per-key digest d (0 deletes).
func (r *fakeReplica) putDigest(key string, h, d uint64) {
	r.tb.Helper()
	old := r.keys[key].Digest
	if err := r.tree.Update(h, old, d); err != nil {
		r.tb.Fatalf("Update(%q): %v", key, err)
	}
	if d == 0 {
		delete(r.keys, key)
	} else {
		r.keys[key] = KeyDigest{Key: []byte(key), Hash: h, Digest: d}
	}
	r.index = nil
}

// list is the localKeys function of Compare and the keys function of
// ServeKeys: the keys of the given buckets, fresh copies.
func (r *fakeReplica) list(buckets []uint32) ([]KeyDigest, error) {
	if r.index == nil {
		r.index = make(map[uint32][]KeyDigest)
		for _, k := range r.keys {
			b := r.cfg.Bucket(k.Hash)
			r.index[b] = append(r.index[b], k)
		}
	}
	var out []KeyDigest
	for _, b := range buckets {
		for _, k := range r.index[b] {
			out = append(out, KeyDigest{Key: slices.Clone(k.Key), Hash: k.Hash, Digest: k.Digest})
		}
	}
	return out, nil
}

// treePeer serves a replica directly, without encoding.
type treePeer struct{ r *fakeReplica }

func (p treePeer) Hashes(_ context.Context, part uint32, l int, nodes []uint32) ([]uint64, error) {
	if part != p.r.cfg.Partition {
		return nil, fmt.Errorf("partition %d: %w", part, ErrShapeMismatch)
	}
	return p.r.tree.Hashes(l, nodes)
}

func (p treePeer) Keys(_ context.Context, part uint32, buckets []uint32) ([]KeyDigest, error) {
	if part != p.r.cfg.Partition {
		return nil, fmt.Errorf("partition %d: %w", part, ErrShapeMismatch)
	}
	return p.r.list(buckets)
}

// wirePeer serves a replica through the wire messages, as the transport
// will: the asker encodes a request, the server decodes it, answers with
// ServeHashes/ServeKeys and encodes the response, the asker decodes it.
// It counts the bytes of every message in both directions.
type wirePeer struct {
	asker TreeConfig // the asker's shape; Partition is set per call
	r     *fakeReplica
	bytes int
	calls int
}

func (w *wirePeer) Hashes(_ context.Context, part uint32, l int, nodes []uint32) ([]uint64, error) {
	w.calls++
	shape := w.asker
	shape.Partition = part
	resp, err := roundTrip(HashesRequest{Tree: shape, Level: l, Nodes: nodes}.Encode,
		serveWire(w, DecodeHashesRequest, func(req HashesRequest) (HashesResponse, error) { return ServeHashes(w.r.tree, req) }),
		DecodeHashesResponse)
	return resp.Hashes, err
}

func (w *wirePeer) Keys(_ context.Context, part uint32, buckets []uint32) ([]KeyDigest, error) {
	w.calls++
	shape := w.asker
	shape.Partition = part
	resp, err := roundTrip(KeysRequest{Tree: shape, Buckets: buckets}.Encode,
		serveWire(w, DecodeKeysRequest, func(req KeysRequest) (KeysResponse, error) { return ServeKeys(w.r.cfg, req, w.r.list) }),
		DecodeKeysResponse)
	if err != nil {
		return nil, err
	}
	return resp.Result()
}

// serveWire is the server's side of one wirePeer message: the request
// decoded by dec, answered by answer, the answer encoded; the bytes of both
// counted.
func serveWire[Q any, A interface{ Encode() ([]byte, error) }](w *wirePeer, dec func([]byte) (Q, error), answer func(Q) (A, error)) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		w.bytes += len(b)
		req, err := dec(b)
		if err != nil {
			return nil, err
		}
		resp, err := answer(req)
		if err != nil {
			return nil, err
		}
		if b, err = resp.Encode(); err != nil {
			return nil, err
		}
		w.bytes += len(b)
		return b, nil
	}
}

// bruteDiff is the model of Compare's result: every key whose digests
// differ, sorted by (Hash, Key).
func bruteDiff(local, remote *fakeReplica) []KeyDiff {
	var out []KeyDiff
	for k, l := range local.keys {
		if r := remote.keys[k]; r.Digest != l.Digest {
			out = append(out, KeyDiff{Key: []byte(k), Hash: l.Hash, Local: l.Digest, Remote: r.Digest})
		}
	}
	for k, r := range remote.keys {
		if _, ok := local.keys[k]; !ok {
			out = append(out, KeyDiff{Key: []byte(k), Hash: r.Hash, Remote: r.Digest})
		}
	}
	slices.SortFunc(out, func(a, b KeyDiff) int {
		return compareKeyDigest(KeyDigest{Key: a.Key, Hash: a.Hash}, KeyDigest{Key: b.Key, Hash: b.Hash})
	})
	return out
}

// divergedPair returns two replicas of the same n keys of which d differ:
// a third changed on the remote, a third only local, a third only remote.
func divergedPair(tb rapid.TB, cfg TreeConfig, n, d int) (local, remote *fakeReplica) {
	tb.Helper()
	local, remote = newReplica(tb, cfg), newReplica(tb, cfg)
	for i := range n {
		k := benchKey(i)
		local.put(k, uint64(i)+1)
		remote.put(k, uint64(i)+1)
	}
	for i := range d {
		k := benchKey(i * (n / max(d, 1)))
		switch i % 3 {
		case 0:
			remote.put(k, uint64(n+i)+1) // concurrent write on the remote
		case 1:
			remote.put(k, 0) // remote never got it
		case 2:
			local.put(k, 0) // local never got it
		}
	}
	return local, remote
}

// benchKey is the i-th test key: 16 bytes.
func benchKey(i int) string { return fmt.Sprintf("user:%011d", i) }
