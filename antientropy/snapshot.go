package antientropy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
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
	return encode(func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(6); err != nil {
			return err
		}
		if err := encodeTree(e, t.cfg); err != nil {
			return err
		}
		return e.EncodeBytes(raw)
	})
}

// DecodeTree rebuilds a tree from a MarshalBinary snapshot read from disk.
// Errors wrap ErrMalformed.
func DecodeTree(b []byte) (*Tree, error) {
	var t *Tree
	err := decode(b, func(d *msgpack.Decoder, r *bytes.Reader) error {
		if err := decodeHeader(d, 6); err != nil {
			return err
		}
		cfg, err := decodeTree(d)
		if err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		n, err := d.DecodeBytesLen()
		if err != nil {
			return err
		}
		want := 8 * int(cfg.LevelWidth(cfg.Depth()))
		if n != want || n > r.Len() {
			return fmt.Errorf("leaves of %d bytes, want %d (%d left)", n, want, r.Len())
		}
		if t, err = NewTree(cfg); err != nil {
			return err
		}
		raw := make([]byte, n) // n checked against the input's length
		if err := d.ReadFull(raw); err != nil {
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
