package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// The key index (storage format 2): one entry per record,
//
//	'k' | partition u32 | key -> hash u64
//
// so that a partition's keys can be walked in byte order (ScanKeys, for
// listing) while the records themselves stay in (partition, hash, key)
// order, which anti-entropy's Merkle buckets (a hash range is one key
// range) and the hand-off and backup scans depend on. An entry is written
// in the same badger transaction as the record's creation and deleted in
// the same one as the record's deletion (setOp): an overwrite of a record
// that exists costs nothing more. Only when badger splits an oversized
// batch into several transactions can the two land in different ones; the
// order (index before a created record, after a deleted one) makes the only
// possible leftover an entry without a record, which ScanKeys skips.

const (
	prefixIndex byte = 'k'
	// indexHeaderLen is 'k' | partition (4).
	indexHeaderLen = 1 + 4
)

// ErrNoIndex is returned by ScanKeys while the key index of a data
// directory of format 1 has not been built: it is built at Open, unless
// the store opened read-only on a full disk, and then once it reopens for
// writing.
var ErrNoIndex = errors.New("store: key index not built yet (disk full at open)")

// indexPrefix returns 'k' | partition.
func indexPrefix(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixIndex}, p)
}

// appendIndexKey appends 'k' | partition | key.
func appendIndexKey(dst []byte, p uint32, key []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, indexHeaderLen+len(key))
	}
	dst = append(dst, prefixIndex)
	dst = binary.BigEndian.AppendUint32(dst, p)
	return append(dst, key...)
}

// indexEntryOf returns the index key and value of a record key (one
// allocation for both).
func indexEntryOf(recordKey []byte) (key, val []byte, err error) {
	k, err := parseRecordKey(recordKey)
	if err != nil {
		return nil, nil, err
	}
	n := indexHeaderLen + len(k.Key)
	b := appendIndexKey(make([]byte, 0, n+8), k.Partition, k.Key)
	b = binary.BigEndian.AppendUint64(b, k.Hash)
	return b[:n:n], b[n:], nil
}

// parseIndexEntry splits an index entry into its record's Key (Key.Key
// aliases b).
func parseIndexEntry(b, val []byte) (Key, error) {
	if len(b) < indexHeaderLen || b[0] != prefixIndex || len(b)-indexHeaderLen > MaxKeyLen || len(val) != 8 {
		return Key{}, fmt.Errorf("index entry of %d bytes, value of %d: %w", len(b), len(val), ErrCorrupt)
	}
	return Key{
		Partition: binary.BigEndian.Uint32(b[1:indexHeaderLen]),
		Hash:      binary.BigEndian.Uint64(val),
		Key:       b[indexHeaderLen:],
	}, nil
}

// indexItem parses the index entry at a badger iterator's item (Key.Key
// aliases the item's key, valid until the iterator moves).
func indexItem(item *badger.Item) (k Key, err error) {
	err = item.Value(func(v []byte) error {
		k, err = parseIndexEntry(item.Key(), v)
		return err
	})
	return k, err
}

// setIndex writes o's index entry when o creates or deletes a record
// (o.existed says whether the record was there before): before the record
// when it is created, after it when it is deleted (see the file comment).
// rec writes the record itself.
func setIndex(txn *badger.Txn, o *op, rec func() error) error {
	if len(o.key) == 0 || o.key[0] != prefixRecord || o.existed != o.del {
		return rec()
	}
	ik, iv, err := indexEntryOf(o.key)
	if err != nil {
		return rec() // validated before queuing; cannot happen
	}
	if o.del {
		if err := rec(); err != nil {
			return err
		}
		return txn.Delete(ik)
	}
	if err := txn.Set(ik, iv); err != nil {
		return err
	}
	return rec()
}

// ScanKeys calls fn for the records of one partition whose key is at or
// after from, in byte order of their keys, from one consistent snapshot,
// until fn returns an error (returned as is; a caller stops early with an
// error of its own). It seeks the key index to from: what comes before is
// not read. Each record costs an index step and a point read. k.Key and val
// are valid only during fn, which may call other Store methods, except
// Close.
func (s *Store) ScanKeys(partition uint32, from []byte, fn func(k Key, val []byte) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if s.noIndex.Load() {
		return ErrNoIndex
	}
	rk := make([]byte, 0, recordHeaderLen+64)
	where := fmt.Sprintf("scan keys of partition %d", partition)
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: indexPrefix(partition), PrefetchValues: false})
		defer it.Close()
		for it.Seek(appendIndexKey(nil, partition, from)); it.Valid(); it.Next() {
			k, err := indexItem(it.Item())
			if err != nil {
				s.corrupt.Add(1)
				continue
			}
			rk = appendRecordKey(rk[:0], k)
			rec, err := txn.Get(rk)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // left by a crash between split transactions
			}
			if err != nil {
				return fmt.Errorf("scan keys of partition %d: %w", partition, err)
			}
			if err := itemValue(rec, where, func(val []byte) error { return fn(k, val) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// buildIndex writes the key index of every record, in batches, and deletes
// index entries whose record is gone: the migration from format 1 (no
// index), also safe to run over an index that exists. It runs before the
// store is shared.
func (s *Store) buildIndex() error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ik, iv, err := indexEntryOf(it.Item().Key())
			if err != nil {
				s.corrupt.Add(1)
				continue
			}
			if err := wb.Set(ik, iv); err != nil {
				return err
			}
		}
		ix := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIndex}})
		defer ix.Close()
		rk := make([]byte, 0, recordHeaderLen+64)
		for ix.Rewind(); ix.Valid(); ix.Next() {
			item := ix.Item()
			k, err := indexItem(item)
			if err == nil {
				rk = appendRecordKey(rk[:0], k)
				if _, err = txn.Get(rk); err == nil {
					continue
				}
			}
			if err := wb.Delete(bytes.Clone(item.Key())); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return fmt.Errorf("build the key index of %q: %w", s.opts.Dir, err)
	}
	return nil
}

// itemValue calls fn with item's value and returns fn's error as it is; a
// failure to read the value comes back as "<where>: read value: …". The
// scans keep the two apart so that a caller's own error, which stops a
// scan early, is not wrapped.
func itemValue(item *badger.Item, where string, fn func(val []byte) error) error {
	var ferr error
	if err := item.Value(func(val []byte) error {
		ferr = fn(val)
		return nil
	}); err != nil {
		return fmt.Errorf("%s: read value: %w", where, err)
	}
	return ferr
}
