package ring

import "fmt"

// Key addresses one key: the partition it belongs to, its 64-bit hash
// (which places it on the ring, orders it in the store and puts it in a
// Merkle bucket) and its bytes. It is the one key type the coordinator, the
// replica, the store and the repair loops pass around.
type Key struct {
	Partition uint32
	Hash      uint64
	Key       []byte
}

// KeyOf addresses key on r with the ring's own hash. The result's Key
// aliases key.
func (r *Ring) KeyOf(key []byte) Key {
	h := r.hash(key)
	return Key{Partition: r.PartitionOfHash(h), Hash: h, Key: key}
}

// CheckKey addresses key on r after checking what a peer claims about it:
// that it is 1 to maxLen bytes and that partition p and hash h are r's own,
// so a message cannot file a key under another partition.
func (r *Ring) CheckKey(p uint32, h uint64, key []byte, maxLen int) (Key, error) {
	if len(key) == 0 || len(key) > maxLen {
		return Key{}, fmt.Errorf("key of %d bytes", len(key))
	}
	k := r.KeyOf(key)
	if k.Hash != h || k.Partition != p {
		return Key{}, fmt.Errorf("key address mismatch: partition %d hash %x, want %d %x", p, h, k.Partition, k.Hash)
	}
	return k, nil
}
