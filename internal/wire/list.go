package wire

import (
	"bytes"
	"fmt"
	"math"
)

// ListRequest asks a replica for a page of its records of one partition in
// byte order of their keys (MethodListOrdered), for a scan (package
// listing). The page starts at FromKey when HasKey is set; otherwise From
// is a scan's cursor: the partition's start, or the hash of the key the
// page starts at, which the replica resolves (ListResponse.Resolved). Only
// keys starting with Prefix are read: the walk seeks to them and ends
// after them.
//
//	[partition uint32, from uint64, from key bin, has key bool, prefix bin, limit int, scan int]
type ListRequest struct {
	Partition uint32
	From      uint64
	FromKey   []byte
	HasKey    bool
	Prefix    []byte
	// Limit is the most entries the answer should hold (1..MaxBatch); the
	// replica exceeds it only to pass a key whose hash is the partition's
	// start (see package listing).
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
	if len(m.FromKey) > MaxKey {
		return b, fmt.Errorf("list request: from key of %d bytes", len(m.FromKey))
	}
	b = AppendArrayLen(b, 7)
	b = AppendUint32Fixed(b, m.Partition)
	b = AppendUint64Fixed(b, m.From)
	b = AppendBin(b, m.FromKey)
	b = AppendBool(b, m.HasKey)
	b = AppendBin(b, m.Prefix)
	b = AppendInt(b, int64(m.Limit))
	return AppendInt(b, int64(m.Scan)), nil
}

// Decode decodes a list request; FromKey and Prefix alias b. Limits out
// of range are refused.
func (m *ListRequest) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(7)
	m.Partition = uint32(r.Uint(math.MaxUint32))
	m.From = r.Uint(math.MaxUint64)
	m.FromKey = r.Bytes(MaxKey)
	m.HasKey = r.Bool()
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

// ListResponse is a page of a partition: Entries in byte order of their
// keys from Start (the request's FromKey, or what its From resolved to;
// nil is the partition's start), and how far the replica read: every
// record with Start <= key < NextKey was considered (listed, or left out
// as a confirmed tombstone), or, with Done, every record from Start to the
// end of the partition (or of the prefix); NextHash is NextKey's hash.
// Resolved false: the replica holds no key of hash From, so it could not
// place the page; Entries is empty and the caller asks again with a key.
// Scanned records were read.
//
//	[entries [[hash uint64, key bin, set bin]...], start bin, resolved bool,
//	 next key bin, next hash uint64, done bool, scanned int]
type ListResponse struct {
	Entries  []ListEntry
	Start    []byte
	Resolved bool
	NextKey  []byte
	NextHash uint64
	Done     bool
	Scanned  int
}

// Append appends m's encoding to b, refusing more than MaxBatch entries
// (the replica exceeds Limit only on a hash collision, never that far).
func (m *ListResponse) Append(b []byte) ([]byte, error) {
	if len(m.Entries) > MaxBatch {
		return b, fmt.Errorf("list response of %d entries (max %d)", len(m.Entries), MaxBatch)
	}
	if len(m.Start) > MaxKey || len(m.NextKey) > MaxKey {
		return b, fmt.Errorf("list response: start of %d bytes, next of %d", len(m.Start), len(m.NextKey))
	}
	b = AppendArrayLen(b, 7)
	b = AppendArrayLen(b, len(m.Entries))
	for _, e := range m.Entries {
		b = AppendArrayLen(b, 3)
		b = AppendUint64Fixed(b, e.Hash)
		b = AppendBin(b, e.Key)
		b = AppendBin(b, e.Set)
	}
	b = AppendBin(b, m.Start)
	b = AppendBool(b, m.Resolved)
	b = AppendBin(b, m.NextKey)
	b = AppendUint64Fixed(b, m.NextHash)
	b = AppendBool(b, m.Done)
	return AppendInt(b, int64(m.Scanned)), nil
}

// Decode decodes a list response. Keys are copied (a scan keeps them);
// sets alias b.
func (m *ListResponse) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(7)
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
	m.Start = bytes.Clone(r.Bytes(MaxKey))
	m.Resolved = r.Bool()
	m.NextKey = bytes.Clone(r.Bytes(MaxKey))
	m.NextHash = r.Uint(math.MaxUint64)
	m.Done = r.Bool()
	m.Scanned = int(r.Uint(MaxListScan))
	return r.End()
}
