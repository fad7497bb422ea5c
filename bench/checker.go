package bench

import (
	"fmt"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/bench/oracle"
)

// Checker limits and defaults.
const (
	// DefaultHistory is the default CheckerConfig.History.
	DefaultHistory = oracle.DefaultHistory
	// MaxHistory caps CheckerConfig.History.
	MaxHistory = oracle.MaxHistory
	// DefaultMaxLost is the default CheckerConfig.MaxLost.
	DefaultMaxLost = oracle.DefaultMaxListed
	// MaxDeltas caps the number of t-visibility buckets.
	MaxDeltas = 64
	// MaxLostLimit caps CheckerConfig.MaxLost.
	MaxLostLimit = oracle.MaxListedLimit
	// MaxSiblingBucket is the last bucket of the siblings-per-read
	// distribution: reads with more siblings are counted in it.
	MaxSiblingBucket = 64
	// MinValueSize is the smallest Config.ValueSize: every value starts
	// with its write's tag (oracle.TagLen bytes).
	MinValueSize = oracle.TagLen
)

// DefaultDeltas are the default t-visibility bucket boundaries.
var DefaultDeltas = []time.Duration{
	0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// CheckerConfig configures a Checker.
type CheckerConfig struct {
	// History is K, how many of a key's latest acknowledged writes
	// k-staleness and t-visibility score (oracle.Config.History):
	// k-staleness is therefore capped at K (reads counted in
	// Consistency.KCapped were at least K behind). Stale reads and lost
	// writes consider every write. Zero means DefaultHistory (8); at most
	// MaxHistory.
	History int
	// Deltas are the t-visibility bucket lower bounds, strictly increasing
	// and >= 0; bucket i holds reads that began between Deltas[i] and
	// Deltas[i+1] (the last bucket is open-ended) after the write they are
	// scored against was acknowledged. Nil means DefaultDeltas; at most
	// MaxDeltas. The slice is copied.
	Deltas []time.Duration
	// MaxLost caps how many lost (and how many resurrected) writes are
	// listed individually; all are counted. Zero means DefaultMaxLost
	// (100); negative lists none; at most MaxLostLimit.
	MaxLost int
	// Run is the nonce in every value's tag (oracle.Config.Run): values
	// of other runs on the same keys are ignored.
	Run uint32
}

// Validate checks ranges; it does not change c.
func (c CheckerConfig) Validate() error {
	if err := c.oracleConfig().Validate(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalidConfig)
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

// oracleConfig is the oracle's configuration: the bench never deletes, and
// the HTTP API cannot show a lone tombstone anyway.
func (c CheckerConfig) oracleConfig() oracle.Config {
	return oracle.Config{Run: c.Run, History: c.History, MaxListed: c.MaxLost, TombstonesHidden: true}
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

// ReadEvent reports a completed read. Times are offsets from any fixed
// origin shared by all events of one Checker (Run uses the run's start).
type ReadEvent struct {
	Key    string
	Coord  int           // coordinator the read was sent through
	Invoke time.Duration // when the read was sent
	Done   time.Duration // when its reply was received
	// Values are the live values returned; not retained.
	Values [][]byte
}

// Checker computes consistency metrics from a history of operations, fed
// in completion order, with an oracle.Oracle judging each read and the
// final state from what the client wrote and saw (package oracle has the
// definitions: lost, stale, indeterminate, resurrected). It never trusts
// the store's causal contexts: those are only passed back to the store.
// It needs no clock: times come in the events, so tests feed synthetic
// histories.
//
// On top of the oracle's judgements it keeps the PBS figures (Bailis et
// al.): k-staleness (how many of the key's last History acknowledged
// writes a read missed), t-visibility (for each read, whether it covered
// the newest acknowledged write before it, by the time t since that
// write's acknowledgement, only when that write went through another
// coordinator, so the figure measures propagation between replicas) and
// siblings per read.
//
// Feeding order: a write is invoked before it is sent; every write
// acknowledged before a read began is completed before that read is fed.
// Run guarantees it by taking the acknowledgement time under the same lock
// that feeds the Checker. A Checker is not safe for concurrent use.
type Checker struct {
	cfg CheckerConfig
	o   *oracle.Oracle

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
}

// NewChecker returns an empty Checker.
func NewChecker(cfg CheckerConfig) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o, err := oracle.New(cfg.oracleConfig())
	if err != nil {
		return nil, fmt.Errorf("checker: %w", err)
	}
	return &Checker{
		cfg:   cfg,
		o:     o,
		kHist: make([]int64, cfg.History+1),
		pairs: make([]int64, len(cfg.Deltas)),
		seen:  make([]int64, len(cfg.Deltas)),
	}, nil
}

// Invoke records a write about to be sent to key through coord at the
// given time, carrying the context a previous answer gave (the zero
// oracle.Context for a blind write). The value sent must start with
// AppendTag(op).
func (c *Checker) Invoke(key string, ctx oracle.Context, coord int, at time.Duration) oracle.Op {
	return c.o.Invoke(oracle.Write{Key: key, Context: ctx, Invoke: at, Coord: coord})
}

// AppendTag appends op's tag (oracle.TagLen bytes) to dst.
func (c *Checker) AppendTag(dst []byte, op oracle.Op) []byte { return c.o.AppendTag(dst, op) }

// Acked records that op was acknowledged at the given time with an answer
// showing values (the key's live values after it) and returns the context
// that answer gives a later write.
func (c *Checker) Acked(op oracle.Op, at time.Duration, values [][]byte) oracle.Context {
	ctx := c.o.Observe(op.Key(), values)
	c.o.Complete(op, oracle.Acked, at)
	return ctx
}

// Failed records that op was not acknowledged: out is oracle.Failed (the
// store answered with an error) or oracle.Unknown (no answer).
func (c *Checker) Failed(op oracle.Op, out oracle.Outcome) { c.o.Complete(op, out, 0) }

// Read records a completed read and returns the context it gives a later
// write and its k-staleness (0 = not behind).
func (c *Checker) Read(e ReadEvent) (oracle.Context, int) {
	ctx, v := c.o.Read(oracle.Read{Key: e.Key, Values: e.Values, Invoke: e.Invoke, Done: e.Done, Coord: e.Coord})
	c.reads++
	s := v.Values
	c.sibSum += int64(s)
	c.sibMax = max(c.sibMax, s)
	c.sibHist[min(s, MaxSiblingBucket)]++
	if !v.Prior && !v.Stale {
		return ctx, 0
	}
	c.afterWrite++
	c.kHist[v.K]++
	if v.Stale {
		c.stale++
		c.kSum += int64(v.K)
	}
	if v.KCapped {
		c.kCapped++
	}
	if !v.Prior {
		return ctx, v.K
	}
	if v.LatestCoord == e.Coord {
		c.sameCoord++
		return ctx, v.K
	}
	if b := c.bucket(e.Invoke - v.LatestAck); b >= 0 {
		c.pairs[b]++
		if v.LatestSeen {
			c.seen[b]++
		}
	}
	return ctx, v.K
}

// bucket returns the Deltas bucket of an elapsed time, or -1 below the first.
func (c *Checker) bucket(d time.Duration) int {
	i, found := slices.BinarySearch(c.cfg.Deltas, d)
	if found {
		return i
	}
	return i - 1
}

// Keys returns, sorted, the keys with writes: the keys the final check
// must read.
func (c *Checker) Keys() []string { return c.o.Keys() }

// Final checks key against the live values of a read at R=N made after all
// writes completed (oracle.Oracle.Final). Only the first Final or
// FinalFailed call per key counts.
func (c *Checker) Final(key string, values [][]byte) { c.o.Final(key, values) }

// FinalFailed records that the final read of key failed: its acknowledged
// writes count as unverified, neither lost nor kept.
func (c *Checker) FinalFailed(key string) { c.o.FinalFailed(key) }

// Result summarises everything fed so far. When checkedLost is false the
// lost-write check is reported as not run.
func (c *Checker) Result(checkedLost bool) Consistency {
	or := c.o.Result()
	r := Consistency{
		History:             c.cfg.History,
		Reads:               c.reads,
		ReadsAfterWrite:     c.afterWrite,
		StaleReads:          c.stale,
		KStaleness:          slices.Clone(c.kHist),
		KCapped:             c.kCapped,
		SameCoordinator:     c.sameCoord,
		AckedWrites:         or.Acked,
		FailedWrites:        or.Failed,
		UnknownWrites:       or.Unknown,
		IndeterminateWrites: or.Indeterminate,
		ResurrectedWrites:   or.Resurrected,
		Resurrected:         or.Resurrections,
		UnexpectedValues:    or.Unexpected,
		ForeignValues:       or.Foreign,
		LostChecked:         checkedLost,
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
		r.LostWrites = or.Lost
		r.Lost = or.LostWrites
		r.UnverifiedWrites = or.Unverified
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
	ReadsAfterWrite int64   `json:"reads_after_write"` // reads with an acknowledged write before them
	StaleReads      int64   `json:"stale_reads"`       // reads that missed a newest acknowledged write
	StaleFraction   float64 `json:"stale_fraction"`    // StaleReads / Reads
	// KStaleness[k] counts reads (with a prior write) that missed k of
	// the key's last History acknowledged writes; index 0 is up to date.
	KStaleness []int64 `json:"k_staleness"`
	MeanK      float64 `json:"mean_k"`   // mean k over stale reads
	MaxK       int     `json:"max_k"`    // largest k seen
	KCapped    int64   `json:"k_capped"` // stale reads whose k was capped at History
	// SameCoordinator counts reads left out of t-visibility because the
	// latest prior write went through the read's own coordinator.
	SameCoordinator int64        `json:"same_coordinator"`
	TVisibility     []TVisPoint  `json:"t_visibility"`
	Siblings        SiblingStats `json:"siblings"`
	// AckedWrites, FailedWrites and UnknownWrites count writes by what
	// the client was told: acknowledged, an error, no answer (load
	// writes included).
	AckedWrites   int64 `json:"acked_writes"`
	FailedWrites  int64 `json:"failed_writes"`
	UnknownWrites int64 `json:"unknown_writes"`
	// IndeterminateWrites counts failed or unanswered writes that a
	// later answer showed anyway: they landed after being reported
	// failed. Neither an error of the store nor lost.
	IndeterminateWrites int64 `json:"indeterminate_writes"`
	LostChecked         bool  `json:"lost_checked"` // the final R=N check ran
	// LostWrites counts acknowledged writes the final read at R=N
	// neither returned nor showed superseded; Lost lists the first
	// CheckerConfig.MaxLost.
	LostWrites int64       `json:"lost_writes"`
	Lost       []LostWrite `json:"lost,omitempty"`
	// ResurrectedWrites counts superseded writes an answer returned again
	// (with a successor, or in the final read); Resurrected lists the
	// first CheckerConfig.MaxLost.
	ResurrectedWrites int64          `json:"resurrected_writes"`
	Resurrected       []Resurrection `json:"resurrected,omitempty"`
	// UnexpectedValues counts values carrying this run's tag that were
	// never written to the key they were read from.
	UnexpectedValues int64 `json:"unexpected_values"`
	// ForeignValues counts values without this run's tag (another run's
	// data on the same keys), which are ignored.
	ForeignValues    int64 `json:"foreign_values"`
	UnverifiedWrites int64 `json:"unverified_writes"` // acked writes whose final read failed or never ran
}

// TVisPoint is one t-visibility bucket.
type TVisPoint struct {
	Delta    time.Duration `json:"delta_ns"` // bucket lower bound
	Pairs    int64         `json:"pairs"`    // reads scored in this bucket
	Observed int64         `json:"observed"` // of which covered the write
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

// LostWrite is an acknowledged write the final check did not find: its
// key, its write id (the oracle's, in the value's tag), its coordinator
// and when it was sent and acknowledged (from the run's start in a
// Result).
type LostWrite = oracle.Lost

// Resurrection is a superseded write an answer returned again.
type Resurrection = oracle.Resurrection
