package antientropy

import (
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/internal/golden"
)

// TestWireGolden pins the bytes of the tree messages as this version sends
// them: nodes of different versions must keep understanding each other.
func TestWireGolden(t *testing.T) {
	var s []golden.Sample
	add := func(name string, b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s = append(s, golden.Sample{Name: name, Bytes: b})
	}
	for i, m := range validHashesRequests() {
		b, err := m.Encode()
		add(fmt.Sprintf("hashes_req/%d", i), b, err)
	}
	for i, m := range []HashesResponse{{}, {Hashes: []uint64{0, 1, 127, 128, 255, 256, 1 << 16, 1 << 32, 1<<64 - 1}}, {Hashes: make([]uint64, 20)}} {
		b, err := m.Encode()
		add(fmt.Sprintf("hashes_resp/%d", i), b, err)
	}
	hashes := make([]uint64, 70000%MaxNodesPerRequest+100)
	for i := range hashes {
		hashes[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	b, err := HashesResponse{Hashes: hashes}.Encode()
	add("hashes_resp/many", b, err)
	for i, m := range []KeysRequest{
		{Tree: wireTree, Buckets: []uint32{}},
		{Tree: wireTree, Buckets: []uint32{5}},
		{Tree: wireTree, Buckets: append(seq(0, 300), 1000, 1002, 16383)},
	} {
		b, err := m.Encode()
		add(fmt.Sprintf("keys_req/%d", i), b, err)
	}
	for i, m := range validKeysResponses() {
		b, err := m.Encode()
		add(fmt.Sprintf("keys_resp/%d", i), b, err)
	}
	many := make([]KeyDigest, 40)
	for i := range many {
		many[i] = KeyDigest{Key: []byte(fmt.Sprintf("key-%03d", i)), Hash: uint64(i) << 40, Digest: uint64(i + 1)}
	}
	b, err = KeysResponse{Keys: many}.Encode()
	add("keys_resp/many", b, err)
	golden.Check(t, "testdata/wire.golden", s)
}
