package antientropy

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// MarshalBinary returns a snapshot of the tree: its shape and its leaves
// (inner nodes are recomputed on load). The format is the msgpack array
// [1, partitionBits, leafBits, fanoutBits, partition, leaves], leaves being
// the little-endian leaf hashes as one byte string of 8*2^LeafBits bytes.
//
// A snapshot is only valid for the store contents it was taken with; see
// docs/bench/antientropy.md for why the node rebuilds trees from a scan
// instead of loading snapshots by default.
func (t *Tree) MarshalBinary() ([]byte, error) {
	leaves := t.nodes[t.off[t.depth]:]
	raw := make([]byte, 8*len(leaves))
	for i, h := range leaves {
		binary.LittleEndian.PutUint64(raw[8*i:], h)
	}
	b := appendTree(wire.AppendArrayLen(nil, 6), t.cfg)
	return wire.AppendBin(b, raw), nil
}

// DecodeTree rebuilds a tree from a MarshalBinary snapshot read from disk.
// Errors wrap ErrMalformed.
func DecodeTree(b []byte) (*Tree, error) {
	var t *Tree
	err := decode(b, 6, func(r *wire.Reader) error {
		cfg := readTree(r)
		if r.Err() != nil {
			return nil
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		want := 8 * int(cfg.LevelWidth(cfg.Depth()))
		raw := r.Bytes(math.MaxInt)
		if r.Err() != nil {
			return nil
		}
		if len(raw) != want {
			return fmt.Errorf("leaves of %d bytes, want %d: %w", len(raw), want, ErrMalformed)
		}
		var err error
		if t, err = NewTree(cfg); err != nil {
			return err
		}
		leaves := t.nodes[t.off[t.depth]:]
		for i := range leaves {
			leaves[i] = binary.LittleEndian.Uint64(raw[8*i:])
		}
		for i := range t.dirty { // every inner node must be recomputed
			t.dirty[i] = ^uint64(0)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	return t, nil
}
