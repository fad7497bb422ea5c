package ring

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
