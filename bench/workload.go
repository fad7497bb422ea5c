package bench

import (
	"fmt"
	"strings"

	"github.com/quorumkv/quorumkv/internal/excerpt"
)

// Workload is an operation mix. The zero value is unset.
type Workload int

// The YCSB core workloads this package runs, plus write-only. Proportions
// are YCSB's: https://github.com/brianfrankcooper/YCSB/wiki/Core-Workloads.
const (
	WorkloadA         Workload = iota + 1 // 50% read, 50% update (update heavy)
	WorkloadB                             // 95% read, 5% update (read mostly)
	WorkloadC                             // 100% read
	WorkloadD                             // 95% read, 5% insert; latest keys
	WorkloadF                             // 50% read, 50% read-modify-write with the read's context
	WorkloadWriteOnly                     // 100% update
)

var workloadNames = map[Workload]string{
	WorkloadA: "a", WorkloadB: "b", WorkloadC: "c", WorkloadD: "d", WorkloadF: "f", WorkloadWriteOnly: "write",
}

// String returns the name ParseWorkload accepts ("a" ... "f", "write").
func (w Workload) String() string { return nameOf(workloadNames, w, "workload") }

// MarshalText implements encoding.TextMarshaler; the zero value (unset)
// marshals as "".
func (w Workload) MarshalText() ([]byte, error) {
	_, ok := workloadNames[w]
	return marshalName(w, ok, w.String(), "workload")
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseWorkload;
// "" is the zero value.
func (w *Workload) UnmarshalText(b []byte) error { return unmarshalName(w, b, ParseWorkload) }

// ParseWorkload parses a workload name: "a", "b", "c", "d", "f" (case
// insensitive, optionally prefixed "ycsb-") or "write" ("writeonly").
func ParseWorkload(s string) (Workload, error) {
	t := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "ycsb-")
	if t == "writeonly" || t == "write-only" {
		t = "write"
	}
	if w, ok := lookupName(workloadNames, t); ok {
		return w, nil
	}
	return 0, fmt.Errorf("workload %q: want a, b, c, d, f or write: %w", truncate(s), ErrSyntax)
}

// mix is an operation mix as cumulative proportions.
type mix struct {
	read, update, insert, rmw float64
}

// mixes are the operation mixes of the YCSB core workloads (and write-only).
var mixes = map[Workload]mix{
	WorkloadA:         {read: 0.5, update: 0.5},
	WorkloadB:         {read: 0.95, update: 0.05},
	WorkloadC:         {read: 1},
	WorkloadD:         {read: 0.95, insert: 0.05},
	WorkloadF:         {read: 0.5, rmw: 0.5},
	WorkloadWriteOnly: {update: 1},
}

func (w Workload) mix() mix { return mixes[w] }

// pick maps u in [0, 1) to an operation.
func (m mix) pick(u float64) opKind {
	switch {
	case u < m.read:
		return opRead
	case u < m.read+m.update:
		return opUpdate
	case u < m.read+m.update+m.insert:
		return opInsert
	case m.rmw > 0:
		return opRMW
	case m.update > 0: // rounding at the top of [0, 1)
		return opUpdate
	case m.insert > 0:
		return opInsert
	}
	return opRead
}

// opKind is what one logical operation does.
type opKind int

const (
	opRead   opKind = iota + 1 // Get
	opUpdate                   // Put to an existing key
	opInsert                   // Put to the next Latest slot
	opRMW                      // Get, then Put with the read's context
)

// Distribution is how keys are chosen. The zero value means the workload's
// default: DistLatest for WorkloadD, DistZipfian otherwise (as in YCSB).
type Distribution int

// Key distributions.
const (
	DistUniform Distribution = iota + 1 // every key equally likely
	DistZipfian                         // scrambled zipfian with skew Config.Theta
	DistLatest                          // zipfian over recency: newest keys hottest
)

var distNames = map[Distribution]string{DistUniform: "uniform", DistZipfian: "zipfian", DistLatest: "latest"}

// String returns the name ParseDistribution accepts.
func (d Distribution) String() string {
	if s, ok := distNames[d]; ok {
		return s
	}
	if d == 0 {
		return "default"
	}
	return fmt.Sprintf("distribution(%d)", int(d))
}

// MarshalText implements encoding.TextMarshaler; the zero value is "default".
func (d Distribution) MarshalText() ([]byte, error) {
	if _, ok := distNames[d]; !ok && d != 0 {
		return nil, fmt.Errorf("distribution %d: %w", int(d), ErrInvalidConfig)
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseDistribution.
func (d *Distribution) UnmarshalText(b []byte) error { return unmarshalName(d, b, ParseDistribution) }

// ParseDistribution parses "uniform", "zipfian", "latest" or "default"
// (the zero value).
func ParseDistribution(s string) (Distribution, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "default" || t == "" {
		return 0, nil
	}
	if d, ok := lookupName(distNames, t); ok {
		return d, nil
	}
	return 0, fmt.Errorf("distribution %q: want uniform, zipfian or latest: %w", truncate(s), ErrSyntax)
}

// CoordPolicy is how each request picks its coordinator. The zero value
// means CoordRoundRobin.
type CoordPolicy int

// Coordinator policies.
const (
	CoordRoundRobin CoordPolicy = iota + 1 // requests cycle through the nodes
	CoordRandom                            // each request picks a node at random
)

// String returns the name ParseCoordPolicy accepts.
func (p CoordPolicy) String() string {
	switch p {
	case 0, CoordRoundRobin:
		return "roundrobin"
	case CoordRandom:
		return "random"
	}
	return fmt.Sprintf("coordpolicy(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler; the zero value marshals
// as "".
func (p CoordPolicy) MarshalText() ([]byte, error) {
	return marshalName(p, p > 0 && p <= CoordRandom, p.String(), "coordinator policy")
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseCoordPolicy;
// "" is the zero value.
func (p *CoordPolicy) UnmarshalText(b []byte) error { return unmarshalName(p, b, ParseCoordPolicy) }

// ParseCoordPolicy parses "roundrobin" ("rr", "round-robin") or "random".
func ParseCoordPolicy(s string) (CoordPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "roundrobin", "round-robin", "rr":
		return CoordRoundRobin, nil
	case "random":
		return CoordRandom, nil
	}
	return 0, fmt.Errorf("coordinator policy %q: want roundrobin or random: %w", truncate(s), ErrSyntax)
}

// truncate shortens s for error messages, so a huge bad input does not
// produce a huge error.
func truncate(s string) string { return excerpt.Of(s, 64) }
