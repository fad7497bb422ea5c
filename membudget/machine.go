package membudget

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// Shares of the machine's memory that PlanFor picks when no limit is
// given. See the "Resource limits" section of docs/ARCHITECTURE.md.
const (
	// CgroupPercent of a cgroup (container) memory limit becomes the
	// node's limit: the container is the node's, and the rest is room for
	// memory the Go runtime does not count (badger's mmapped tables in the
	// page cache, thread stacks) before the kernel's OOM killer acts.
	CgroupPercent = 90
	// MachinePercent of the machine's memory (MemTotal) becomes the limit
	// when no cgroup limit is lower: a node is rarely alone on a machine
	// (dev clusters run several), and badger reads its tables through the
	// page cache, which wants the rest (Elasticsearch's rule of half).
	MachinePercent = 50
	// BudgetPercent of the limit is the budget for requests in flight. The
	// rest of GoLimit holds the store (StoreMemory: 80 MiB of a 512 MiB
	// limit), the runtime, and the copies a request makes
	// beyond the bytes it is charged for (a value is read, decoded,
	// encoded and framed: two to three times its size at the peak), with
	// room for the garbage collector to work under GOMEMLIMIT.
	BudgetPercent = 25
	// MappedPercent of the limit, at least MinMapped, is left out of
	// GOMEMLIMIT for the memory the Go runtime does not manage but RSS
	// counts: the binary and its libraries (about 20 MiB) and the pages of
	// badger's memory-mapped files (write-ahead logs, value logs, tables)
	// that writes and reads touched, which stay resident until the kernel
	// reclaims them. Measured: 66 to 122 MiB of value log after 11 writes
	// of a 1 to 11 MiB set and the reads that followed (docs/BENCHMARKS.md);
	// with 20% the whole RSS passed a 512 MiB limit in one run of four
	// (524 MiB), so the share is 30%.
	MappedPercent = 30
	MinMapped     = 40 << 20
	// MinMemoryLimit is the smallest limit PlanFor accepts: below it the
	// store alone does not fit.
	MinMemoryLimit = 128 << 20
	// MinBudget is the smallest budget PlanFor gives: it must hold the
	// largest single request (a 12 MiB sibling set, a 16 MiB frame) twice.
	MinBudget = 32 << 20
	// SmallRequest is the size up to which a node's request is small
	// (Config.SmallRequest): twice what a read reserves before it knows
	// its set's size (multikey.ReadReserve, 64 KiB), so an ordinary GET
	// or a PUT of a small value is one, as is an RPC frame of a small
	// record.
	SmallRequest = 128 << 10
	// ReservePercent of the budget is kept for small requests
	// (Config.Reserve): 12.8 MiB of a 512 MiB limit's 128 MiB budget, room
	// for 100 small requests at their largest while large ones hold the
	// rest.
	ReservePercent = 10
	// fallbackLimit is the limit when the machine's memory is unknown.
	fallbackLimit = 1 << 30
	// maxLimit (1 PiB) is past any real memory; a cgroup limit at or above
	// it means none, and percentages of smaller values cannot overflow.
	maxLimit = 1 << 50
)

// Machine is what the system says about memory.
type Machine struct {
	// MemTotal is /proc/meminfo's MemTotal in bytes; 0 if unknown.
	MemTotal int64
	// CgroupLimit is the lowest memory limit of this process's cgroup and
	// its ancestors (cgroup v2 memory.max, or v1 memory.limit_in_bytes),
	// in bytes; 0 if there is none.
	CgroupLimit int64
	// CgroupFile is the file CgroupLimit was read from.
	CgroupFile string
}

// ReadMachine reads /proc/meminfo and the cgroup files. Missing files
// (another OS, no cgroup) leave fields zero; only unreadable contents are
// errors.
func ReadMachine() (Machine, error) { return readMachine(os.DirFS("/")) }

// readMachine reads the files under fsys, which stands for "/".
func readMachine(fsys fs.FS) (Machine, error) {
	var m Machine
	var errs []error
	if b, err := fs.ReadFile(fsys, "proc/meminfo"); err == nil {
		v, err := parseMemTotal(b)
		if err != nil {
			errs = append(errs, err)
		}
		m.MemTotal = v
	}
	if b, err := fs.ReadFile(fsys, "proc/self/cgroup"); err == nil {
		limit, file, err := cgroupLimit(fsys, b)
		if err != nil {
			errs = append(errs, err)
		}
		m.CgroupLimit, m.CgroupFile = limit, file
	}
	return m, errors.Join(errs...)
}

func parseMemTotal(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("membudget: /proc/meminfo: unexpected MemTotal line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 || kb > 1<<43 {
			return 0, fmt.Errorf("membudget: /proc/meminfo: bad MemTotal %q", f[0])
		}
		return kb << 10, nil
	}
	return 0, nil
}

// cgroupLimit finds this process's cgroups in /proc/self/cgroup (the v2
// line "0::/path" and the v1 memory controller's line; a hybrid system
// has both, with memory under v1) and returns the lowest limit along each
// path up to the root: a parent's limit binds the child.
func cgroupLimit(fsys fs.FS, self []byte) (limit int64, file string, err error) {
	for line := range strings.SplitSeq(string(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var root, name string
		switch {
		case parts[0] == "0" && parts[1] == "":
			root, name = "sys/fs/cgroup", "memory.max"
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			root, name = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			f := path.Join(root, p, name)
			if b, rerr := fs.ReadFile(fsys, f); rerr == nil {
				v, perr := parseLimit(b)
				if perr != nil {
					return limit, file, fmt.Errorf("membudget: /%s: %w", f, perr)
				}
				if v > 0 && (limit == 0 || v < limit) {
					limit, file = v, "/"+f
				}
			}
			if p == "/" {
				break
			}
		}
	}
	return limit, file, nil
}

// parseLimit reads a cgroup limit: "max" (v2) or a number; v1 writes its
// "unlimited" as a number near 2^63, and any limit of maxLimit or more
// counts as none.
func parseLimit(b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad memory limit %q", s)
	}
	if v >= maxLimit {
		return 0, nil
	}
	return v, nil
}

// Plan is the memory settings of a node: how its memory limit is split
// so that the whole resident set stays under it (see the "Resource
// limits" section of docs/ARCHITECTURE.md).
type Plan struct {
	// MemoryLimit is the node's memory limit in bytes: its resident set
	// (RSS) is meant to stay under it.
	MemoryLimit int64
	// GoLimit is the Go runtime's soft limit (GOMEMLIMIT) that Apply
	// sets: MemoryLimit less Mapped. Everything below is inside it.
	GoLimit int64
	// Mapped is what MemoryLimit keeps for memory outside the Go runtime:
	// MappedPercent of it, at least MinMapped.
	Mapped int64
	// Store is the store's share of GoLimit.
	Store StoreMemory
	// Budget is the budget for requests in flight in bytes:
	// BudgetPercent of MemoryLimit, at least MinBudget.
	Budget int64
	// Reserve is the part of Budget kept for small requests:
	// ReservePercent of it.
	Reserve int64
	// Why says how MemoryLimit was chosen, for the start-up log line.
	Why string
	// Warning is set when the given limit is above what the machine or
	// cgroup allows (the kernel would kill the node before Go's limit
	// binds); the node should log it.
	Warning string
}

// PlanFor chooses the node's memory settings. limit is --memory-limit in
// bytes; 0 chooses CgroupPercent of a cgroup limit or MachinePercent of
// the machine, whichever is lower (1 GiB if neither is known).
func PlanFor(limit int64, m Machine) (Plan, error) {
	var p Plan
	switch {
	case limit < 0 || limit >= maxLimit:
		return p, fmt.Errorf("memory limit %d: must be >= 0 (0: a share of the machine) and below 1 PiB", limit)
	case limit > 0:
		p.MemoryLimit, p.Why = limit, "--memory-limit"
		if m.CgroupLimit > 0 && limit > m.CgroupLimit {
			p.Warning = fmt.Sprintf("--memory-limit %s is above the cgroup limit %s (%s): the kernel kills the node before this limit binds",
				size(limit), size(m.CgroupLimit), m.CgroupFile)
		} else if m.MemTotal > 0 && limit > m.MemTotal {
			p.Warning = fmt.Sprintf("--memory-limit %s is above the machine's memory %s", size(limit), size(m.MemTotal))
		}
	default:
		p.MemoryLimit, p.Why = fallbackLimit, "machine memory unknown: 1 GiB"
		if m.MemTotal > 0 {
			p.MemoryLimit = m.MemTotal * MachinePercent / 100
			p.Why = fmt.Sprintf("%d%% of the machine's %s", MachinePercent, size(m.MemTotal))
		}
		if c := m.CgroupLimit * CgroupPercent / 100; m.CgroupLimit > 0 && (m.MemTotal == 0 || c < p.MemoryLimit) {
			p.MemoryLimit = c
			p.Why = fmt.Sprintf("%d%% of the cgroup limit %s (%s)", CgroupPercent, size(m.CgroupLimit), m.CgroupFile)
		}
	}
	if p.MemoryLimit < MinMemoryLimit {
		return p, fmt.Errorf("memory limit %s (%s) is below the minimum of %s a node needs",
			size(p.MemoryLimit), p.Why, size(MinMemoryLimit))
	}
	p.Budget = max(p.MemoryLimit*BudgetPercent/100, MinBudget)
	p.Reserve = p.Budget * ReservePercent / 100
	p.Mapped = max(p.MemoryLimit*MappedPercent/100, MinMapped)
	p.GoLimit = p.MemoryLimit - p.Mapped
	p.Store = storeMemory(p.MemoryLimit)
	return p, nil
}

// StoreMemory is the store's heap memory (the store.Options of the same
// names): badger's memtables, whose arenas are Go memory, its block
// cache, and the store's record cache.
type StoreMemory struct {
	MemTableSize   int64
	NumMemtables   int
	BlockCacheSize int64
	CacheSize      int64
}

// Total is the heap the store may hold with these sizes.
func (s StoreMemory) Total() int64 {
	return s.MemTableSize*int64(s.NumMemtables) + s.BlockCacheSize + s.CacheSize
}

// storeMemory sizes the store for a node limit: a sixteenth of it for
// the memtables (two, each 8 to 16 MiB), a thirty-second for the block
// cache (8 to 256 MiB) and a sixteenth for the record cache (8 MiB to
// 1 GiB): 80 MiB of 512 MiB, 32 MiB of the smallest.
//
// The memtables stop at 16 MiB: a memtable's arena is one Go allocation
// of its size, and a flush keeps the full one, its successor and the
// table being built live at once, so the live heap (and with GOGC the
// heap goal and the resident memory) jumped by about 100 MiB at each
// flush of a 64 MiB memtable (docs/bench/rss.md); at 16 MiB the flushes
// are four times as frequent and a quarter the size, for no more CPU
// per write.
func storeMemory(limit int64) StoreMemory {
	return StoreMemory{
		MemTableSize:   min(max(limit/32, 8<<20), 16<<20),
		NumMemtables:   2,
		BlockCacheSize: min(max(limit/32, 8<<20), 256<<20),
		CacheSize:      min(max(limit/16, 8<<20), 1<<30),
	}
}

// BudgetConfig is the Config of the node's budget for requests in
// flight: Budget bytes, with Reserve kept for requests of at most
// SmallRequest bytes.
func (p Plan) BudgetConfig() Config {
	return Config{Limit: p.Budget, SmallRequest: SmallRequest, Reserve: p.Reserve}
}

// Apply sets the Go runtime's soft memory limit to p.GoLimit, unless
// the GOMEMLIMIT environment variable is set: the operator's explicit
// setting wins. It returns the limit in effect and whether it came from
// the environment.
func (p Plan) Apply() (limit int64, fromEnv bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), true
	}
	debug.SetMemoryLimit(p.GoLimit)
	return p.GoLimit, false
}

// size formats bytes for messages.
func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
