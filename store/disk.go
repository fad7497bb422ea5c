package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Disk-full policy (see Options.MinFreeBytes and the package doc).
//
// Badger writes its write-ahead log, value log and tables through
// memory-mapped files that it creates sparse and grows by touching pages.
// On a full file system the first touch of a page that has no block gets
// SIGBUS, which kills the process inside a badger goroutine (no error can
// be returned). So the store must stop before the disk is full: it keeps a
// reserve of free space that its own record and hint writes never use, and
// leaves the reserve to what badger writes by itself once writes stop
// (flushing the memtables, compactions) and to small writes that keep the
// node running (meta values, deletes).

const (
	// largeWrite: a write of at least this many bytes (charged) checks the
	// file system's free space first, whatever the last check's age.
	largeWrite = 1 << 20
	// recheckAfter: a write about to be refused checks again if the last
	// check is older than this, so a refusal is based on a fresh figure.
	recheckAfter = 10 * time.Millisecond
	// openSlack is room, beyond the write-ahead logs to replay and two
	// memtables, that badger needs to open for writing: new log files'
	// first pages, the manifest, the pid file.
	openSlack = 4 << 20
)

// writeCost is what a write of a badger key and value is charged against
// the free space: the write-ahead log entry now and the table entry it
// becomes at the next flush (the log is deleted after that), plus headers.
func writeCost(key, val []byte) int64 {
	return 2*int64(len(key)+len(val)) + 64
}

// diskSnap is one statfs of the data directory's file system.
type diskSnap struct {
	avail   uint64 // bytes available to the process (f_bavail)
	total   uint64
	reserve uint64 // max(MinFreeBytes, MinFreePercent of total, compactionNeed)
	at      time.Time
}

// diskGuard keeps the store's writes out of the reserve. Admission is a
// few atomic operations: the free space comes from a snapshot taken at most
// Options.DiskCheckInterval ago (by the store's disk loop, or by a large
// write), less the bytes admitted since.
type diskGuard struct {
	dir      string
	minBytes uint64
	minPct   float64
	statfs   func(dir string) (avail, total uint64, err error)
	log      *slog.Logger
	// need returns what badger's flushes and compactions may take on
	// their own (compactionNeed); nil until badger is open. Set before the
	// store is shared.
	need func() uint64

	refreshMu sync.Mutex // one statfs at a time; guards lastErr
	lastErr   string     // last statfs error logged ("" after a success)

	snap    atomic.Pointer[diskSnap]
	since   atomic.Int64 // bytes admitted since snap was taken
	pending atomic.Int64 // bytes admitted and not yet committed
	full    atomic.Bool  // record and hint writes are refused
}

func newDiskGuard(o Options, log *slog.Logger) *diskGuard {
	if o.InMemory || (o.MinFreeBytes == 0 && o.MinFreePercent == 0) {
		return nil
	}
	fs := o.statfs
	if fs == nil {
		fs = statfs
	}
	return &diskGuard{dir: o.Dir, minBytes: uint64(o.MinFreeBytes), minPct: o.MinFreePercent, statfs: fs, log: log}
}

// refresh takes a new snapshot and updates the full state: full when the
// space available less the bytes still pending is below the reserve, and
// writable again only above the reserve plus a sixteenth of it, so the
// state does not flap around the line. On a statfs error it keeps the last
// snapshot (nil if there is none) and logs the error once.
func (g *diskGuard) refresh() *diskSnap {
	g.refreshMu.Lock()
	defer g.refreshMu.Unlock()
	avail, total, err := g.statfs(g.dir)
	if err != nil {
		if msg := err.Error(); msg != g.lastErr {
			g.lastErr = msg
			g.log.Warn("cannot check free disk space; keeping the last figure", "op", "disk", "err", err)
		}
		return g.snap.Load()
	}
	g.lastErr = ""
	snap := &diskSnap{avail: avail, total: total, at: time.Now()}
	snap.reserve = max(g.minBytes, uint64(g.minPct/100*float64(total)))
	if g.need != nil {
		snap.reserve = max(snap.reserve, g.need())
	}
	pending := g.pending.Load()
	g.since.Store(pending)
	g.snap.Store(snap)
	est := int64(avail) - pending
	switch full := g.full.Load(); {
	case full && est >= int64(snap.reserve+snap.reserve/16):
		g.full.Store(false)
		g.log.Info("free disk space is back above the reserve: writes accepted again", "op", "disk",
			"avail", avail, "reserve", snap.reserve)
	case !full && est < int64(snap.reserve):
		g.setFull(snap)
	}
	return snap
}

func (g *diskGuard) setFull(snap *diskSnap) {
	if g.full.CompareAndSwap(false, true) {
		g.log.Error("disk nearly full: refusing record and hint writes until space is freed; reads go on", "op", "disk",
			"dir", g.dir, "avail", snap.avail, "reserve", snap.reserve)
	}
}

// admit charges a write of cost bytes against the free space, or refuses
// it with an error wrapping ErrDiskFull. low is for the writes allowed to
// use the upper half of the reserve (meta values and deletes).
func (g *diskGuard) admit(cost int64, low bool) error {
	snap := g.snap.Load()
	if cost >= largeWrite || snap == nil {
		if s := g.refresh(); s != nil {
			snap = s
		}
	}
	if snap == nil { // never measured: nothing to go by
		g.pending.Add(cost)
		return nil
	}
	for try := 0; ; try++ {
		floor := int64(snap.reserve)
		if low {
			floor /= 2
		}
		if low || !g.full.Load() {
			if int64(snap.avail)-g.since.Add(cost) >= floor {
				g.pending.Add(cost)
				return nil
			}
			g.since.Add(-cost)
		}
		if try > 0 || time.Since(snap.at) < recheckAfter {
			if !low {
				g.setFull(snap)
			}
			return g.fullError(snap)
		}
		if s := g.refresh(); s != nil {
			snap = s
		}
	}
}

// committed releases the pending charge of committed (or failed) writes.
func (g *diskGuard) committed(cost int64) { g.pending.Add(-cost) }

func (g *diskGuard) fullError(snap *diskSnap) error {
	return fmt.Errorf("%w: %d bytes available on the file system of %s, below the reserve of %d kept for the store's own work (MinFreeBytes, MinFreePercent)",
		ErrDiskFull, snap.avail, g.dir, snap.reserve)
}

// compactionNeed estimates the disk space badger may take on its own, on
// top of what the data uses now, once the store stops writing: flushing
// the memtables into level-0 tables, and the compactions due. A compaction
// writes its output tables before it deletes its input tables, so it needs
// free space as large as its input. Badger compacts all of level 0 with the
// overlapping part of the base level (with hashed keys: all of it), and,
// on the other compactor, one table of a lower level i with the tables of
// level i+1 it overlaps (about ten times its size, as levels grow tenfold,
// plus partial tables at both ends: 15 target file sizes). Taken from
// badger's level sizes at each check, so the reserve grows with the data
// and with a level 0 that compaction has not caught up with.
func compactionNeed(levels []badger.LevelInfo, o Options) uint64 {
	need := uint64(o.NumMemtables) * uint64(o.MemTableSize)
	var lower uint64
	for i, l := range levels {
		if l.Level == 0 || l.IsBaseLevel {
			need += uint64(l.Size)
		}
		if l.Level > 0 && l.NumTables > 0 && i+1 < len(levels) {
			lower = max(lower, min(uint64(l.Size+levels[i+1].Size), 15*uint64(l.TargetFileSize)))
		}
	}
	return need + lower
}

// openFloor is the free space below which the store opens badger
// read-only: replaying the write-ahead logs left by an unclean stop writes
// them into new tables (walBytes), and the new memtable and value-log files
// touch their first pages.
func openFloor(o Options, walBytes uint64) uint64 {
	return walBytes + 2*uint64(o.MemTableSize) + openSlack
}

// State says whether the store accepts writes, and why not, for /status
// and metrics. Disk figures are zero for in-memory stores and when the
// disk guard is off.
type State struct {
	// ReadOnly: writes are refused (with Err). Reads go on.
	ReadOnly bool
	// Reason says why in a sentence for operators; "" when writable.
	Reason string
	// Err is what a record write gets now (it wraps ErrDiskFull or
	// ErrFailed); nil when writable.
	Err error
	// AvailBytes and TotalBytes are the space available to the store and
	// the size of its file system at CheckedAt; ReserveBytes is the reserve
	// in force (see Options.MinFreeBytes).
	AvailBytes, TotalBytes, ReserveBytes uint64
	CheckedAt                            time.Time
}

// State returns the store's write state. It does no I/O.
func (s *Store) State() State {
	var st State
	var snap *diskSnap
	if s.guard != nil {
		snap = s.guard.snap.Load()
	}
	if snap != nil {
		st.AvailBytes, st.TotalBytes, st.ReserveBytes, st.CheckedAt = snap.avail, snap.total, snap.reserve, snap.at
	}
	switch err := s.failed(); {
	case err != nil:
		st.ReadOnly, st.Err = true, err
		st.Reason = "a commit failed (" + err.Error() + "); reopen the store"
	case s.readOnlyOpen.Load():
		st.ReadOnly, st.Err = true, s.roOpenError()
		st.Reason = "opened read-only because the disk was full; it reopens for writing by itself once " +
			"enough space is free (" + st.Err.Error() + ")"
	case s.guard != nil && s.guard.full.Load() && snap != nil:
		st.ReadOnly, st.Err = true, s.guard.fullError(snap)
		st.Reason = "disk nearly full: " + st.Err.Error() + "; writable again by itself once space is freed"
	}
	return st
}

// admit checks a write of bkey/val (del for a delete) against the disk
// guard and the read-only open. It returns the cost charged (to release
// with guard.committed once the write is committed).
func (s *Store) admit(bkey, val []byte, del bool) (int64, error) {
	if s.readOnlyOpen.Load() {
		return 0, s.roOpenError()
	}
	if s.guard == nil {
		return 0, nil
	}
	cost := writeCost(bkey, val)
	low := del || bkey[0] == prefixMeta
	if err := s.guard.admit(cost, low); err != nil {
		return 0, err
	}
	return cost, nil
}

func (s *Store) roOpenError() error {
	var avail, need uint64
	if snap := s.guard.snap.Load(); snap != nil {
		avail = snap.avail
	}
	need = max(s.roFloor, s.writableAbove())
	return fmt.Errorf("%w: store opened read-only: %d bytes available on the file system of %s, %d needed to open it for writing",
		ErrDiskFull, avail, s.opts.Dir, need)
}

func (s *Store) writableAbove() uint64 {
	if snap := s.guard.snap.Load(); snap != nil {
		return snap.reserve + snap.reserve/16
	}
	return 0
}

// diskLoop checks the free space every DiskCheckInterval until Close, and
// reopens a store that was opened read-only for writing once the space is
// back.
func (s *Store) diskLoop() {
	defer close(s.diskDone)
	t := time.NewTicker(s.opts.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		snap := s.guard.refresh()
		if snap != nil && s.readOnlyOpen.Load() && snap.avail >= max(s.roFloor, s.writableAbove()) {
			s.reopenWritable()
		}
	}
}

// reopenWritable replaces a read-only badger with a writable one, if no
// call is using the store right now (else the next tick tries again): it
// holds lifeMu, so no call starts meanwhile. If badger cannot be opened
// for writing, it goes back to read-only; if that fails too, the store is
// broken (every call returns the error).
func (s *Store) reopenWritable() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed || s.broken != nil || s.active.Load() > 0 {
		return
	}
	if err := s.db.Close(); err != nil {
		s.log.Warn("close read-only badger", "op", "disk", "err", err)
	}
	db, err := openBadger(s.opts, s.log, false)
	if err == nil {
		s.db = db
		s.readOnlyOpen.Store(false)
		s.openWAL()
		// A directory opened read-only was not stamped with its format.
		if err := s.checkFormat(); err != nil {
			s.log.Error("record the storage format after reopening for writing", "op", "disk", "err", err)
		}
		s.log.Info("free disk space is back: store reopened for writing", "op", "disk", "dir", s.opts.Dir)
		return
	}
	s.log.Error("reopen for writing failed; staying read-only", "op", "disk", "err", err)
	if s.db, err = openBadger(s.opts, s.log, true); err != nil {
		s.db = nil
		s.broken = fmt.Errorf("%w: reopen read-only after a failed reopen for writing: %w", ErrFailed, err)
		s.log.Error("store unusable", "op", "disk", "err", s.broken)
	}
}

// errNoGuard is returned by statfs where free space cannot be measured.
var errNoGuard = errors.New("free disk space cannot be measured on this platform")
