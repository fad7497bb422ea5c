package bench

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Runner limits.
const (
	// MaxConcurrency caps Config.Concurrency.
	MaxConcurrency = 1 << 14
	// MaxValueSize caps Config.ValueSize (the store's default value limit).
	MaxValueSize = 1 << 20
	// MaxRate caps Config.Rate, in operations per second.
	MaxRate = 1e7
)

// Config describes one benchmark run. Start from DefaultConfig. Fields
// documented as "zero means X" are resolved on a copy when the run starts;
// Validate never changes the Config.
type Config struct {
	// Workload is the operation mix. Default WorkloadA; zero is invalid.
	Workload Workload
	// Distribution picks keys. Zero means the workload's default: latest
	// for D, zipfian for the others.
	Distribution Distribution
	// Theta is the zipfian skew for DistZipfian and DistLatest, in [0, 1).
	// Higher is more skewed. Zero means DefaultTheta (0.99); for no skew use
	// DistUniform.
	Theta float64
	// Keys is the number of distinct keys, in [1, MaxKeys]. Default 10,000.
	// Inserts (workload D) reuse the oldest slot, so it is also the most
	// keys a run ever touches, which bounds the Checker's memory.
	Keys int
	// KeyPrefix is prepended to every key ("<prefix><index>"). Sweep
	// appends the setting ("3-2-2/") so settings never share keys. Default
	// "bench/"; empty is allowed.
	KeyPrefix string
	// ValueSize is the size of every written value in bytes, in
	// [MinValueSize, MaxValueSize]: each value starts with its write's
	// tag (MinValueSize = 32 bytes), which makes every value unique and
	// lets the consistency oracle tell which write a read returned.
	// Default 100.
	ValueSize int
	// Concurrency is the number of workers, each with at most one request
	// in flight: the closed-loop client count, or the open loop's limit on
	// outstanding requests. Default 16; at least 1.
	Concurrency int
	// Duration stops the run this long after it starts (after Load). Zero
	// means no time limit; then Ops must be set. Default 30s.
	Duration time.Duration
	// Ops stops the run after this many operations (a read-modify-write is
	// one). Zero means no count limit; then Duration must be set. Default 0.
	Ops int64
	// Rate, when positive, runs an open loop: operation i is due at start +
	// i/Rate, and its latency is measured from that intended time, so a
	// stall shows up in every operation queued behind it (no coordinated
	// omission). Unit: operations per second, at most MaxRate. Zero means a
	// closed loop (each worker sends its next request when the last one
	// returns, latency from the send). Default 0.
	Rate float64
	// Coordinators chooses each request's coordinator. Zero means
	// CoordRoundRobin.
	Coordinators CoordPolicy
	// Quorum is the N/R/W sent with every request. Default 3/2/2.
	Quorum Quorum
	// Seed makes key choice, operation mix, coordinator choice and values
	// reproducible: each worker draws from its own source seeded (Seed,
	// worker). With Concurrency > 1 the interleaving still varies. Default 1.
	Seed uint64
	// Timeout bounds each request. Zero means no per-request timeout (only
	// ctx). Default 5s.
	Timeout time.Duration
	// Load writes every key once (blind, through the same quorum) before
	// the run starts, as YCSB's load phase does, so reads find data. Load
	// writes feed the Checker but no latency histogram. Default true.
	Load bool
	// BlindUpdates sends updates without a context (YCSB's semantics). With
	// false, an update carries the context of the last write this run made
	// to the key (with the values its answer showed), as a client that
	// keeps its own session would; blind
	// updates make every write concurrent with what is stored, so siblings
	// pile up. Read-modify-writes always use the read's context. Default
	// false.
	BlindUpdates bool
	// History, Deltas and MaxLost configure the Checker (see CheckerConfig;
	// zero values mean its defaults).
	History int
	Deltas  []time.Duration
	MaxLost int
	// CheckLost runs the final lost-write check: after the workload (and
	// Settle), read every written key at R=N and check that every
	// acknowledged write is returned or superseded by a write whose
	// context showed it (package oracle). Default true.
	CheckLost bool
	// Settle is how long to wait after the workload, and after undoing
	// scheduled faults, before the lost-write check, so hinted handoff can
	// deliver. Zero means no wait. Default 2s.
	Settle time.Duration
	// ErrorKind labels failed requests in the report. Nil means
	// DefaultErrorKind.
	ErrorKind ErrorKind
	// Progress receives a progress line every ProgressInterval: elapsed,
	// operations, ops/s over the last interval, errors. Nil means none.
	Progress io.Writer
	// Terminal redraws the progress line in place ("\r", clear to end of
	// line) instead of printing one line per interval; set it when Progress
	// is a terminal. Default false.
	Terminal bool
	// ProgressInterval is the time between progress lines. Zero means 1s.
	ProgressInterval time.Duration
	// Label prefixes each progress line (Sweep sets it to the setting).
	Label string
	// Faults is the hook Schedule acts through. Nil is allowed only with
	// an empty Schedule.
	Faults Faults
	// Schedule lists faults to inject, timed from the run's start (after
	// Load). Faults still in effect when the workload ends are undone
	// before the lost-write check. Default none.
	Schedule Schedule
	// Delay documents the latency injected into the cluster for the report;
	// the cluster applies it, Run does not. Default none.
	Delay Delay
}

// DefaultConfig returns a 30-second closed-loop YCSB A run at 3/2/2 with 16
// workers over 10,000 keys.
func DefaultConfig() Config {
	return Config{
		Workload:    WorkloadA,
		Keys:        10_000,
		KeyPrefix:   "bench/",
		ValueSize:   100,
		Concurrency: 16,
		Duration:    30 * time.Second,
		Quorum:      Quorum{N: 3, R: 2, W: 2},
		Seed:        1,
		Timeout:     5 * time.Second,
		Load:        true,
		CheckLost:   true,
		Settle:      2 * time.Second,
	}
}

// Validate checks every field's range and cross-field rules; it does not
// change c.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bench config: "+format+": %w", append(args, ErrInvalidConfig)...)
	}
	if _, ok := workloadNames[c.Workload]; !ok {
		return bad("workload %d is not set", int(c.Workload))
	}
	if _, ok := distNames[c.Distribution]; !ok && c.Distribution != 0 {
		return bad("distribution %d", int(c.Distribution))
	}
	if c.Workload == WorkloadD && c.Distribution != 0 && c.Distribution != DistLatest {
		return bad("workload d inserts and reads the latest keys; distribution must be latest")
	}
	if !(c.Theta >= 0 && c.Theta < 1) {
		return bad("theta %v must be in [0, 1)", c.Theta)
	}
	if c.Keys < 1 || c.Keys > MaxKeys {
		return bad("keys %d must be in [1, %d]", c.Keys, MaxKeys)
	}
	if c.ValueSize < MinValueSize || c.ValueSize > MaxValueSize {
		return bad("value size %d must be in [%d, %d] (every value starts with its write's %d-byte tag)", c.ValueSize, MinValueSize, MaxValueSize, MinValueSize)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		return bad("concurrency %d must be in [1, %d]", c.Concurrency, MaxConcurrency)
	}
	if c.Duration < 0 || c.Ops < 0 {
		return bad("duration and ops must not be negative")
	}
	if c.Duration == 0 && c.Ops == 0 {
		return bad("set a duration or an op count")
	}
	if math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > MaxRate {
		return bad("rate %v must be in [0, %v]", c.Rate, MaxRate)
	}
	if c.Coordinators < 0 || c.Coordinators > CoordRandom {
		return bad("coordinator policy %d", int(c.Coordinators))
	}
	if err := c.Quorum.Validate(); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	if c.Timeout < 0 || c.Settle < 0 || c.ProgressInterval < 0 {
		return bad("timeout, settle and progress interval must not be negative")
	}
	if err := c.checkerConfig().Validate(); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	if err := c.Schedule.Validate(); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	if len(c.Schedule) > 0 && c.Faults == nil {
		return bad("a fault schedule needs a Faults hook")
	}
	return nil
}

func (c Config) checkerConfig() CheckerConfig {
	return CheckerConfig{History: c.History, Deltas: c.Deltas, MaxLost: c.MaxLost}
}

// withDefaults resolves the zero values documented on Config.
func (c Config) withDefaults() Config {
	if c.Distribution == 0 {
		c.Distribution = DistZipfian
		if c.Workload == WorkloadD {
			c.Distribution = DistLatest
		}
	}
	if c.Theta == 0 {
		c.Theta = DefaultTheta
	}
	if c.Coordinators == 0 {
		c.Coordinators = CoordRoundRobin
	}
	if c.ErrorKind == nil {
		c.ErrorKind = DefaultErrorKind
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	cc := c.checkerConfig().withDefaults()
	c.History, c.Deltas, c.MaxLost = cc.History, cc.Deltas, cc.MaxLost
	return c
}

// Params is the part of a Config a report shows, with defaults resolved.
type Params struct {
	Workload     Workload      `json:"workload"`
	Distribution Distribution  `json:"distribution"`
	Theta        float64       `json:"theta"`
	Keys         int           `json:"keys"`
	ValueSize    int           `json:"value_size"`
	Concurrency  int           `json:"concurrency"`
	Duration     time.Duration `json:"duration_ns"`
	Ops          int64         `json:"ops"`
	Rate         float64       `json:"rate"`
	Coordinators CoordPolicy   `json:"coordinators"`
	Seed         uint64        `json:"seed"`
	Timeout      time.Duration `json:"timeout_ns"`
	Load         bool          `json:"load"`
	BlindUpdates bool          `json:"blind_updates"`
	History      int           `json:"history"`
	Schedule     string        `json:"schedule,omitempty"`
	Delay        string        `json:"delay,omitempty"`
}

func (c Config) params() Params {
	p := Params{
		Workload: c.Workload, Distribution: c.Distribution, Theta: c.Theta, Keys: c.Keys,
		ValueSize: c.ValueSize, Concurrency: c.Concurrency, Duration: c.Duration, Ops: c.Ops,
		Rate: c.Rate, Coordinators: c.Coordinators, Seed: c.Seed, Timeout: c.Timeout,
		Load: c.Load, BlindUpdates: c.BlindUpdates, History: c.History,
		Schedule: c.Schedule.String(),
	}
	if c.Delay.Kind != 0 {
		p.Delay = c.Delay.String()
	}
	return p
}
