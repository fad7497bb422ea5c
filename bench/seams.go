package bench

import (
	"context"
	"errors"
	"fmt"
)

// WriteID names one write: the dot its coordinator minted. Callers adapt
// their version-vector dot to it (node id, the node's incarnation, counter).
type WriteID struct {
	Node    string `json:"node"`
	Epoch   uint64 `json:"epoch"`
	Counter uint64 `json:"counter"`
}

// String renders the dot as node/epoch/counter, for reports.
func (id WriteID) String() string {
	return fmt.Sprintf("%s/%d/%d", id.Node, id.Epoch, id.Counter)
}

// Observed is what a read saw: its causal context. Covers reports whether
// the write id is included in it, i.e. whether the read reflects that write
// or a later one that saw it.
//
// The Checker calls Covers only during the Checker.Read or Checker.Final
// call it was passed to and never retains it. For evicted history (see
// CheckerConfig.History) it assumes Covers is downward closed per node and
// epoch, as for any version vector: Covers({n, e, c}) implies
// Covers({n, e, c'}) for every c' <= c. A nil Observed covers nothing.
type Observed interface {
	Covers(id WriteID) bool
}

// ObservedFunc adapts a function to Observed.
type ObservedFunc func(id WriteID) bool

// Covers calls f(id).
func (f ObservedFunc) Covers(id WriteID) bool { return f(id) }

// Client is the store as the benchmark sees it. Every method must be safe for
// concurrent use by many goroutines. Get and Put must honour ctx (Run passes
// a per-request timeout and cancels on shutdown) and must not retain value
// after returning.
type Client interface {
	// Coordinators reports how many nodes requests can be sent to; coord
	// arguments are in [0, Coordinators()). Run calls it once at start.
	Coordinators() int
	// Get reads key through node coord. allR asks for R=N (all replicas),
	// used by the final lost-write check.
	Get(ctx context.Context, coord int, key string, q Quorum, allR bool) (ReadResult, error)
	// Put writes value through node coord. context is the opaque causal
	// context of an earlier read or write ("" for a blind write).
	Put(ctx context.Context, coord int, key string, value []byte, context string, q Quorum) (WriteResult, error)
}

// ReadResult is what a successful Get returned.
type ReadResult struct {
	Found    bool     // false when the key has no live value
	Siblings int      // concurrent values returned; 0 when not found
	Context  string   // opaque causal context, passed back on a later Put
	Observed Observed // the same context, decoded; nil covers nothing
}

// WriteResult is what an acknowledged Put returned.
type WriteResult struct {
	ID      WriteID // the dot the coordinator minted for this write
	Context string  // causal context after the write
}

// ErrorKind classifies an error for the report ("quorum", "timeout",
// "unavailable", ...). Return a short, low-cardinality label: Run keeps at
// most MaxErrorKinds distinct labels and counts the rest as "other". Run
// calls it from many goroutines at once.
type ErrorKind func(error) string

// DefaultErrorKind labels context deadline errors "timeout", cancellation
// "canceled" and everything else "error".
func DefaultErrorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}

// Faults is implemented by whoever started the cluster (the lead's local
// cluster); Run calls it from one goroutine as the schedule says. i is a node
// index as in Client coordinates. Each method returns once the fault is in
// effect.
type Faults interface {
	Kill(i int) error    // stop node i abruptly (SIGKILL)
	Restart(i int) error // start a killed node again on its old data
	Pause(i int) error   // freeze node i (SIGSTOP)
	Resume(i int) error  // unfreeze a paused node (SIGCONT)
}
