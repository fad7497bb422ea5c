package wire

import (
	"bytes"
	"fmt"
	"math"
)

// ListRequest asks a replica for a page of its records of one partition in
// ring order (hash, then key), from ring position From on, for a scan
// (package listing). Keys not starting with Prefix are skipped but count
// against Scan, so a page with a selective prefix still ends quickly.
//
//	[partition uint32, from uint64, prefix bin, limit int, scan int]
type ListRequest struct {
	Partition uint32
	From      uint64
	Prefix    []byte
	// Limit is the most entries the answer should hold (1..MaxBatch); the
	// replica may exceed it only to finish the last hash (a collision).
	Limit int
	// Scan is the most records the replica should read for this page
	// (Limit..MaxListScan).
	Scan int
}

// MaxListScan caps ListRequest.Scan: the records one page may read.
const MaxListScan = 1 << 16

// Append appends m's encoding to b, refusing limits out of range.
func (m *ListRequest) Append(b []byte) ([]byte, error) {
	if m.Limit < 1 || m.Limit > MaxBatch || m.Scan < m.Limit || m.Scan > MaxListScan || len(m.Prefix) > MaxKey {
		return b, fmt.Errorf("list request: limit %d, scan %d, prefix of %d bytes out of range", m.Limit, m.Scan, len(m.Prefix))
	}
	b = AppendArrayLen(b, 5)
	b = AppendUint32Fixed(b, m.Partition)
	b = AppendUint64Fixed(b, m.From)
	b = AppendBin(b, m.Prefix)
	b = AppendInt(b, int64(m.Limit))
	return AppendInt(b, int64(m.Scan)), nil
}

// Decode decodes a list request; Prefix aliases b. Limits out of range
// are refused.
func (m *ListRequest) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(5)
	m.Partition = uint32(r.Uint(math.MaxUint32))
	m.From = r.Uint(math.MaxUint64)
	m.Prefix = r.Bytes(MaxKey)
	limit, scan := r.Int(), r.Int()
	if err := r.End(); err != nil {
		return err
	}
	if limit < 1 || limit > MaxBatch || scan < limit || scan > MaxListScan {
		return fmt.Errorf("%w: list request: limit %d, scan %d out of range", ErrMalformed, limit, scan)
	}
	m.Limit, m.Scan = int(limit), int(scan)
	return nil
}

// ListEntry is one record in a ListResponse: its address and its sibling
// set with every value's data left out (dots, context and tombstone flags
// are what a scan merges to decide whether the key is live).
type ListEntry struct {
	Hash uint64
	Key  []byte
	Set  []byte
}

// ListResponse is a page of a partition: Entries in ring order, and how far
// the replica read: every record with From <= hash < Next was considered
// (listed, or skipped by the prefix), or, with Done, every record from From
// to the end of the partition; Scanned records were read.
//
//	[entries [[hash uint64, key bin, set bin]...], next uint64, done bool, scanned int]
type ListResponse struct {
	Entries []ListEntry
	Next    uint64
	Done    bool
	Scanned int
}

// Append appends m's encoding to b, refusing more than MaxBatch entries
// (the replica exceeds Limit only on a hash collision, never that far).
func (m *ListResponse) Append(b []byte) ([]byte, error) {
	if len(m.Entries) > MaxBatch {
		return b, fmt.Errorf("list response of %d entries (max %d)", len(m.Entries), MaxBatch)
	}
	b = AppendArrayLen(b, 4)
	b = AppendArrayLen(b, len(m.Entries))
	for _, e := range m.Entries {
		b = AppendArrayLen(b, 3)
		b = AppendUint64Fixed(b, e.Hash)
		b = AppendBin(b, e.Key)
		b = AppendBin(b, e.Set)
	}
	b = AppendUint64Fixed(b, m.Next)
	b = AppendBool(b, m.Done)
	return AppendInt(b, int64(m.Scanned)), nil
}

// Decode decodes a list response. Keys are copied (a scan keeps them);
// sets alias b.
func (m *ListResponse) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(4)
	n := r.ArrayLen(MaxBatch)
	m.Entries = nil
	if n > 0 {
		m.Entries = make([]ListEntry, n)
	}
	for i := range m.Entries {
		r.Array(3)
		e := &m.Entries[i]
		e.Hash = r.Uint(math.MaxUint64)
		e.Key = bytes.Clone(r.Bytes(MaxTreeKeyLen))
		e.Set = r.Bytes(MaxSet)
		if r.Err() != nil {
			break
		}
	}
	m.Next = r.Uint(math.MaxUint64)
	m.Done = r.Bool()
	m.Scanned = int(r.Uint(MaxListScan))
	return r.End()
}
