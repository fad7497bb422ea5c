package bench

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault schedule and delay limits.
const (
	// MaxFaultSteps caps the steps of one Schedule.
	MaxFaultSteps = 1024
	// MaxFaultNode caps a node index in a Schedule.
	MaxFaultNode = 1 << 16
	// MaxDelay caps every parameter of a Delay, and every sample it draws.
	MaxDelay = time.Minute
)

// FaultAction is what a schedule step does to a node. The zero value is unset.
type FaultAction int

// Fault actions, mapped to the Faults methods of the same names.
const (
	FaultKill FaultAction = iota + 1
	FaultRestart
	FaultPause
	FaultResume
)

var faultNames = map[FaultAction]string{FaultKill: "kill", FaultRestart: "restart", FaultPause: "pause", FaultResume: "resume"}

// String returns the schedule keyword ("kill", "restart", "pause", "resume").
func (a FaultAction) String() string { return nameOf(faultNames, a, "fault") }

// MarshalText implements encoding.TextMarshaler; the zero value marshals
// as "".
func (a FaultAction) MarshalText() ([]byte, error) {
	_, ok := faultNames[a]
	return marshalName(a, ok, a.String(), "fault action")
}

// UnmarshalText implements encoding.TextUnmarshaler; "" is the zero value.
func (a *FaultAction) UnmarshalText(b []byte) error { return unmarshalName(a, b, parseFaultAction) }

func parseFaultAction(s string) (FaultAction, error) {
	if a, ok := lookupName(faultNames, s); ok {
		return a, nil
	}
	return 0, fmt.Errorf("fault action %q: want kill, restart, pause or resume: %w", truncate(s), ErrSyntax)
}

// FaultStep is one step of a Schedule: at At after the run starts, apply
// Action to node Node.
type FaultStep struct {
	At     time.Duration `json:"at_ns"`
	Action FaultAction   `json:"action"`
	Node   int           `json:"node"`
}

// Schedule is a fault schedule, sorted by time (steps at the same time keep
// their written order).
type Schedule []FaultStep

// ParseSchedule parses a comma-separated list of at:action:node steps, e.g.
// "10s:kill:1,20s:restart:1,30s:pause:2,35s:resume:2". at is a Go duration
// from the run's start; "" is the empty schedule.
func ParseSchedule(s string) (Schedule, error) {
	if len(s) > maxSpecLen {
		return nil, fmt.Errorf("schedule: %d bytes is too long: %w", len(s), ErrSyntax)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	fields := strings.Split(s, ",")
	if len(fields) > MaxFaultSteps {
		return nil, fmt.Errorf("schedule: %d steps, at most %d: %w", len(fields), MaxFaultSteps, ErrSyntax)
	}
	sched := make(Schedule, 0, len(fields))
	for _, f := range fields {
		parts := strings.Split(strings.TrimSpace(f), ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("schedule step %q: want at:action:node: %w", truncate(f), ErrSyntax)
		}
		at, err := time.ParseDuration(parts[0])
		if err != nil || at < 0 {
			return nil, fmt.Errorf("schedule step %q: bad time: %w", truncate(f), ErrSyntax)
		}
		a, err := parseFaultAction(strings.ToLower(parts[1]))
		if err != nil {
			return nil, fmt.Errorf("schedule step %q: %w", truncate(f), err)
		}
		node, err := strconv.Atoi(parts[2])
		if err != nil || node < 0 || node > MaxFaultNode {
			return nil, fmt.Errorf("schedule step %q: node must be in [0, %d]: %w", truncate(f), MaxFaultNode, ErrSyntax)
		}
		sched = append(sched, FaultStep{At: at, Action: a, Node: node})
	}
	slices.SortStableFunc(sched, func(a, b FaultStep) int { return cmpDuration(a.At, b.At) })
	return sched, nil
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String renders the schedule in the syntax ParseSchedule reads.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = st.At.String() + ":" + st.Action.String() + ":" + strconv.Itoa(st.Node)
	}
	return strings.Join(parts, ",")
}

// Validate checks every step's ranges; it does not change s.
func (s Schedule) Validate() error {
	if len(s) > MaxFaultSteps {
		return fmt.Errorf("schedule: %d steps, at most %d: %w", len(s), MaxFaultSteps, ErrInvalidConfig)
	}
	for i, st := range s {
		if _, ok := faultNames[st.Action]; !ok || st.At < 0 || st.Node < 0 || st.Node > MaxFaultNode {
			return fmt.Errorf("schedule step %d (%v): %w", i, st, ErrInvalidConfig)
		}
		if i > 0 && st.At < s[i-1].At {
			return fmt.Errorf("schedule: steps not sorted by time: %w", ErrInvalidConfig)
		}
	}
	return nil
}

// FaultEvent records a fault step as it was applied.
type FaultEvent struct {
	At      time.Duration `json:"at_ns"`      // planned offset from the run's start
	Elapsed time.Duration `json:"elapsed_ns"` // when it was applied (took effect)
	Action  FaultAction   `json:"action"`
	Node    int           `json:"node"`
	// Restore marks the steps Run added after the workload to undo faults
	// the schedule left in place (resume a paused node, restart a killed
	// one) before the final lost-write check.
	Restore bool   `json:"restore,omitempty"`
	Err     string `json:"error,omitempty"`
}

// faultRunner applies a Schedule against a Faults hook, timed from t0.
type faultRunner struct {
	f     Faults
	sched Schedule
	t0    time.Time

	mu     sync.Mutex
	events []FaultEvent
	down   map[int]FaultAction // node -> FaultKill or FaultPause while in effect
}

func newFaultRunner(f Faults, s Schedule, t0 time.Time) *faultRunner {
	return &faultRunner{f: f, sched: s, t0: t0, down: make(map[int]FaultAction)}
}

// run applies the steps in order until stop is closed.
func (fr *faultRunner) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for _, st := range fr.sched {
		if wait := time.Until(fr.t0.Add(st.At)); wait > 0 {
			t.Reset(wait)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		fr.apply(st, false)
	}
}

func (fr *faultRunner) apply(st FaultStep, restore bool) {
	var err error
	switch st.Action {
	case FaultKill:
		err = fr.f.Kill(st.Node)
	case FaultRestart:
		err = fr.f.Restart(st.Node)
	case FaultPause:
		err = fr.f.Pause(st.Node)
	case FaultResume:
		err = fr.f.Resume(st.Node)
	}
	ev := FaultEvent{At: st.At, Elapsed: time.Since(fr.t0), Action: st.Action, Node: st.Node, Restore: restore}
	if restore {
		ev.At = ev.Elapsed
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if err != nil {
		ev.Err = err.Error()
	} else {
		switch st.Action {
		case FaultKill, FaultPause:
			fr.down[st.Node] = st.Action
		case FaultRestart, FaultResume:
			delete(fr.down, st.Node)
		}
	}
	fr.events = append(fr.events, ev)
}

// restore resumes paused nodes and restarts killed ones, in node order.
// Call it only after run has returned.
func (fr *faultRunner) restore() {
	fr.mu.Lock()
	nodes := slices.Sorted(maps.Keys(fr.down))
	fr.mu.Unlock()
	for _, n := range nodes {
		fr.mu.Lock()
		a := fr.down[n]
		fr.mu.Unlock()
		undo := FaultRestart
		if a == FaultPause {
			undo = FaultResume
		}
		fr.apply(FaultStep{Action: undo, Node: n}, true)
	}
}

func (fr *faultRunner) recorded() []FaultEvent {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return slices.Clone(fr.events)
}

// DelayKind is the shape of an injected delay distribution.
type DelayKind int

// Delay distributions. The zero value is no delay.
const (
	DelayFixed DelayKind = iota + 1 // Base, plus uniform jitter in [-Jitter, +Jitter]
	DelayExp                        // exponential with mean Base
)

// Delay is a per-message delay distribution for injected latency. The zero
// value adds no delay. The local cluster (not this package) applies it; this
// package parses it and draws samples.
type Delay struct {
	Kind   DelayKind     `json:"kind,omitempty"`
	Base   time.Duration `json:"base_ns,omitempty"`   // fixed part, or the exponential's mean
	Jitter time.Duration `json:"jitter_ns,omitempty"` // DelayFixed only: half-width of the uniform jitter
}

// ParseDelay parses a delay distribution: "exp:2ms" (exponential, mean
// 2ms), "fixed:1ms" or "fixed:1ms+jitter:500us" (1ms ± uniform 500us,
// clamped at 0, like netem), or "" / "none" for no delay. Every duration
// must be in [0, MaxDelay].
func ParseDelay(s string) (Delay, error) {
	if len(s) > maxSpecLen {
		return Delay{}, fmt.Errorf("delay: %d bytes is too long: %w", len(s), ErrSyntax)
	}
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" || t == "none" {
		return Delay{}, nil
	}
	dur := func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxDelay {
			return 0, fmt.Errorf("delay %q: %q must be a duration in [0, %v]: %w", truncate(s), truncate(v), MaxDelay, ErrSyntax)
		}
		return d, nil
	}
	switch {
	case strings.HasPrefix(t, "exp:"):
		m, err := dur(t[len("exp:"):])
		if err != nil {
			return Delay{}, err
		}
		return Delay{Kind: DelayExp, Base: m}, nil
	case strings.HasPrefix(t, "fixed:"):
		base, jit, hasJit := strings.Cut(t[len("fixed:"):], "+")
		b, err := dur(base)
		if err != nil {
			return Delay{}, err
		}
		d := Delay{Kind: DelayFixed, Base: b}
		if hasJit {
			j, ok := strings.CutPrefix(jit, "jitter:")
			if !ok {
				return Delay{}, fmt.Errorf("delay %q: want fixed:D+jitter:D: %w", truncate(s), ErrSyntax)
			}
			if d.Jitter, err = dur(j); err != nil {
				return Delay{}, err
			}
		}
		return d, nil
	}
	return Delay{}, fmt.Errorf("delay %q: want exp:D, fixed:D or fixed:D+jitter:D: %w", truncate(s), ErrSyntax)
}

// String renders d in the syntax ParseDelay reads.
func (d Delay) String() string {
	switch d.Kind {
	case DelayExp:
		return "exp:" + d.Base.String()
	case DelayFixed:
		if d.Jitter > 0 {
			return "fixed:" + d.Base.String() + "+jitter:" + d.Jitter.String()
		}
		return "fixed:" + d.Base.String()
	}
	return "none"
}

// Sample draws one delay, in [0, MaxDelay]. r is the caller's seeded source,
// so a run's delays are reproducible; Sample does not lock it.
func (d Delay) Sample(r *rand.Rand) time.Duration {
	var v float64
	switch d.Kind {
	case DelayExp:
		v = r.ExpFloat64() * float64(d.Base)
	case DelayFixed:
		v = float64(d.Base)
		if d.Jitter > 0 {
			v += (2*r.Float64() - 1) * float64(d.Jitter)
		}
	default:
		return 0
	}
	return time.Duration(max(0, min(v, float64(MaxDelay))))
}

// Mean returns the distribution's mean before clamping (for reports).
func (d Delay) Mean() time.Duration {
	if d.Kind == 0 {
		return 0
	}
	return d.Base
}
