package listing

import (
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// ScanFunc walks a replica's stored records (replica envelopes) of
// partition p with key hashes lo to hi, in store order.
type ScanFunc func(p uint32, lo, hi uint64, fn func(k ring.Key, rec []byte) error) error

// ReplicaPage is a replica's answer to a page request (wire.MethodList):
// it walks the replica's records of req.Partition in store order from
// req.From (a seek, not a scan of what comes before), which the caller
// has checked is a position of that partition on rg. Tombstones every
// primary confirmed holding are left out: no replica can hold a value they
// would have to supersede in the merge. Other tombstones go out, so that
// they do.
func ReplicaPage(rg *ring.Ring, scan ScanFunc, req wire.ListRequest) (wire.ListResponse, error) {
	end := ^uint64(0)
	if int(req.Partition)+1 < rg.Partitions() {
		end = rg.PartitionStart(req.Partition+1) - 1
	}
	b := Builder{Prefix: req.Prefix, Limit: req.Limit, Scan: req.Scan, Bytes: wire.BatchBytes}
	var resp wire.ListResponse
	errStop := errors.New("page full")
	err := scan(req.Partition, req.From, end, func(k ring.Key, rec []byte) error {
		take, stop := b.Offer(k.Hash, k.Key)
		if stop {
			return errStop
		}
		if !take {
			return nil
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
		resp.Entries = append(resp.Entries, wire.ListEntry{Hash: k.Hash, Key: append([]byte(nil), k.Key...), Set: enc})
		b.Add(len(k.Key) + len(enc))
		return nil
	})
	if err != nil && err != errStop {
		return wire.ListResponse{}, err
	}
	if len(resp.Entries) > wire.MaxBatch {
		return wire.ListResponse{}, fmt.Errorf("list: %d keys share one hash", len(resp.Entries))
	}
	resp.Next, resp.Done = b.End()
	resp.Scanned = b.Scanned()
	return resp, nil
}

// PageOf decodes a replica's page answer (from names the replica, for
// errors).
func PageOf(from ring.NodeID, resp wire.ListResponse) (Page, error) {
	pg := Page{Next: resp.Next, Done: resp.Done, Scanned: resp.Scanned, Entries: make([]Entry, len(resp.Entries))}
	for i, e := range resp.Entries {
		set, err := vclock.DecodeSet(e.Set)
		if err != nil {
			return Page{}, fmt.Errorf("list page from %s: %w", from, err)
		}
		pg.Entries[i] = Entry{Hash: e.Hash, Key: e.Key, Set: set}
	}
	return pg, nil
}
