package bench

import (
	"fmt"
	"slices"
	"time"
)

// Checker limits and defaults.
const (
	// DefaultHistory is the default CheckerConfig.History.
	DefaultHistory = 8
	// MaxHistory caps CheckerConfig.History: per-key memory is about 32
	// bytes per remembered write.
	MaxHistory = 1024
	// DefaultMaxLost is the default CheckerConfig.MaxLost.
	DefaultMaxLost = 100
	// MaxDeltas caps the number of t-visibility buckets.
	MaxDeltas = 64
	// MaxLostLimit caps CheckerConfig.MaxLost.
	MaxLostLimit = 1 << 20
	// MaxSiblingBucket is the last bucket of the siblings-per-read
	// distribution: reads with more siblings are counted in it.
	MaxSiblingBucket = 64
)

// DefaultDeltas are the default t-visibility bucket boundaries.
var DefaultDeltas = []time.Duration{
	0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// CheckerConfig configures a Checker.
type CheckerConfig struct {
	// History is K, how many acknowledged writes the Checker remembers per
	// key (the most recently fed). Stale reads, k-staleness and t-visibility
	// consider only these; k-staleness is therefore capped at K (reads
	// counted in Consistency.KCapped were at least K behind). The lost-write
	// check covers older writes through the newest evicted dot per node and
	// epoch (see Observed). Memory is about 32 bytes × K per written key.
	// Zero means DefaultHistory (8); at most MaxHistory.
	History int
	// Deltas are the t-visibility bucket lower bounds, strictly increasing
	// and >= 0; bucket i holds reads that began between Deltas[i] and
	// Deltas[i+1] (the last bucket is open-ended) after the write they are
	// scored against was acknowledged. Nil means DefaultDeltas; at most
	// MaxDeltas. The slice is copied.
	Deltas []time.Duration
	// MaxLost caps how many lost writes are listed individually; all are
	// counted. Zero means DefaultMaxLost (100); negative lists none; at
	// most MaxLostLimit.
	MaxLost int
}

// Validate checks ranges; it does not change c.
func (c CheckerConfig) Validate() error {
	if c.History < 0 || c.History > MaxHistory {
		return fmt.Errorf("history %d: must be in [0, %d]: %w", c.History, MaxHistory, ErrInvalidConfig)
	}
	if c.MaxLost > MaxLostLimit {
		return fmt.Errorf("max lost %d: at most %d: %w", c.MaxLost, MaxLostLimit, ErrInvalidConfig)
	}
	if len(c.Deltas) > MaxDeltas {
		return fmt.Errorf("%d deltas: at most %d: %w", len(c.Deltas), MaxDeltas, ErrInvalidConfig)
	}
	for i, d := range c.Deltas {
		if d < 0 || (i > 0 && d <= c.Deltas[i-1]) {
			return fmt.Errorf("deltas %v: must be >= 0 and strictly increasing: %w", c.Deltas, ErrInvalidConfig)
		}
	}
	return nil
}

func (c CheckerConfig) withDefaults() CheckerConfig {
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.Deltas == nil {
		c.Deltas = DefaultDeltas
	}
	c.Deltas = slices.Clone(c.Deltas)
	if c.MaxLost == 0 {
		c.MaxLost = DefaultMaxLost
	}
	return c
}

// WriteEvent reports an acknowledged write. Times are offsets from any fixed
// origin shared by all events of one Checker (Run uses the run's start).
type WriteEvent struct {
	Key    string
	ID     WriteID       // the dot the write minted
	Coord  int           // coordinator the write was sent through
	Invoke time.Duration // when the write was sent
	Ack    time.Duration // when its acknowledgement was received
}

// ReadEvent reports a completed read.
type ReadEvent struct {
	Key      string
	Coord    int           // coordinator the read was sent through
	Invoke   time.Duration // when the read was sent
	Done     time.Duration // when its reply was received
	Found    bool          // the key had a live value
	Siblings int           // values returned
	Observed Observed      // the reply's causal context; not retained
}

// Checker computes consistency metrics from a history of completed
// operations, fed in completion order. It needs no clock: times come in the
// events, so tests feed synthetic histories.
//
// Definitions (a write w is prior to a read r when w.Ack < r.Invoke and w
// was fed before r):
//   - r is stale when some prior write to its key, among the last History
//     fed, is not covered by r.Observed; its k-staleness is the number of
//     such writes (how many acknowledged versions behind it was).
//   - t-visibility follows PBS: the probability that a read beginning t
//     after a write was acknowledged observes it. Each read is scored
//     against the latest prior write to its key (largest Ack), and only when
//     that write went through a different coordinator than the read, so
//     the figure measures propagation between replicas rather than a
//     coordinator's own memory. t = r.Invoke - w.Ack selects the Deltas
//     bucket; P = observed / pairs per bucket.
//   - a write is lost when the final read of its key at R=N (Final) does
//     not cover it: it is neither present nor superseded by a write that
//     saw it.
//
// Feeding order: every write acknowledged before a read began must be fed
// before that read. Run guarantees it by taking the acknowledgement time
// under the same lock that feeds the Checker. A Checker is not safe for
// concurrent use.
type Checker struct {
	cfg    CheckerConfig
	keys   map[string]*keyState
	nodes  []string          // interned WriteID.Node values
	nodeIx map[string]uint32 // Node -> index in nodes

	acked      int64
	reads      int64
	afterWrite int64
	stale      int64
	kHist      []int64 // kHist[k] = reads k versions behind, k in [0, History]
	kCapped    int64
	kSum       int64
	sameCoord  int64
	pairs      []int64
	seen       []int64
	sibHist    [MaxSiblingBucket + 1]int64
	sibSum     int64
	sibMax     int
	lostCount  int64
	lost       []LostWrite
	unverified int64
	finalized  int64
}

// ackedWrite is one remembered write, 32 bytes.
type ackedWrite struct {
	counter uint64
	epoch   uint64
	ack     time.Duration
	node    uint32 // index into Checker.nodes
	coord   int32
}

type keyState struct {
	ring    []ackedWrite // the last History writes; circular once full
	next    int          // slot to overwrite next, once len(ring) == History
	evicted []ackedWrite // per (node, epoch): the evicted write with the highest counter
	acked   int64        // writes fed for this key
	final   uint8        // finalNone, finalChecked or finalFailed
}

const (
	finalNone uint8 = iota
	finalChecked
	finalFailed
)

// NewChecker returns an empty Checker.
func NewChecker(cfg CheckerConfig) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Checker{
		cfg:    cfg,
		keys:   make(map[string]*keyState),
		nodeIx: make(map[string]uint32),
		kHist:  make([]int64, cfg.History+1),
		pairs:  make([]int64, len(cfg.Deltas)),
		seen:   make([]int64, len(cfg.Deltas)),
	}, nil
}

func (c *Checker) intern(node string) uint32 {
	if i, ok := c.nodeIx[node]; ok {
		return i
	}
	i := uint32(len(c.nodes))
	c.nodes = append(c.nodes, node)
	c.nodeIx[node] = i
	return i
}

func (c *Checker) id(w *ackedWrite) WriteID {
	return WriteID{Node: c.nodes[w.node], Epoch: w.epoch, Counter: w.counter}
}

// Write records an acknowledged write.
func (c *Checker) Write(e WriteEvent) {
	ks := c.keys[e.Key]
	if ks == nil {
		ks = &keyState{}
		c.keys[e.Key] = ks
	}
	c.acked++
	ks.acked++
	w := ackedWrite{counter: e.ID.Counter, epoch: e.ID.Epoch, ack: e.Ack, node: c.intern(e.ID.Node), coord: int32(e.Coord)}
	if len(ks.ring) < c.cfg.History {
		if ks.ring == nil {
			// Most keys see few writes: grow the ring on demand.
			ks.ring = make([]ackedWrite, 0, min(c.cfg.History, 2))
		}
		ks.ring = append(ks.ring, w)
		return
	}
	old := ks.ring[ks.next]
	ks.ring[ks.next] = w
	ks.next = (ks.next + 1) % len(ks.ring)
	for i := range ks.evicted {
		ev := &ks.evicted[i]
		if ev.node == old.node && ev.epoch == old.epoch {
			if old.counter > ev.counter {
				*ev = old
			}
			return
		}
	}
	ks.evicted = append(ks.evicted, old)
}

// Read records a completed read and returns how many acknowledged versions
// behind it was (its k-staleness; 0 = not stale).
func (c *Checker) Read(e ReadEvent) int {
	c.reads++
	s := max(e.Siblings, 0)
	c.sibSum += int64(s)
	c.sibMax = max(c.sibMax, s)
	c.sibHist[min(s, MaxSiblingBucket)]++

	ks := c.keys[e.Key]
	if ks == nil {
		return 0
	}
	behind, prior := 0, 0
	latest, latestSeen := -1, false
	for i := range ks.ring {
		w := &ks.ring[i]
		if w.ack >= e.Invoke {
			continue
		}
		prior++
		seen := covers(e.Observed, c.id(w))
		if !seen {
			behind++
		}
		if latest < 0 || w.ack > ks.ring[latest].ack {
			latest, latestSeen = i, seen
		}
	}
	if prior == 0 {
		return 0
	}
	c.afterWrite++
	c.kHist[behind]++
	if behind > 0 {
		c.stale++
		c.kSum += int64(behind)
		if behind == len(ks.ring) && len(ks.evicted) > 0 {
			c.kCapped++
		}
	}
	w := &ks.ring[latest]
	if int(w.coord) == e.Coord {
		c.sameCoord++
		return behind
	}
	if b := c.bucket(e.Invoke - w.ack); b >= 0 {
		c.pairs[b]++
		if latestSeen {
			c.seen[b]++
		}
	}
	return behind
}

// bucket returns the Deltas bucket of an elapsed time, or -1 below the first.
func (c *Checker) bucket(d time.Duration) int {
	i, found := slices.BinarySearch(c.cfg.Deltas, d)
	if found {
		return i
	}
	return i - 1
}

func covers(o Observed, id WriteID) bool {
	return o != nil && o.Covers(id)
}

// Keys returns, sorted, the keys with acknowledged writes: the keys the
// final lost-write check must read.
func (c *Checker) Keys() []string {
	keys := make([]string, 0, len(c.keys))
	for k := range c.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Final checks key against the result of a read at R=N made after all
// writes completed: each remembered write (and each newest evicted dot per
// node and epoch) it does not cover is lost. Only the first Final or
// FinalFailed call per key counts.
func (c *Checker) Final(key string, o Observed) {
	ks := c.keys[key]
	if ks == nil || ks.final != finalNone {
		return
	}
	ks.final = finalChecked
	c.finalized++
	for _, set := range [][]ackedWrite{ks.ring, ks.evicted} {
		for i := range set {
			w := &set[i]
			id := c.id(w)
			if covers(o, id) {
				continue
			}
			c.lostCount++
			if len(c.lost) < c.cfg.MaxLost {
				c.lost = append(c.lost, LostWrite{Key: key, ID: id, Coord: int(w.coord), Ack: w.ack})
			}
		}
	}
}

// FinalFailed records that the final read of key failed: its writes are
// counted as unverified, neither lost nor kept.
func (c *Checker) FinalFailed(key string) {
	ks := c.keys[key]
	if ks == nil || ks.final != finalNone {
		return
	}
	ks.final = finalFailed
	c.unverified += ks.acked
}

// Result summarises everything fed so far. Writes of keys that were never
// finalized count as unverified when checkedLost is true; when false the
// lost-write check is reported as not run.
func (c *Checker) Result(checkedLost bool) Consistency {
	r := Consistency{
		History:         c.cfg.History,
		Reads:           c.reads,
		ReadsAfterWrite: c.afterWrite,
		StaleReads:      c.stale,
		KStaleness:      slices.Clone(c.kHist),
		KCapped:         c.kCapped,
		SameCoordinator: c.sameCoord,
		AckedWrites:     c.acked,
		LostChecked:     checkedLost,
	}
	r.StaleFraction = ratio(c.stale, c.reads)
	r.MeanK = ratio(c.kSum, c.stale)
	for k := len(c.kHist) - 1; k > 0; k-- {
		if c.kHist[k] > 0 {
			r.MaxK = k
			break
		}
	}
	for i, d := range c.cfg.Deltas {
		r.TVisibility = append(r.TVisibility, TVisPoint{
			Delta: d, Pairs: c.pairs[i], Observed: c.seen[i], P: ratio(c.seen[i], c.pairs[i]),
		})
	}
	last := 0
	for i, n := range c.sibHist {
		if n > 0 {
			last = i
		}
	}
	r.Siblings = SiblingStats{
		Mean:         ratio(c.sibSum, c.reads),
		Max:          c.sibMax,
		Distribution: slices.Clone(c.sibHist[:last+1]),
	}
	if checkedLost {
		r.LostWrites = c.lostCount
		r.Lost = slices.Clone(c.lost)
		r.UnverifiedWrites = c.unverified
		for _, ks := range c.keys {
			if ks.final == finalNone {
				r.UnverifiedWrites += ks.acked
			}
		}
	}
	return r
}

// ratio returns a/b, or 0 when b is 0 (JSON cannot carry NaN).
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Consistency is the Checker's summary.
type Consistency struct {
	History         int     `json:"history"`           // CheckerConfig.History used
	Reads           int64   `json:"reads"`             // successful reads checked
	ReadsAfterWrite int64   `json:"reads_after_write"` // reads with at least one prior write
	StaleReads      int64   `json:"stale_reads"`       // reads missing a prior write
	StaleFraction   float64 `json:"stale_fraction"`    // StaleReads / Reads
	// KStaleness[k] counts reads (with a prior write) that were k
	// acknowledged versions behind; index 0 is up to date.
	KStaleness []int64 `json:"k_staleness"`
	MeanK      float64 `json:"mean_k"`   // mean k over stale reads
	MaxK       int     `json:"max_k"`    // largest k seen
	KCapped    int64   `json:"k_capped"` // stale reads whose k was capped at History
	// SameCoordinator counts reads left out of t-visibility because the
	// latest prior write went through the read's own coordinator.
	SameCoordinator  int64        `json:"same_coordinator"`
	TVisibility      []TVisPoint  `json:"t_visibility"`
	Siblings         SiblingStats `json:"siblings"`
	AckedWrites      int64        `json:"acked_writes"`
	LostChecked      bool         `json:"lost_checked"`      // the final R=N check ran
	LostWrites       int64        `json:"lost_writes"`       // acknowledged writes not covered at the end
	Lost             []LostWrite  `json:"lost,omitempty"`    // the first CheckerConfig.MaxLost of them
	UnverifiedWrites int64        `json:"unverified_writes"` // writes whose final read failed or never ran
}

// TVisPoint is one t-visibility bucket.
type TVisPoint struct {
	Delta    time.Duration `json:"delta_ns"` // bucket lower bound
	Pairs    int64         `json:"pairs"`    // reads scored in this bucket
	Observed int64         `json:"observed"` // of which observed the write
	P        float64       `json:"p"`        // Observed / Pairs; 0 when Pairs is 0
}

// SiblingStats is the distribution of siblings per successful read.
type SiblingStats struct {
	Mean float64 `json:"mean"`
	Max  int     `json:"max"`
	// Distribution[s] counts reads that returned s siblings; the bucket
	// MaxSiblingBucket also holds larger counts. Trailing zeros are cut.
	Distribution []int64 `json:"distribution"`
}

// LostWrite is an acknowledged write the final check did not find.
type LostWrite struct {
	Key   string        `json:"key"`
	ID    WriteID       `json:"id"`
	Coord int           `json:"coord"`
	Ack   time.Duration `json:"ack_ns"` // acknowledgement time from the run's start
}
