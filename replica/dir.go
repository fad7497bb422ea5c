package replica

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/store"
)

// Meta names of the data directory's own state. They are on disk: never
// rename one.
const (
	metaNodeID      = "node.id"
	metaEpochHW     = "epoch.hw"
	metaEpochFrom   = "epoch.valid"
	metaClean       = "clean"
	metaIncarnation = "incarnation"
	metaHeartbeat   = "ae.alive" // Unix ns, 8 bytes
)

// Dir is what a data directory says about itself when a node opens it.
type Dir struct {
	// Fresh is true for a new data directory.
	Fresh bool
	// Unclean is true when the last run did not close cleanly: new writes
	// then mint under fresh epochs, as the local copy may have lost the
	// last ones.
	Unclean bool
	// Deferred is true when the store refused OpenDir's own writes for
	// want of disk space (store.ErrDiskFull): the node opened read-only,
	// and Epochs does those writes before the first record or hint write
	// (see OpenDir).
	Deferred bool
	// Incarnation is this data directory's random id (never 0): a node
	// restarted on a new directory is a new incarnation of its id.
	Incarnation uint64
	// Epochs hands out the mint epochs of this directory.
	Epochs *Epochs
}

// OpenDir checks that st belongs to node id (a data directory belongs to
// one node: starting another on it would mix two nodes' records and hints),
// notes the run as not cleanly closed until CloseDir, and loads the
// incarnation and the epochs.
//
// On a store below its disk reserve (store.ErrDiskFull: a node started on
// a full disk) it still opens, with Dir.Deferred set: the writes it could
// not do (the node id of a new directory, the not-clean mark, a new
// incarnation, the epoch floor and lease) are kept, in order, and Epochs
// does them before any record or hint write (Replica.update, Mint), which
// fail with the store's error until they succeed. So the node serves reads
// and turns writable by itself when space is back, and no record is ever
// written before the not-clean mark: a record written before it could
// survive a crash the next start would take for a clean shutdown, and
// epochs would be reused.
func OpenDir(st *store.Store, id string) (Dir, error) {
	var d Dir
	var later []func() error
	// put does f now, or keeps it for later (in order) once the disk is
	// found full.
	put := func(f func() error) error {
		if len(later) == 0 {
			if err := f(); !errors.Is(err, store.ErrDiskFull) {
				return err
			}
		}
		later = append(later, f)
		return nil
	}
	got, err := st.GetMeta(metaNodeID)
	d.Fresh = errors.Is(err, store.ErrNotFound)
	switch {
	case d.Fresh:
		if err := put(func() error { return st.PutMeta(metaNodeID, []byte(id)) }); err != nil {
			return d, err
		}
	case err != nil:
		return d, fmt.Errorf("read node id from store: %w", err)
	case string(got) != id:
		return d, fmt.Errorf("it belongs to node %q, not %q", got, id)
	}
	clean, err := st.GetMeta(metaClean)
	d.Unclean = !d.Fresh && (err != nil || len(clean) != 1 || clean[0] != 1)
	if err := put(func() error { return st.PutMeta(metaClean, []byte{0}) }); err != nil {
		return d, err
	}
	if d.Incarnation, err = loadIncarnation(st, d.Fresh, put); err != nil {
		return d, err
	}
	base, err := randomUint64()
	if err != nil {
		return d, err
	}
	d.Epochs, err = openEpochs(st, base, d.Unclean, put)
	if err != nil {
		return d, err
	}
	d.Deferred = len(later) > 0
	d.Epochs.setDeferred(later)
	return d, nil
}

// CloseDir notes a clean shutdown: the next OpenDir may trust the epochs
// of the stored records. Call it after the last write, before closing st.
func CloseDir(st *store.Store) error { return st.PutMeta(metaClean, []byte{1}) }

// loadIncarnation reads the directory's incarnation, creating it for a new
// directory (or one written before incarnations existed); put writes it.
func loadIncarnation(st *store.Store, fresh bool, put func(func() error) error) (uint64, error) {
	v, ok, err := getUint64Meta(st, metaIncarnation)
	if err != nil {
		return 0, err
	}
	if ok && !fresh {
		return v, nil
	}
	if v, err = randomUint64(); err != nil {
		return 0, err
	}
	v |= 1
	return v, put(func() error { return putUint64Meta(st, metaIncarnation, v) })
}

func randomUint64() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

func getUint64Meta(st *store.Store, name string) (uint64, bool, error) {
	b, err := st.GetMeta(name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("meta %s: %d bytes, want 8", name, len(b))
	}
	return binary.BigEndian.Uint64(b), true, nil
}

func putUint64Meta(st *store.Store, name string, v uint64) error {
	return st.PutMeta(name, binary.BigEndian.AppendUint64(nil, v))
}

// Heartbeat persists t as the last moment this replica was known to be
// running with its records open (package antientropy's quarantine rule
// reads it at the next start).
func Heartbeat(st *store.Store, t time.Time) error {
	return putUint64Meta(st, metaHeartbeat, uint64(t.UnixNano()))
}

// LastHeartbeat returns the last Heartbeat; ok is false for a directory
// that never had one.
func LastHeartbeat(st *store.Store) (t time.Time, ok bool, err error) {
	v, ok, err := getUint64Meta(st, metaHeartbeat)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	return time.Unix(0, int64(v)), true, nil
}
