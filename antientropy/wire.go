package antientropy

import (
	"bytes"
	"fmt"
	"math"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// Size limits of the exchange messages (their values live with every
// other cap of the protocol, in internal/wire). Decoders check them before
// allocating; encoders refuse to produce messages over them.
const (
	// MaxNodesPerRequest caps the nodes of a HashesRequest, the hashes of a
	// HashesResponse and the buckets of a KeysRequest. A full response is
	// at most ~147 KiB. Compare splits larger levels into several calls.
	MaxNodesPerRequest = wire.MaxTreeNodes
	// MaxKeysPerResponse caps the keys of a KeysResponse: at most ~8.6 MiB
	// with keys of MaxKeyLen bytes, ~330 KiB with 16-byte keys.
	MaxKeysPerResponse = wire.MaxTreeKeys
	// MaxKeyLen is the longest key, in bytes.
	MaxKeyLen = wire.MaxTreeKeyLen
)

// leafLevel tells checkIndices to check leaf indices.
const leafLevel = -1

// wireVersion is the first element of every message. Decoders reject
// other versions, so a format change must bump it.
const wireVersion = 1

// HashesRequest asks a peer for the hashes of some nodes of one level of its
// tree. It is the request behind Peer.Hashes.
type HashesRequest struct {
	// Tree is the asker's tree shape, partition included; the peer answers
	// only if its tree has the same shape (ErrShapeMismatch otherwise).
	Tree  TreeConfig
	Level int
	// Nodes are indices at Level, at most MaxNodesPerRequest. Runs of
	// consecutive indices (which is what Compare asks: all the children of
	// a node) cost a few bytes each on the wire.
	Nodes []uint32
}

// HashesResponse answers a HashesRequest: one hash per requested node, in
// order.
type HashesResponse struct {
	Hashes []uint64
}

// KeysRequest asks a peer for the keys and digests of some buckets. It is the
// request behind Peer.Keys.
type KeysRequest struct {
	Tree    TreeConfig // as in HashesRequest
	Buckets []uint32   // leaf indices, at most MaxNodesPerRequest
}

// KeysResponse answers a KeysRequest. If the keys do not fit in
// MaxKeysPerResponse, TooMany is set and Keys is empty.
type KeysResponse struct {
	Keys    []KeyDigest
	TooMany bool
}

// Result turns the response into the values Peer.Keys returns.
func (r KeysResponse) Result() ([]KeyDigest, error) {
	if r.TooMany {
		return nil, ErrTooManyKeys
	}
	return r.Keys, nil
}

// ServeHashes answers a HashesRequest from the local tree of the requested
// partition. It returns ErrShapeMismatch if the trees differ in shape.
func ServeHashes(t LocalTree, req HashesRequest) (HashesResponse, error) {
	if !t.Config().SameShape(req.Tree) {
		return HashesResponse{}, fmt.Errorf("hashes: %w", ErrShapeMismatch)
	}
	if len(req.Nodes) > MaxNodesPerRequest {
		return HashesResponse{}, fmt.Errorf("hashes: %d nodes: %w", len(req.Nodes), ErrTooLarge)
	}
	h, err := t.Hashes(req.Level, req.Nodes)
	if err != nil {
		return HashesResponse{}, fmt.Errorf("hashes: %w", err)
	}
	return HashesResponse{Hashes: h}, nil
}

// ServeKeys answers a KeysRequest for the local tree of shape cfg, listing
// the buckets' keys with keys (typically a store scan of each
// cfg.BucketRange). It returns ErrShapeMismatch if the shapes differ, and a
// response with TooMany set if more than MaxKeysPerResponse keys were listed.
func ServeKeys(cfg TreeConfig, req KeysRequest, keys func(buckets []uint32) ([]KeyDigest, error)) (KeysResponse, error) {
	if !cfg.SameShape(req.Tree) {
		return KeysResponse{}, fmt.Errorf("keys: %w", ErrShapeMismatch)
	}
	if len(req.Buckets) > MaxNodesPerRequest {
		return KeysResponse{}, fmt.Errorf("keys: %d buckets: %w", len(req.Buckets), ErrTooLarge)
	}
	w := cfg.LevelWidth(cfg.Depth())
	for _, b := range req.Buckets {
		if b >= w {
			return KeysResponse{}, fmt.Errorf("keys: bucket %d of %d: %w", b, w, ErrOutOfRange)
		}
	}
	ks, err := keys(req.Buckets)
	if err != nil {
		return KeysResponse{}, fmt.Errorf("keys: %w", err)
	}
	if len(ks) > MaxKeysPerResponse {
		return KeysResponse{TooMany: true}, nil
	}
	return KeysResponse{Keys: ks}, nil
}

// Wire format: every message is one msgpack array whose first element is
// wireVersion. Index lists are arrays of (start, length) pairs of runs of
// consecutive indices.
//
//	HashesRequest:  [1, partitionBits, leafBits, fanoutBits, partition, level, runs]
//	HashesResponse: [1, [hash...]]
//	KeysRequest:    [1, partitionBits, leafBits, fanoutBits, partition, runs]
//	KeysResponse:   [1, tooMany, [[key, hash, digest]...]]

// Encode returns the wire form of m. It fails with ErrTooLarge or
// ErrMalformed for messages a decoder would reject.
func (m HashesRequest) Encode() ([]byte, error) {
	if m.Level < 0 {
		return nil, fmt.Errorf("encode hashes request: level %d: %w", m.Level, ErrMalformed)
	}
	if err := checkIndices(m.Tree, m.Level, m.Nodes); err != nil {
		return nil, fmt.Errorf("encode hashes request: %w", err)
	}
	b := appendTree(wire.AppendArrayLen(nil, 7), m.Tree)
	b = wire.AppendUint(b, uint64(m.Level))
	return appendRuns(b, m.Nodes), nil
}

// DecodeHashesRequest parses a HashesRequest from untrusted bytes. Errors
// wrap ErrMalformed or ErrTooLarge.
func DecodeHashesRequest(b []byte) (HashesRequest, error) {
	var m HashesRequest
	err := decode(b, 7, func(r *wire.Reader) error {
		m.Tree = readTree(r)
		m.Level = int(readUint(r, MaxDepth))
		m.Nodes = readRuns(r)
		if r.Err() != nil {
			return nil
		}
		return checkIndices(m.Tree, m.Level, m.Nodes)
	})
	if err != nil {
		return HashesRequest{}, fmt.Errorf("decode hashes request: %w", err)
	}
	return m, nil
}

// Encode returns the wire form of m.
func (m HashesResponse) Encode() ([]byte, error) {
	if len(m.Hashes) > MaxNodesPerRequest {
		return nil, fmt.Errorf("encode hashes response: %d hashes: %w", len(m.Hashes), ErrTooLarge)
	}
	b := wire.AppendUint(wire.AppendArrayLen(nil, 2), wireVersion)
	b = wire.AppendArrayLen(b, len(m.Hashes))
	for _, h := range m.Hashes {
		b = wire.AppendUint(b, h)
	}
	return b, nil
}

// DecodeHashesResponse parses a HashesResponse from untrusted bytes.
func DecodeHashesResponse(b []byte) (HashesResponse, error) {
	var m HashesResponse
	err := decode(b, 2, func(r *wire.Reader) error {
		m.Hashes = make([]uint64, r.ArrayLen(MaxNodesPerRequest))
		for i := range m.Hashes {
			m.Hashes[i] = r.Uint(math.MaxUint64)
		}
		return nil
	})
	if err != nil {
		return HashesResponse{}, fmt.Errorf("decode hashes response: %w", err)
	}
	return m, nil
}

// Encode returns the wire form of m.
func (m KeysRequest) Encode() ([]byte, error) {
	if err := checkIndices(m.Tree, leafLevel, m.Buckets); err != nil {
		return nil, fmt.Errorf("encode keys request: %w", err)
	}
	b := appendTree(wire.AppendArrayLen(nil, 6), m.Tree)
	return appendRuns(b, m.Buckets), nil
}

// DecodeKeysRequest parses a KeysRequest from untrusted bytes.
func DecodeKeysRequest(b []byte) (KeysRequest, error) {
	var m KeysRequest
	err := decode(b, 6, func(r *wire.Reader) error {
		m.Tree = readTree(r)
		m.Buckets = readRuns(r)
		if r.Err() != nil {
			return nil
		}
		return checkIndices(m.Tree, leafLevel, m.Buckets)
	})
	if err != nil {
		return KeysRequest{}, fmt.Errorf("decode keys request: %w", err)
	}
	return m, nil
}

// Encode returns the wire form of m.
func (m KeysResponse) Encode() ([]byte, error) {
	if err := checkKeysResponse(m); err != nil {
		return nil, fmt.Errorf("encode keys response: %w", err)
	}
	b := wire.AppendUint(wire.AppendArrayLen(nil, 3), wireVersion)
	b = wire.AppendBool(b, m.TooMany)
	b = wire.AppendArrayLen(b, len(m.Keys))
	for _, k := range m.Keys {
		b = wire.AppendArrayLen(b, 3)
		b = wire.AppendBin(b, k.Key)
		b = wire.AppendUint(b, k.Hash)
		b = wire.AppendUint(b, k.Digest)
	}
	return b, nil
}

// DecodeKeysResponse parses a KeysResponse from untrusted bytes.
func DecodeKeysResponse(b []byte) (KeysResponse, error) {
	var m KeysResponse
	err := decode(b, 3, func(r *wire.Reader) error {
		m.TooMany = r.Bool()
		m.Keys = make([]KeyDigest, r.ArrayLen(MaxKeysPerResponse))
		for i := range m.Keys {
			k := &m.Keys[i]
			r.Array(3)
			k.Key = readKey(r)
			k.Hash = r.Uint(math.MaxUint64)
			k.Digest = r.Uint(math.MaxUint64)
		}
		if r.Err() != nil {
			return nil
		}
		return checkKeysResponse(m)
	})
	if err != nil {
		return KeysResponse{}, fmt.Errorf("decode keys response: %w", err)
	}
	return m, nil
}

func checkKeysResponse(m KeysResponse) error {
	if len(m.Keys) > MaxKeysPerResponse {
		return fmt.Errorf("%d keys: %w", len(m.Keys), ErrTooLarge)
	}
	if m.TooMany && len(m.Keys) > 0 {
		return fmt.Errorf("keys with TooMany set: %w", ErrMalformed)
	}
	for _, k := range m.Keys {
		if len(k.Key) > MaxKeyLen {
			return fmt.Errorf("key of %d bytes: %w", len(k.Key), ErrTooLarge)
		}
		if len(k.Key) == 0 {
			return fmt.Errorf("empty key: %w", ErrMalformed)
		}
		if k.Digest == 0 {
			return fmt.Errorf("key %q with digest 0: %w", k.Key, ErrMalformed)
		}
	}
	return nil
}

// checkIndices checks a tree shape and a list of node indices at level l;
// l < 0 means the leaves.
func checkIndices(t TreeConfig, l int, nodes []uint32) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if l < 0 {
		l = t.Depth()
	}
	if len(nodes) > MaxNodesPerRequest {
		return fmt.Errorf("%d nodes: %w", len(nodes), ErrTooLarge)
	}
	w := t.LevelWidth(l)
	if w == 0 {
		return fmt.Errorf("level %d of %d: %w", l, t.Depth(), ErrMalformed)
	}
	for _, i := range nodes {
		if i >= w {
			return fmt.Errorf("node %d of %d at level %d: %w", i, w, l, ErrMalformed)
		}
	}
	return nil
}

// decode reads a message of n elements from b: the array header and the
// version, then f, then checks that every byte was read. A failure of the
// reader wraps ErrTooLarge when over a limit and ErrMalformed otherwise;
// f's own errors are returned as they are.
func decode(b []byte, n int, f func(r *wire.Reader) error) error {
	r := wire.NewReader(b)
	r.Array(n)
	if v := r.Uint(math.MaxUint64); r.Err() == nil && v != wireVersion {
		return fmt.Errorf("version %d, want %d: %w", v, wireVersion, ErrMalformed)
	}
	if err := f(&r); err != nil {
		return err
	}
	return wire.MapErr(r.End(), ErrMalformed, ErrTooLarge)
}

// readUint reads an unsigned integer no larger than limit; a larger one is
// malformed (the fields it reads have no size meaning).
func readUint(r *wire.Reader, limit uint64) uint64 {
	v := r.Uint(math.MaxUint64)
	if v > limit {
		r.Fail(fmt.Errorf("integer %d over %d: %w", v, limit, ErrMalformed))
		return 0
	}
	return v
}

func appendTree(b []byte, t TreeConfig) []byte {
	for _, v := range []uint64{wireVersion, uint64(t.PartitionBits), uint64(t.LeafBits), uint64(t.FanoutBits), uint64(t.Partition)} {
		b = wire.AppendUint(b, v)
	}
	return b
}

// readTree reads the four fields written by appendTree after the version.
// The caller validates the result.
func readTree(r *wire.Reader) TreeConfig {
	var v [4]uint64
	for i, limit := range [4]uint64{MaxPartitionBits, MaxLeafBits, MaxFanoutBits, math.MaxUint32} {
		v[i] = readUint(r, limit)
	}
	return TreeConfig{PartitionBits: int(v[0]), LeafBits: int(v[1]), FanoutBits: int(v[2]), Partition: uint32(v[3])}
}

func appendRuns(b []byte, nodes []uint32) []byte {
	runs := 0
	for i := range nodes {
		if i == 0 || nodes[i-1] == math.MaxUint32 || nodes[i] != nodes[i-1]+1 {
			runs++
		}
	}
	b = wire.AppendArrayLen(b, 2*runs)
	for i := 0; i < len(nodes); {
		j := i + 1
		for j < len(nodes) && nodes[j-1] != math.MaxUint32 && nodes[j] == nodes[j-1]+1 {
			j++
		}
		b = wire.AppendUint(b, uint64(nodes[i]))
		b = wire.AppendUint(b, uint64(j-i))
		i = j
	}
	return b
}

// readRuns reads a run-length list of at most MaxNodesPerRequest indices.
func readRuns(r *wire.Reader) []uint32 {
	n := r.ArrayLen(2 * MaxNodesPerRequest)
	if n%2 != 0 {
		r.Fail(fmt.Errorf("run list of odd length %d: %w", n, ErrMalformed))
		return nil
	}
	runs := make([]uint64, n) // bounded by 2*MaxNodesPerRequest
	total := uint64(0)
	for i := 0; i < n; i += 2 {
		runs[i] = readUint(r, math.MaxUint32)
		runs[i+1] = readUint(r, MaxNodesPerRequest)
		if r.Err() != nil {
			return nil
		}
		if runs[i+1] == 0 || runs[i]+runs[i+1]-1 > math.MaxUint32 {
			r.Fail(fmt.Errorf("bad run (%d, %d): %w", runs[i], runs[i+1], ErrMalformed))
			return nil
		}
		if total += runs[i+1]; total > MaxNodesPerRequest {
			r.Fail(fmt.Errorf("more than %d indices: %w", MaxNodesPerRequest, ErrTooLarge))
			return nil
		}
	}
	out := make([]uint32, 0, total)
	for i := 0; i < n; i += 2 {
		for j := range runs[i+1] {
			out = append(out, uint32(runs[i]+j))
		}
	}
	return out
}

// readKey reads a key of 1..MaxKeyLen bytes into a fresh slice.
func readKey(r *wire.Reader) []byte {
	k := r.Bytes(MaxKeyLen)
	if len(k) == 0 && r.Err() == nil {
		r.Fail(fmt.Errorf("empty or nil key: %w", ErrMalformed))
	}
	return bytes.Clone(k)
}
