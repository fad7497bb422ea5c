package wire

import (
	"bytes"
	"fmt"
	"math"
)

// Messages of the anti-entropy repair, reaping and quarantine (methods 6-9;
// the tree messages of methods 4 and 5 are package antientropy's). Each is
// one msgpack array whose first element is aeVersion; decoders refuse
// other versions, and copy the keys and sets they return.
//
//	ReadManyRequest:    [1, partition, [[hash, key]...]]
//	ReadManyResponse:   [1, [[found, confirmed, set or nil]...]]
//	MergeManyRequest:   [1, partition, [[hash, key, set]...]]
//	MergeManyResponse:  [1, changed]
//	TombAckRequest:     [1, partition, [[hash, key, setDigest]...]]
//	TombAckResponse:    [1, [held...]]
//	PeerStatusRequest:  [1, clear]
//	PeerStatusResponse: [1, excluded, quarantined]
const aeVersion = 1

// KeyRef names one key of a partition.
type KeyRef struct {
	Hash uint64
	Key  []byte
}

// ReadManyRequest asks a peer for its records of some keys of a partition.
type ReadManyRequest struct {
	Partition uint32
	Keys      []KeyRef
}

// ReadManyEntry is one key's copy on the answering replica. Confirmed is
// set when the copy is all tombstones that every primary is known to hold:
// the asker then leaves it to the reaper instead of copying it.
type ReadManyEntry struct {
	Found, Confirmed bool
	Set              []byte
}

// ReadManyResponse answers a prefix of the request's keys (at least one):
// the answering side stops once BatchBytes of sets are in, and the asker
// asks again for the rest.
type ReadManyResponse struct {
	Entries []ReadManyEntry
}

// MergeManyEntry is one set for the peer to merge into its record.
type MergeManyEntry struct {
	Hash uint64
	Key  []byte
	Set  []byte
}

// MergeManyRequest sends sets of one partition for the peer to merge.
type MergeManyRequest struct {
	Partition uint32
	Entries   []MergeManyEntry
}

// MergeManyResponse says how many of the records the merges changed.
type MergeManyResponse struct {
	Changed int
}

// TombAckEntry names a key and the digest of the set the asker holds.
type TombAckEntry struct {
	Hash   uint64
	Key    []byte
	Digest uint64
}

// TombAckRequest asks whether the peer holds the asker's tombstone sets.
type TombAckRequest struct {
	Partition uint32
	Entries   []TombAckEntry
}

// TombAckResponse says, per key, whether the answering replica holds the
// asker's set (same digest) or nothing at all for it.
type TombAckResponse struct {
	Held []bool
}

// PeerStatusRequest asks a peer whether it reaped tombstones without the
// asker (its exclusion ledger); Clear tells it the asker has dropped its
// data since, so the entry can go.
type PeerStatusRequest struct {
	Clear bool
}

// PeerStatusResponse answers a PeerStatusRequest.
type PeerStatusResponse struct {
	Excluded, Quarantined bool
}

func checkBatch(n int) error {
	if n > MaxBatch {
		return fmt.Errorf("%w: %d keys over %d", ErrTooLarge, n, MaxBatch)
	}
	return nil
}

// aeHeader appends the header of a message of n elements, version first.
func aeHeader(b []byte, n int) []byte { return AppendUint(AppendArrayLen(b, n), aeVersion) }

// aeReader starts reading a message of n elements: the array header and
// the version.
func aeReader(b []byte, n int) Reader {
	r := NewReader(b)
	r.Array(n)
	if v := r.Uint(math.MaxUint64); r.Err() == nil && v != aeVersion {
		r.Fail(fmt.Errorf("%w: version %d, want %d", ErrMalformed, v, aeVersion))
	}
	return r
}

// appendBatch appends a batch message: [version, partition, [entry...]],
// or [version, [entry...]] without a partition, each entry written by
// entry. It refuses more than MaxBatch entries.
func appendBatch[E any](b []byte, partition *uint32, entries []E, entry func(b []byte, e *E) []byte) ([]byte, error) {
	if err := checkBatch(len(entries)); err != nil {
		return nil, err
	}
	if partition != nil {
		b = AppendUint(aeHeader(b, 3), uint64(*partition))
	} else {
		b = aeHeader(b, 2)
	}
	b = AppendArrayLen(b, len(entries))
	for i := range entries {
		b = entry(b, &entries[i])
	}
	return b, nil
}

// decodeBatch decodes what appendBatch wrote, each entry read by entry.
func decodeBatch[E any](b []byte, partition *uint32, entries *[]E, entry func(r *Reader, e *E)) error {
	n := 2
	if partition != nil {
		n = 3
	}
	r := aeReader(b, n)
	if partition != nil {
		*partition = uint32(r.Uint(math.MaxUint32))
	}
	*entries = make([]E, r.ArrayLen(MaxBatch))
	for i := range *entries {
		entry(&r, &(*entries)[i])
	}
	return r.End()
}

// appendKeyEntry appends an entry [hash, key, ...] of fields elements: the
// caller appends the fields after the key.
func appendKeyEntry(b []byte, fields int, h uint64, key []byte) []byte {
	return AppendBin(AppendUint(AppendArrayLen(b, fields), h), key)
}

// readKeyEntry reads the header and the hash and key of an entry of fields
// elements; the key is copied and must not be empty.
func readKeyEntry(r *Reader, fields int) (uint64, []byte) {
	r.Array(fields)
	h := r.Uint(math.MaxUint64)
	k := r.Bytes(MaxKey)
	if r.Err() == nil && len(k) == 0 {
		r.Fail(fmt.Errorf("%w: empty key", ErrMalformed))
	}
	return h, bytes.Clone(k)
}

// Append appends m's encoding to b; it refuses more than MaxBatch keys.
func (m *ReadManyRequest) Append(b []byte) ([]byte, error) {
	return appendBatch(b, &m.Partition, m.Keys, func(b []byte, k *KeyRef) []byte { return appendKeyEntry(b, 2, k.Hash, k.Key) })
}

// Decode decodes a read-many request.
func (m *ReadManyRequest) Decode(b []byte) error {
	return decodeBatch(b, &m.Partition, &m.Keys, func(r *Reader, k *KeyRef) { k.Hash, k.Key = readKeyEntry(r, 2) })
}

// Append appends m's encoding to b; it refuses more than MaxBatch entries.
func (m *ReadManyResponse) Append(b []byte) ([]byte, error) {
	return appendBatch(b, nil, m.Entries, func(b []byte, en *ReadManyEntry) []byte {
		return AppendBin(AppendBool(AppendBool(AppendArrayLen(b, 3), en.Found), en.Confirmed), en.Set)
	})
}

// Decode decodes a read-many response.
func (m *ReadManyResponse) Decode(b []byte) error {
	return decodeBatch(b, nil, &m.Entries, func(r *Reader, en *ReadManyEntry) {
		r.Array(3)
		en.Found = r.Bool()
		en.Confirmed = r.Bool()
		en.Set = bytes.Clone(r.Bytes(MaxSet))
		if r.Err() == nil && en.Found != (en.Set != nil) {
			r.Fail(fmt.Errorf("%w: found without a set, or a set without found", ErrMalformed))
		}
	})
}

// Append appends m's encoding to b; it refuses more than MaxBatch entries.
func (m *MergeManyRequest) Append(b []byte) ([]byte, error) {
	return appendBatch(b, &m.Partition, m.Entries, func(b []byte, en *MergeManyEntry) []byte {
		return AppendBin(appendKeyEntry(b, 3, en.Hash, en.Key), en.Set)
	})
}

// Decode decodes a merge-many request.
func (m *MergeManyRequest) Decode(b []byte) error {
	return decodeBatch(b, &m.Partition, &m.Entries, func(r *Reader, en *MergeManyEntry) {
		en.Hash, en.Key = readKeyEntry(r, 3)
		en.Set = bytes.Clone(r.Bytes(MaxSet))
		if r.Err() == nil && en.Set == nil {
			r.Fail(fmt.Errorf("%w: nil set", ErrMalformed))
		}
	})
}

// Append appends m's encoding to b. It never fails.
func (m *MergeManyResponse) Append(b []byte) ([]byte, error) {
	return AppendUint(aeHeader(b, 2), uint64(max(0, m.Changed))), nil
}

// Decode decodes a merge-many response.
func (m *MergeManyResponse) Decode(b []byte) error {
	r := aeReader(b, 2)
	m.Changed = int(r.Uint(MaxBatch))
	return r.End()
}

// Append appends m's encoding to b; it refuses more than MaxBatch entries.
func (m *TombAckRequest) Append(b []byte) ([]byte, error) {
	return appendBatch(b, &m.Partition, m.Entries, func(b []byte, en *TombAckEntry) []byte {
		return AppendUint(appendKeyEntry(b, 3, en.Hash, en.Key), en.Digest)
	})
}

// Decode decodes a tombstone-ack request.
func (m *TombAckRequest) Decode(b []byte) error {
	return decodeBatch(b, &m.Partition, &m.Entries, func(r *Reader, en *TombAckEntry) {
		en.Hash, en.Key = readKeyEntry(r, 3)
		en.Digest = r.Uint(math.MaxUint64)
	})
}

// Append appends m's encoding to b; it refuses more than MaxBatch answers.
func (m *TombAckResponse) Append(b []byte) ([]byte, error) {
	return appendBatch(b, nil, m.Held, func(b []byte, h *bool) []byte { return AppendBool(b, *h) })
}

// Decode decodes a tombstone-ack response.
func (m *TombAckResponse) Decode(b []byte) error {
	return decodeBatch(b, nil, &m.Held, func(r *Reader, h *bool) { *h = r.Bool() })
}

// Append appends m's encoding to b. It never fails.
func (m *PeerStatusRequest) Append(b []byte) ([]byte, error) {
	return AppendBool(aeHeader(b, 2), m.Clear), nil
}

// Decode decodes a peer-status request.
func (m *PeerStatusRequest) Decode(b []byte) error {
	r := aeReader(b, 2)
	m.Clear = r.Bool()
	return r.End()
}

// Append appends m's encoding to b. It never fails.
func (m *PeerStatusResponse) Append(b []byte) ([]byte, error) {
	return AppendBool(AppendBool(aeHeader(b, 3), m.Excluded), m.Quarantined), nil
}

// Decode decodes a peer-status response.
func (m *PeerStatusResponse) Decode(b []byte) error {
	r := aeReader(b, 3)
	m.Excluded = r.Bool()
	m.Quarantined = r.Bool()
	return r.End()
}
