package bench

import (
	"context"
	"errors"
)

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
	// context of an earlier read or write ("" for a blind write). The
	// answer must list the key's live values after the write.
	Put(ctx context.Context, coord int, key string, value []byte, context string, q Quorum) (WriteResult, error)
}

// ReadResult is what a successful Get returned.
type ReadResult struct {
	Found bool // false when the key has no live value
	// Values are the data of the live values (siblings) returned, in any
	// order. The consistency oracle reads the write id each value starts
	// with; Run does not retain them after the Get's caller returns.
	Values  [][]byte
	Context string // opaque causal context, passed back on a later Put
}

// WriteResult is what an acknowledged Put returned.
type WriteResult struct {
	// Context is the causal context after the write.
	Context string
	// Values are the data of the key's live values after the write, as
	// the coordinator answered (the HTTP API's returnbody): what Context
	// covers, as far as the client was shown. They must include the
	// value just written.
	Values [][]byte
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
