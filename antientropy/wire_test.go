package antientropy

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

var wireTree = TreeConfig{PartitionBits: 8, Partition: 200, LeafBits: 14, FanoutBits: 4}

func seq(from, n uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = from + uint32(i)
	}
	return out
}

func validHashesRequests() []HashesRequest {
	return []HashesRequest{
		{Tree: wireTree, Level: 0, Nodes: []uint32{0}},
		{Tree: wireTree, Level: 4, Nodes: []uint32{}},
		{Tree: wireTree, Level: 4, Nodes: append(seq(16, 16), seq(4080, 16)...)},
		{Tree: wireTree, Level: 3, Nodes: []uint32{7, 3, 4, 5, 0}}, // any order
		{Tree: wireTree, Level: 4, Nodes: seq(0, MaxNodesPerRequest)},
		{Tree: TreeConfig{PartitionBits: 32, Partition: math.MaxUint32, LeafBits: 20, FanoutBits: 1}, Level: 20, Nodes: []uint32{1<<20 - 1}},
	}
}

func validKeysResponses() []KeysResponse {
	long := bytes.Repeat([]byte{'k'}, MaxKeyLen)
	return []KeysResponse{
		{Keys: []KeyDigest{}},
		{Keys: []KeyDigest{}, TooMany: true},
		{Keys: []KeyDigest{{Key: []byte("a"), Hash: 0, Digest: 1}, {Key: long, Hash: math.MaxUint64, Digest: math.MaxUint64}}},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range validHashesRequests() {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%d nodes): %v", len(m.Nodes), err)
		}
		got, err := DecodeHashesRequest(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("HashesRequest round trip: %v, %+v", err, got.Tree)
		}
	}
	for _, m := range []HashesResponse{{Hashes: []uint64{}}, {Hashes: []uint64{0, 1, math.MaxUint64}}} {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeHashesResponse(b); err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("HashesResponse round trip: %v, %v", err, got)
		}
	}
	for _, m := range []KeysRequest{{Tree: wireTree, Buckets: []uint32{}}, {Tree: wireTree, Buckets: []uint32{1, 2, 3, 16383}}} {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeKeysRequest(b); err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("KeysRequest round trip: %v, %v", err, got)
		}
	}
	for _, m := range validKeysResponses() {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeKeysResponse(b); err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("KeysResponse round trip: %v, %v", err, got)
		}
	}
}

// Runs of consecutive indices cost a few bytes, however long.
func TestWireRunsAreCompact(t *testing.T) {
	short, _ := HashesRequest{Tree: wireTree, Level: 4, Nodes: seq(4096, 16)}.Encode()
	long, _ := HashesRequest{Tree: wireTree, Level: 4, Nodes: seq(0, MaxNodesPerRequest)}.Encode()
	if len(short) > 16 || len(long) > 16 {
		t.Errorf("one run encodes in %d and %d bytes, want <= 16", len(short), len(long))
	}
}

func TestWireEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		enc  func() ([]byte, error)
		want error
	}{
		{"too many nodes", HashesRequest{Tree: wireTree, Level: 4, Nodes: make([]uint32, MaxNodesPerRequest+1)}.Encode, ErrTooLarge},
		{"node past the level", HashesRequest{Tree: wireTree, Level: 1, Nodes: []uint32{16}}.Encode, ErrMalformed},
		{"level past the leaves", HashesRequest{Tree: wireTree, Level: 5, Nodes: []uint32{0}}.Encode, ErrMalformed},
		{"negative level", HashesRequest{Tree: wireTree, Level: -1, Nodes: []uint32{0}}.Encode, ErrMalformed},
		{"zero fanout", KeysRequest{Tree: TreeConfig{LeafBits: 4}, Buckets: []uint32{0}}.Encode, ErrMalformed},
		{"invalid tree", HashesRequest{Tree: TreeConfig{}, Level: 0, Nodes: []uint32{0}}.Encode, ErrMalformed},
		{"too many hashes", HashesResponse{Hashes: make([]uint64, MaxNodesPerRequest+1)}.Encode, ErrTooLarge},
		{"bucket past the leaves", KeysRequest{Tree: wireTree, Buckets: []uint32{1 << 14}}.Encode, ErrMalformed},
		{"too many keys", KeysResponse{Keys: make([]KeyDigest, MaxKeysPerResponse+1)}.Encode, ErrTooLarge},
		{"long key", KeysResponse{Keys: []KeyDigest{{Key: make([]byte, MaxKeyLen+1), Digest: 1}}}.Encode, ErrTooLarge},
		{"empty key", KeysResponse{Keys: []KeyDigest{{Digest: 1}}}.Encode, ErrMalformed},
		{"zero digest", KeysResponse{Keys: []KeyDigest{{Key: []byte("k")}}}.Encode, ErrMalformed},
		{"keys with TooMany", KeysResponse{Keys: []KeyDigest{{Key: []byte("k"), Digest: 1}}, TooMany: true}.Encode, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.enc(); !errors.Is(err, tc.want) {
				t.Errorf("Encode error %v, want %v", err, tc.want)
			}
		})
	}
}

// raw encodes values with msgpack's generic encoder, to build hostile input.
func raw(t *testing.T, v ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	for _, x := range v {
		if err := e.Encode(x); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestWireDecodeRejects(t *testing.T) {
	valid, _ := HashesRequest{Tree: wireTree, Level: 4, Nodes: seq(0, 16)}.Encode()
	tree := []any{1, 8, 14, 4, 200}
	withTree := func(rest ...any) []any { return append(append([]any{}, tree...), rest...) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", valid[:len(valid)-1], ErrMalformed},
		{"trailing byte", append(append([]byte{}, valid...), 0), ErrMalformed},
		{"not an array", raw(t, "hello"), ErrMalformed},
		{"short array", raw(t, []any{1, 8}), ErrMalformed},
		{"version 2", raw(t, []any{2, 8, 14, 4, 200, 4, []any{0, 16}}), ErrMalformed},
		{"negative level", raw(t, withTree(-1, []any{0, 1})), ErrMalformed},
		{"level past leaves", raw(t, withTree(5, []any{0, 1})), ErrMalformed},
		{"odd run list", raw(t, withTree(4, []any{0})), ErrMalformed},
		{"empty run", raw(t, withTree(4, []any{0, 0})), ErrMalformed},
		{"run past the level", raw(t, withTree(4, []any{16380, 5})), ErrMalformed},
		{"run past uint32", raw(t, withTree(4, []any{uint64(math.MaxUint32), 2})), ErrMalformed},
		{"runs over the limit", raw(t, withTree(4, []any{0, MaxNodesPerRequest, 0, 1})), ErrTooLarge},
		// A fixarray of 7, the tree, level 4, then an array32 header claiming
		// 2^31-1 elements (or array16 claiming 16) with nothing after it.
		{"huge array claim", append(append([]byte{0x97}, raw(t, tree...)...), 0x04, 0xdd, 0x7f, 0xff, 0xff, 0xff), ErrTooLarge},
		{"array claim over input", append(append([]byte{0x97}, raw(t, tree...)...), 0x04, 0xdc, 0x00, 0x10), ErrMalformed},
		{"invalid tree", raw(t, []any{1, 8, 0, 4, 200, 0, []any{0, 1}}), ErrMalformed},
		{"partition past Q", raw(t, []any{1, 8, 14, 4, 256, 0, []any{0, 1}}), ErrMalformed},
		{"nil runs", raw(t, withTree(4, nil)), ErrMalformed},
	}
	// The hostile inputs above differ from this valid one in one place.
	if m, err := DecodeHashesRequest(raw(t, withTree(4, []any{0, 16}))); err != nil || len(m.Nodes) != 16 {
		t.Fatalf("generic msgpack encoding of a valid request: %v, %+v", err, m)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeHashesRequest(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("DecodeHashesRequest(%x) = %v, want %v", tc.b, err, tc.want)
			}
		})
	}

	keyTests := []struct {
		name string
		b    []byte
		want error
	}{
		{"long key", raw(t, []any{1, false, []any{[]any{make([]byte, MaxKeyLen+1), 1, 1}}}), ErrTooLarge},
		{"empty key", raw(t, []any{1, false, []any{[]any{[]byte{}, 1, 1}}}), ErrMalformed},
		{"nil key", raw(t, []any{1, false, []any{[]any{nil, 1, 1}}}), ErrMalformed},
		{"zero digest", raw(t, []any{1, false, []any{[]any{[]byte("k"), 1, 0}}}), ErrMalformed},
		{"negative hash", raw(t, []any{1, false, []any{[]any{[]byte("k"), -1, 1}}}), ErrMalformed},
		{"entry of 2", raw(t, []any{1, false, []any{[]any{[]byte("k"), 1}}}), ErrMalformed},
		{"keys with TooMany", raw(t, []any{1, true, []any{[]any{[]byte("k"), 1, 1}}}), ErrMalformed},
		{"key length over input", append(raw(t, []any{1, false})[:0:0], 0x93, 0x01, 0xc2, 0x91, 0x93, 0xc5, 0x03, 0xff, 'k'), ErrMalformed},
		{"not a bool", raw(t, []any{1, 0, []any{}}), ErrMalformed},
	}
	if m, err := DecodeKeysResponse(raw(t, []any{1, false, []any{[]any{[]byte("k"), 1, 1}}})); err != nil || len(m.Keys) != 1 {
		t.Fatalf("generic msgpack encoding of a valid response: %v, %+v", err, m)
	}
	// Found by FuzzDecodeKeysRequest: a shape with FanoutBits 0 divided by
	// zero before it was validated.
	if _, err := DecodeKeysRequest(raw(t, []any{1, 0, 0, 0, 0, []any{}})); !errors.Is(err, ErrMalformed) {
		t.Errorf("keys request with a zero shape: %v", err)
	}
	for _, tc := range keyTests {
		t.Run("keys/"+tc.name, func(t *testing.T) {
			if _, err := DecodeKeysResponse(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("DecodeKeysResponse(%x) = %v, want %v", tc.b, err, tc.want)
			}
		})
	}
}

func TestServe(t *testing.T) {
	r := newReplica(t, wireTree)
	for i := range 100 {
		r.put(benchKey(i), 1)
	}
	if _, err := ServeHashes(r.tree, HashesRequest{Tree: DefaultTreeConfig(), Level: 0, Nodes: []uint32{0}}); !errors.Is(err, ErrShapeMismatch) {
		t.Errorf("ServeHashes for another partition: %v", err)
	}
	if _, err := ServeHashes(r.tree, HashesRequest{Tree: wireTree, Level: 9, Nodes: []uint32{0}}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("ServeHashes for a missing level: %v", err)
	}
	resp, err := ServeHashes(r.tree, HashesRequest{Tree: wireTree, Level: 0, Nodes: []uint32{0}})
	if err != nil || len(resp.Hashes) != 1 || resp.Hashes[0] != r.tree.Root() {
		t.Errorf("ServeHashes(root) = %v, %v", resp, err)
	}
	if _, err := ServeKeys(wireTree, KeysRequest{Tree: DefaultTreeConfig()}, r.list); !errors.Is(err, ErrShapeMismatch) {
		t.Errorf("ServeKeys for another partition: %v", err)
	}
	if _, err := ServeKeys(wireTree, KeysRequest{Tree: wireTree, Buckets: []uint32{1 << 14}}, r.list); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("ServeKeys for a missing bucket: %v", err)
	}
	kr, err := ServeKeys(wireTree, KeysRequest{Tree: wireTree, Buckets: seq(0, 1<<14)}, r.list)
	if err != nil || len(kr.Keys) != 100 || kr.TooMany {
		t.Errorf("ServeKeys(all) = %d keys, %v", len(kr.Keys), err)
	}
	many := func([]uint32) ([]KeyDigest, error) { return make([]KeyDigest, MaxKeysPerResponse+1), nil }
	kr, err = ServeKeys(wireTree, KeysRequest{Tree: wireTree, Buckets: []uint32{0}}, many)
	if err != nil || !kr.TooMany || len(kr.Keys) != 0 {
		t.Errorf("ServeKeys over the limit = %+v, %v; want TooMany", kr.TooMany, err)
	}
	if _, err := kr.Result(); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("Result of a TooMany response: %v", err)
	}
}

// Fuzz targets: decoding never panics, failures wrap ErrMalformed or
// ErrTooLarge, and decode(encode(decode(b))) == decode(b).

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v wraps neither ErrMalformed nor ErrTooLarge", err)
	}
}

// encoder is a message of this package.
type encoder interface{ Encode() ([]byte, error) }

// fuzzMessage seeds f with the encodings of seeds and checks decode on
// every input: no panic, failures wrap ErrMalformed or ErrTooLarge, and
// decode(encode(decode(b))) == decode(b).
func fuzzMessage[M encoder](f *testing.F, seeds []M, decode func([]byte) (M, error)) {
	for _, m := range seeds {
		b, _ := m.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		b2, err := m.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := decode(b2)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(decode(b))) = %+v, %v; want %+v", m2, err, m)
		}
	})
}

func FuzzDecodeHashesRequest(f *testing.F) {
	fuzzMessage(f, validHashesRequests(), DecodeHashesRequest)
}

func FuzzDecodeHashesResponse(f *testing.F) {
	fuzzMessage(f, []HashesResponse{{Hashes: []uint64{}}, {Hashes: []uint64{0, 1, 1 << 40, math.MaxUint64}}}, DecodeHashesResponse)
}

func FuzzDecodeKeysRequest(f *testing.F) {
	fuzzMessage(f, []KeysRequest{{Tree: wireTree, Buckets: []uint32{}}, {Tree: wireTree, Buckets: []uint32{9, 1, 2, 3, 16383}}}, DecodeKeysRequest)
}

func FuzzDecodeKeysResponse(f *testing.F) {
	fuzzMessage(f, validKeysResponses(), DecodeKeysResponse)
}

func FuzzDecodeTree(f *testing.F) {
	for _, cfg := range []TreeConfig{{LeafBits: 1, FanoutBits: 1}, {PartitionBits: 2, Partition: 3, LeafBits: 4, FanoutBits: 2}} {
		tr, _ := NewTree(cfg)
		f.Add(mustMarshal(f, tr))
		_ = tr.Update(uint64(cfg.Partition)<<(64-cfg.PartitionBits)|5, 0, 77)
		f.Add(mustMarshal(f, tr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTree(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		b2 := mustMarshal(t, tr)
		tr2, err := DecodeTree(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(levels(t, tr), levels(t, tr2)) || tr.Config() != tr2.Config() {
			t.Fatalf("decode(encode(decode(b))) differs")
		}
	})
}

func mustMarshal(tb interface{ Fatal(...any) }, t *Tree) []byte {
	b, err := t.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
