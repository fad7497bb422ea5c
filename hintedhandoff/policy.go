package hintedhandoff

import (
	"math"
	"slices"
	"time"
)

// Backoff is an exponential retry schedule with jitter for a target whose
// delivery failed.
type Backoff struct {
	// Base is the delay after the first consecutive failure, before jitter.
	// It doubles with each further failure. Zero or less means 1s.
	Base time.Duration
	// Max caps the delay before jitter. Zero or less means 60s; a Max below
	// Base means Base.
	Max time.Duration
}

// Delay returns how long to leave a target alone after its failures-th
// consecutive failed delivery (failures < 1 counts as 1). jitter is a
// number in [0, 1), from the caller's random source; values outside are
// clamped. The delay is d/2 + jitter·d/2 with d = min(Max, Base·2^(failures-1)):
// never below half the schedule, so a down target is not hammered, and
// spread over the other half, so the fallbacks of one dead node do not all
// retry in the same instant when it comes back.
func (b Backoff) Delay(failures int, jitter float64) time.Duration {
	base, maxD := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if maxD <= 0 {
		maxD = time.Minute
	}
	maxD = max(maxD, base)
	d := maxD
	if failures < 1 {
		failures = 1
	}
	// base<<k overflows past k = 62 - log2(base); stop doubling once it
	// reaches maxD.
	if shift := failures - 1; shift < 62 {
		if v := base << shift; v>>shift == base && v > 0 && v < maxD {
			d = v
		}
	}
	if math.IsNaN(jitter) || jitter < 0 {
		jitter = 0
	}
	jitter = min(jitter, 1)
	half := d / 2
	return half + time.Duration(jitter*float64(d-half))
}

// Held describes the hints a node keeps for one target (store.HintStats).
type Held struct {
	Count int   // number of hints
	Bytes int64 // their size in the store, keys and headers included
	// Oldest is when the oldest hint was first written. Zero with Count > 0
	// means a hint whose stored header is corrupt is present.
	Oldest time.Time
}

// Limits are the caps on the hints a node keeps for one target. They bound
// what a long outage costs the fallbacks; what they drop is left to
// anti-entropy, which the node tells to repair those partitions first.
type Limits struct {
	// MaxBytes refuses new hints for a target once its hints take this many
	// bytes. Zero or less: no cap.
	MaxBytes int64
	// MaxAge expires hints first written longer ago than this. Zero or
	// less: no cap.
	MaxAge time.Duration
}

// Admit reports whether a new hint may be stored for a target whose hints
// take held bytes. A merge into a hint the target already has counts as a
// new hint: past the cap nothing more is written for it.
func (l Limits) Admit(held int64) bool {
	return l.MaxBytes <= 0 || held < l.MaxBytes
}

// corruptOnly is a cutoff older than any real creation time: expiring
// before it removes only hints whose header is corrupt (package store
// indexes those at the minimum time).
var corruptOnly = time.Unix(0, math.MinInt64+1)

// ExpiryGranularity divides MaxAge into the smallest step between two
// expiry runs for one target. A run has to scan the target's hints to learn
// their partitions, so it should not repeat every round while the oldest
// hints age past the cap one by one; the cost is that a hint may outlive
// MaxAge by up to MaxAge/ExpiryGranularity (about 1.6%).
const ExpiryGranularity = 64

// Expiry decides whether to expire a target's hints now: run is true when
// some hints are older than MaxAge (or corrupt) and the previous run for
// the target, at lastRun (zero: never), was at least
// MaxAge/ExpiryGranularity ago. Hints first written before cutoff are to be
// deleted. Corrupt hints are expired even without an age cap, at once.
func (l Limits) Expiry(h Held, now, lastRun time.Time) (cutoff time.Time, run bool) {
	if h.Count <= 0 {
		return time.Time{}, false
	}
	if l.MaxAge <= 0 {
		if h.Oldest.IsZero() {
			return corruptOnly, true
		}
		return time.Time{}, false
	}
	cutoff = now.Add(-l.MaxAge)
	if !h.Oldest.IsZero() && !h.Oldest.Before(cutoff) {
		return time.Time{}, false
	}
	if !lastRun.IsZero() && now.Sub(lastRun) < l.MaxAge/ExpiryGranularity && !h.Oldest.IsZero() {
		return time.Time{}, false
	}
	return cutoff, true
}

// Destinations returns the nodes a hint held for target must reach before
// it may be deleted. While target is on the ring the hint goes to target
// only, even if the ring has changed and target no longer replicates the
// key's partition: the hint restores what target missed, and moving data
// off a former owner is ownership handoff's job. A target that left the
// ring (or was removed) will never take it, so the hint goes to the
// partition's current primaries instead, every one of them, so that no
// write acknowledged through a fallback is lost with the departed node.
// The result is a fresh slice; it is empty when primaries is.
func Destinations(target string, onRing bool, primaries []string) []string {
	if onRing {
		return []string{target}
	}
	return slices.Clone(primaries)
}

// DropReason says why hints were dropped. ONLY APPEND: the names are metric
// label values.
type DropReason int

const (
	// DropBytes: the target's hints reached Limits.MaxBytes, a new hint was
	// refused.
	DropBytes DropReason = iota + 1
	// DropAge: hints older than Limits.MaxAge were expired.
	DropAge
	// DropCorrupt: a stored hint could not be decoded and was deleted.
	DropCorrupt
)

// DropReasons lists every reason, in order.
var DropReasons = []DropReason{DropBytes, DropAge, DropCorrupt}

// String is the reason's metric label: bytes, age or corrupt.
func (r DropReason) String() string {
	switch r {
	case DropBytes:
		return "bytes"
	case DropAge:
		return "age"
	case DropCorrupt:
		return "corrupt"
	}
	return "unknown"
}
