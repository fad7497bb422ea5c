package listing

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// ScanFunc walks a replica's stored records (replica envelopes) of
// partition p with key hashes lo to hi, in store order (hash, then key).
type ScanFunc func(p uint32, lo, hi uint64, fn func(k ring.Key, rec []byte) error) error

// KeysFunc walks a replica's stored records of partition p in byte order of
// their keys, from key from on (a seek, not a walk over what comes before).
type KeysFunc func(p uint32, from []byte, fn func(k ring.Key, rec []byte) error) error

// errStop ends a walk early.
var errStop = errors.New("stop")

// resolve finds where a page asked from cursor position from starts on
// this replica: the partition's start (nil), or the smallest key of hash
// from it holds (ok false if it holds none).
func resolve(rg *ring.Ring, scan ScanFunc, p uint32, from uint64) (start []byte, ok bool, err error) {
	if from == rg.PartitionStart(p) {
		return nil, true, nil
	}
	err = scan(p, from, from, func(k ring.Key, _ []byte) error {
		start, ok = bytes.Clone(k.Key), true
		return errStop
	})
	if err != nil && err != errStop {
		return nil, false, err
	}
	return start, ok, nil
}

// ReplicaPage is a replica's answer to a page request
// (wire.MethodListOrdered): it walks the replica's records of
// req.Partition in byte order of keys from the page's start (req.FromKey,
// or the key req.From resolves to: see resolve), seeking to the start or
// the prefix. The caller has checked that req.From is a position of that
// partition on rg. Tombstones every primary confirmed holding are left
// out: no replica can hold a value they would have to supersede in the
// merge. Other tombstones go out, so that they do.
func ReplicaPage(rg *ring.Ring, scan ScanFunc, keys KeysFunc, req wire.ListRequest) (wire.ListResponse, error) {
	start, ok := req.FromKey, true
	if !req.HasKey {
		var err error
		if start, ok, err = resolve(rg, scan, req.Partition, req.From); err != nil {
			return wire.ListResponse{}, err
		}
	}
	resp := wire.ListResponse{Start: start, Resolved: ok}
	if !ok {
		return resp, nil
	}
	b := Builder{Prefix: req.Prefix, Limit: req.Limit, Scan: req.Scan, Bytes: wire.BatchBytes, Keep: rg.PartitionStart(req.Partition)}
	err := keys(req.Partition, seekKey(start, req.Prefix), func(k ring.Key, rec []byte) error {
		if b.Offer(k.Hash, k.Key) {
			return errStop
		}
		h, err := replica.ParseHeader(rec)
		if err != nil || h.Confirmed() {
			return nil // a malformed record reads as absent everywhere
		}
		set, err := vclock.DecodeSet(rec[h.SetOff:])
		if err != nil {
			return nil
		}
		enc, err := Strip(set).MarshalBinary()
		if err != nil {
			return err
		}
		resp.Entries = append(resp.Entries, wire.ListEntry{Hash: k.Hash, Key: bytes.Clone(k.Key), Set: enc})
		b.Add(len(k.Key) + len(enc))
		return nil
	})
	if err != nil && err != errStop {
		return wire.ListResponse{}, err
	}
	if len(resp.Entries) > wire.MaxBatch {
		return wire.ListResponse{}, fmt.Errorf("list: %d keys share the partition's start hash", len(resp.Entries))
	}
	resp.NextKey, resp.NextHash, resp.Done = b.End()
	resp.Scanned = b.Scanned()
	return resp, nil
}

// PageOf decodes a replica's page answer (from names the replica, for
// errors).
func PageOf(from ring.NodeID, resp wire.ListResponse) (Page, error) {
	pg := Page{Start: resp.Start, Resolved: resp.Resolved, NextKey: resp.NextKey, NextHash: resp.NextHash,
		Done: resp.Done, Scanned: resp.Scanned, Entries: make([]Entry, len(resp.Entries))}
	for i, e := range resp.Entries {
		set, err := vclock.DecodeSet(e.Set)
		if err != nil {
			return Page{}, fmt.Errorf("list page from %s: %w", from, err)
		}
		pg.Entries[i] = Entry{Hash: e.Hash, Key: e.Key, Set: set}
	}
	return pg, nil
}
