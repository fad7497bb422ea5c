package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// FormatVersion is the storage format this build writes: the key layout
// of the package doc, the hint value header (hintValueVersion) and the
// encoding of the format meta itself. Any change to what the store puts on
// disk bumps it; the golden files in testdata/golden fail first, on
// purpose. A data directory records its version in the meta value
// FormatMetaName.
//
// Versions:
//
//	1: records, hints and meta. Directories written before versions were
//	   recorded have this layout and no format meta.
//	2: 1 plus the key index ('k' | partition | key -> hash, index.go). Open
//	   migrates a directory of format 1 (or unstamped) by building the
//	   index from the records.
const FormatVersion uint32 = 2

// minFormatVersion is the oldest format this build opens (migrating it to
// FormatVersion at Open, in migrateFormat).
const minFormatVersion uint32 = 1

// FormatMetaName is the meta value holding the data directory's storage
// format: 4 bytes, big-endian. Meta names starting with ReservedMetaPrefix
// belong to the store: PutMeta refuses them.
const (
	FormatMetaName     = ReservedMetaPrefix + "format"
	ReservedMetaPrefix = "store."
)

// encodeFormat is the format meta value of version v.
func encodeFormat(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func decodeFormat(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("format meta of %d bytes: %w", len(b), ErrCorrupt)
	}
	return binary.BigEndian.Uint32(b), nil
}

// checkFormat reads the data directory's format version at Open and
// refuses versions this build does not know. A directory without a format
// meta is either new or was written before versions were recorded, in
// layout 1: it is migrated from 1 (for a new one, building an empty index
// costs nothing). An older known version is migrated. It runs before the
// store is shared, so it uses badger directly.
func (s *Store) checkFormat() error {
	var raw []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(FormatMetaName))
		if err != nil {
			return err
		}
		raw, err = item.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return s.migrateFormat(1)
	case err != nil:
		return fmt.Errorf("read storage format of %q: %w", s.opts.Dir, err)
	}
	v, err := decodeFormat(raw)
	if err != nil {
		return fmt.Errorf("storage format of %q: %w", s.opts.Dir, err)
	}
	switch {
	case v > FormatVersion:
		return fmt.Errorf("%w: data directory %q has storage format version %d, and this build reads versions %d to %d: run a newer quorumkv on it",
			ErrFormat, s.opts.Dir, v, minFormatVersion, FormatVersion)
	case v < minFormatVersion:
		return fmt.Errorf("%w: data directory %q has storage format version %d, older than any this build reads (%d to %d)",
			ErrFormat, s.opts.Dir, v, minFormatVersion, FormatVersion)
	case v < FormatVersion:
		return s.migrateFormat(v)
	}
	return nil
}

// migrateFormat rewrites a directory of an older known format into
// FormatVersion, then stamps it. From 1 to 2 it builds the key index. A
// store opened read-only (full disk) cannot: it opens without the index
// (ScanKeys answers ErrNoIndex) and migrates when it reopens for writing.
func (s *Store) migrateFormat(from uint32) error {
	if from != 1 {
		return fmt.Errorf("%w: no migration from storage format %d to %d", ErrFormat, from, FormatVersion)
	}
	if s.readOnlyOpen.Load() {
		s.noIndex.Store(true)
		return nil
	}
	if err := s.buildIndex(); err != nil {
		return err
	}
	if err := s.stampFormat(FormatVersion); err != nil {
		return err
	}
	s.noIndex.Store(false)
	return nil
}

// stampFormat records format v, synced. A store opened read-only (full
// disk) is not stamped: it will be when it reopens for writing.
func (s *Store) stampFormat(v uint32) error {
	if s.readOnlyOpen.Load() {
		return nil
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(metaKey(FormatMetaName), encodeFormat(v))
	})
	if err == nil && !s.opts.InMemory {
		err = s.sync(false)
	}
	if err != nil {
		return fmt.Errorf("record storage format %d in %q: %w", v, s.opts.Dir, err)
	}
	return nil
}

// validateCallerMetaName checks a meta name given to PutMeta.
func validateCallerMetaName(name string) error {
	if err := validateMetaName(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, ReservedMetaPrefix) {
		return fmt.Errorf("meta name %q: %w", name, ErrReservedName)
	}
	return nil
}
