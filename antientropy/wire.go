package antientropy

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Size limits of the exchange messages. Decoders check them before
// allocating; encoders refuse to produce messages over them.
const (
	// MaxNodesPerRequest caps the nodes of a HashesRequest, the hashes of a
	// HashesResponse and the buckets of a KeysRequest. A full response is
	// at most ~147 KiB. Compare splits larger levels into several calls.
	MaxNodesPerRequest = 1 << 14
	// MaxKeysPerResponse caps the keys of a KeysResponse: at most ~8.6 MiB
	// with keys of MaxKeyLen bytes, ~330 KiB with 16-byte keys.
	MaxKeysPerResponse = 1 << 13
	// MaxKeyLen is the longest key, in bytes (the store's limit).
	MaxKeyLen = 1024
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
	return encode(func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(7); err != nil {
			return err
		}
		if err := encodeTree(e, m.Tree); err != nil {
			return err
		}
		if err := e.EncodeUint(uint64(m.Level)); err != nil {
			return err
		}
		return encodeRuns(e, m.Nodes)
	})
}

// DecodeHashesRequest parses a HashesRequest from untrusted bytes. Errors
// wrap ErrMalformed or ErrTooLarge.
func DecodeHashesRequest(b []byte) (HashesRequest, error) {
	var m HashesRequest
	err := decode(b, func(d *msgpack.Decoder, r *bytes.Reader) error {
		if err := decodeHeader(d, 7); err != nil {
			return err
		}
		var err error
		if m.Tree, err = decodeTree(d); err != nil {
			return err
		}
		level, err := decodeUint(d, MaxDepth)
		if err != nil {
			return err
		}
		m.Level = int(level)
		if m.Nodes, err = decodeRuns(d, r); err != nil {
			return err
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
	return encode(func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(2); err != nil {
			return err
		}
		if err := e.EncodeUint(wireVersion); err != nil {
			return err
		}
		if err := e.EncodeArrayLen(len(m.Hashes)); err != nil {
			return err
		}
		for _, h := range m.Hashes {
			if err := e.EncodeUint(h); err != nil {
				return err
			}
		}
		return nil
	})
}

// DecodeHashesResponse parses a HashesResponse from untrusted bytes.
func DecodeHashesResponse(b []byte) (HashesResponse, error) {
	var m HashesResponse
	err := decode(b, func(d *msgpack.Decoder, r *bytes.Reader) error {
		if err := decodeHeader(d, 2); err != nil {
			return err
		}
		n, err := decodeArrayLen(d, r, MaxNodesPerRequest)
		if err != nil {
			return err
		}
		m.Hashes = make([]uint64, n)
		for i := range m.Hashes {
			if m.Hashes[i], err = decodeUint(d, math.MaxUint64); err != nil {
				return err
			}
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
	return encode(func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(6); err != nil {
			return err
		}
		if err := encodeTree(e, m.Tree); err != nil {
			return err
		}
		return encodeRuns(e, m.Buckets)
	})
}

// DecodeKeysRequest parses a KeysRequest from untrusted bytes.
func DecodeKeysRequest(b []byte) (KeysRequest, error) {
	var m KeysRequest
	err := decode(b, func(d *msgpack.Decoder, r *bytes.Reader) error {
		if err := decodeHeader(d, 6); err != nil {
			return err
		}
		var err error
		if m.Tree, err = decodeTree(d); err != nil {
			return err
		}
		if m.Buckets, err = decodeRuns(d, r); err != nil {
			return err
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
	return encode(func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(3); err != nil {
			return err
		}
		if err := e.EncodeUint(wireVersion); err != nil {
			return err
		}
		if err := e.EncodeBool(m.TooMany); err != nil {
			return err
		}
		if err := e.EncodeArrayLen(len(m.Keys)); err != nil {
			return err
		}
		for _, k := range m.Keys {
			if err := e.EncodeArrayLen(3); err != nil {
				return err
			}
			if err := e.EncodeBytes(k.Key); err != nil {
				return err
			}
			if err := e.EncodeUint(k.Hash); err != nil {
				return err
			}
			if err := e.EncodeUint(k.Digest); err != nil {
				return err
			}
		}
		return nil
	})
}

// DecodeKeysResponse parses a KeysResponse from untrusted bytes.
func DecodeKeysResponse(b []byte) (KeysResponse, error) {
	var m KeysResponse
	err := decode(b, func(d *msgpack.Decoder, r *bytes.Reader) error {
		if err := decodeHeader(d, 3); err != nil {
			return err
		}
		var err error
		if m.TooMany, err = d.DecodeBool(); err != nil {
			return err
		}
		n, err := decodeArrayLen(d, r, MaxKeysPerResponse)
		if err != nil {
			return err
		}
		m.Keys = make([]KeyDigest, n)
		for i := range m.Keys {
			k := &m.Keys[i]
			if n, err := d.DecodeArrayLen(); err != nil {
				return err
			} else if n != 3 {
				return fmt.Errorf("key entry of %d elements, want 3", n)
			}
			if k.Key, err = decodeKey(d, r); err != nil {
				return err
			}
			if k.Hash, err = decodeUint(d, math.MaxUint64); err != nil {
				return err
			}
			if k.Digest, err = decodeUint(d, math.MaxUint64); err != nil {
				return err
			}
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

func encode(f func(e *msgpack.Encoder) error) ([]byte, error) {
	var buf bytes.Buffer
	e := msgpack.GetEncoder()
	defer msgpack.PutEncoder(e)
	e.Reset(&buf)
	if err := f(e); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode runs f over b and checks that it consumed every byte. Any failure
// wraps ErrMalformed unless it already wraps ErrTooLarge.
func decode(b []byte, f func(d *msgpack.Decoder, r *bytes.Reader) error) error {
	r := bytes.NewReader(b)
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(r) // a *bytes.Reader is read directly, unbuffered: r.Len() stays exact
	err := f(d, r)
	if err == nil && r.Len() != 0 {
		err = fmt.Errorf("%d trailing bytes", r.Len())
	}
	if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
		err = fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return err
}

// decodeHeader reads the message's array header, which must have n
// elements, and the version.
func decodeHeader(d *msgpack.Decoder, n int) error {
	got, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("array of %d elements, want %d", got, n)
	}
	v, err := decodeUint(d, math.MaxUint64)
	if err != nil {
		return err
	}
	if v != wireVersion {
		return fmt.Errorf("version %d, want %d", v, wireVersion)
	}
	return nil
}

func encodeTree(e *msgpack.Encoder, t TreeConfig) error {
	for _, v := range []uint64{wireVersion, uint64(t.PartitionBits), uint64(t.LeafBits), uint64(t.FanoutBits), uint64(t.Partition)} {
		if err := e.EncodeUint(v); err != nil {
			return err
		}
	}
	return nil
}

// decodeTree reads the four fields written by encodeTree after the version.
// The caller validates the result.
func decodeTree(d *msgpack.Decoder) (TreeConfig, error) {
	var v [4]uint64
	for i, limit := range [4]uint64{MaxPartitionBits, MaxLeafBits, MaxFanoutBits, math.MaxUint32} {
		var err error
		if v[i], err = decodeUint(d, limit); err != nil {
			return TreeConfig{}, err
		}
	}
	return TreeConfig{PartitionBits: int(v[0]), LeafBits: int(v[1]), FanoutBits: int(v[2]), Partition: uint32(v[3])}, nil
}

// decodeUint reads an unsigned integer no larger than limit.
func decodeUint(d *msgpack.Decoder, limit uint64) (uint64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	// Accept only unsigned encodings: positive fixint and uint8..uint64.
	if !(c <= 0x7f || (c >= 0xcc && c <= 0xcf)) {
		return 0, fmt.Errorf("code %#x is not an unsigned integer", c)
	}
	v, err := d.DecodeUint64()
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, fmt.Errorf("integer %d over %d", v, limit)
	}
	return v, nil
}

// decodeArrayLen reads an array header of at most limit elements, each of
// which takes at least one of the bytes left in r.
func decodeArrayLen(d *msgpack.Decoder, r *bytes.Reader, limit int) (int, error) {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return 0, err
	}
	switch {
	case n < 0:
		return 0, errors.New("nil array")
	case n > limit:
		return 0, fmt.Errorf("array of %d elements over %d: %w", n, limit, ErrTooLarge)
	case n > r.Len():
		return 0, fmt.Errorf("array of %d elements in %d bytes", n, r.Len())
	}
	return n, nil
}

func encodeRuns(e *msgpack.Encoder, nodes []uint32) error {
	runs := 0
	for i := range nodes {
		if i == 0 || nodes[i-1] == math.MaxUint32 || nodes[i] != nodes[i-1]+1 {
			runs++
		}
	}
	if err := e.EncodeArrayLen(2 * runs); err != nil {
		return err
	}
	for i := 0; i < len(nodes); {
		j := i + 1
		for j < len(nodes) && nodes[j-1] != math.MaxUint32 && nodes[j] == nodes[j-1]+1 {
			j++
		}
		if err := e.EncodeUint(uint64(nodes[i])); err != nil {
			return err
		}
		if err := e.EncodeUint(uint64(j - i)); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// decodeRuns reads a run-length list of at most MaxNodesPerRequest indices.
func decodeRuns(d *msgpack.Decoder, r *bytes.Reader) ([]uint32, error) {
	n, err := decodeArrayLen(d, r, 2*MaxNodesPerRequest)
	if err != nil {
		return nil, err
	}
	if n%2 != 0 {
		return nil, fmt.Errorf("run list of odd length %d", n)
	}
	runs := make([]uint64, n) // bounded by 2*MaxNodesPerRequest
	total := uint64(0)
	for i := 0; i < n; i += 2 {
		if runs[i], err = decodeUint(d, math.MaxUint32); err != nil {
			return nil, err
		}
		if runs[i+1], err = decodeUint(d, MaxNodesPerRequest); err != nil {
			return nil, err
		}
		if runs[i+1] == 0 || runs[i]+runs[i+1]-1 > math.MaxUint32 {
			return nil, fmt.Errorf("bad run (%d, %d)", runs[i], runs[i+1])
		}
		if total += runs[i+1]; total > MaxNodesPerRequest {
			return nil, fmt.Errorf("more than %d indices: %w", MaxNodesPerRequest, ErrTooLarge)
		}
	}
	out := make([]uint32, 0, total)
	for i := 0; i < n; i += 2 {
		for j := range runs[i+1] {
			out = append(out, uint32(runs[i]+j))
		}
	}
	return out, nil
}

// decodeKey reads a key of 1..MaxKeyLen bytes.
func decodeKey(d *msgpack.Decoder, r *bytes.Reader) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	switch {
	case n > MaxKeyLen:
		return nil, fmt.Errorf("key of %d bytes: %w", n, ErrTooLarge)
	case n <= 0:
		return nil, errors.New("empty or nil key")
	case n > r.Len():
		return nil, fmt.Errorf("key of %d bytes in %d", n, r.Len())
	}
	k := make([]byte, n)
	if err := d.ReadFull(k); err != nil {
		return nil, err
	}
	return k, nil
}
