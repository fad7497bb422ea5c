// Package driverenv is what a node's background drivers (anti-entropy and
// hinted handoff) share of their surroundings: which node they run on, how
// many primaries a partition has, how long one call may take, and where
// they log, register metrics and read the time, with one rule for the
// defaults of the last three.
package driverenv

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/clock"
)

// Env is a driver's surroundings, given at construction (embedded in its
// Deps).
type Env struct {
	// Self is this node's id.
	Self string
	// N is the number of primaries of a partition (the node's default N).
	N int
	// CallTimeout bounds one call to a peer.
	CallTimeout time.Duration
	// Metrics registers the driver's metrics; nil registers nowhere.
	Metrics prometheus.Registerer
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Clock runs the driver's timers and measures its durations; nil
	// means clock.Real.
	Clock clock.Clock
	// Now is the wall clock of what outlives a process (heartbeats, hint
	// ages, grace periods, dead times); nil means Clock.Now.
	Now func() time.Time
}

// WithDefaults returns e with a nil Logger, Clock or Now replaced by its
// default.
func (e Env) WithDefaults() Env {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	e.Clock = clock.Or(e.Clock)
	if e.Now == nil {
		e.Now = e.Clock.Now
	}
	return e
}
