package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// walSyncer syncs badger's current write-ahead log (the mutable memtable's
// log file, "NNNNN.mem") through a descriptor of its own, so that a
// transaction whose values all stayed in the LSM tree costs one fdatasync
// instead of DB.Sync's two (DB.Sync also syncs the value log, which such a
// transaction did not touch; measured at about half the time per sync).
//
// It relies on two facts of badger v4 that the power-loss test checks:
// the mutable memtable's log is the .mem file with the highest number
// (badger numbers them upward as it creates them), and pages written
// through badger's mapping of it are synced by an fdatasync of any
// descriptor of the file (Linux tracks them in the page cache). Only the
// committer uses it (under commitMu), and it follows rotations by looking
// for the next number after each commit.
type walSyncer struct {
	dir string
	fid int
	f   *os.File
}

// newWALSyncer opens the newest write-ahead log in dir; nil if there is
// none (in memory, read-only) or the platform is not Linux.
func newWALSyncer(dir string) (*walSyncer, error) {
	if !walSyncSupported {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fid := -1
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".mem")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil && n > fid {
			fid = n
		}
	}
	if fid < 0 {
		return nil, nil
	}
	w := &walSyncer{dir: dir, fid: fid - 1}
	if err := w.follow(); err != nil {
		return nil, err
	}
	if w.f == nil {
		return nil, fmt.Errorf("write-ahead log %d vanished", fid)
	}
	return w, nil
}

func (w *walSyncer) path(fid int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%05d.mem", fid))
}

// follow moves to the newest log file after the current one.
func (w *walSyncer) follow() error {
	for {
		f, err := os.OpenFile(w.path(w.fid+1), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if w.f != nil {
			w.f.Close()
		}
		w.f = f
		w.fid++
	}
}

// sync makes the current log durable.
func (w *walSyncer) sync() error {
	if err := w.follow(); err != nil {
		return fmt.Errorf("find write-ahead log: %w", err)
	}
	return fdatasync(w.f)
}

func (w *walSyncer) close() {
	if w != nil && w.f != nil {
		w.f.Close()
	}
}
