// Package plant holds switches that plant known, realistic bugs in the
// store, so that tests can prove the suite's detectors still catch them:
// each bug has a CI test that switches it on and asserts that its
// detector fails (a detector that stops detecting fails CI). Every switch
// is off by default; hooks in the code are single lines marked `// plant:`.
//
// Nothing in a production binary switches them on: the module's tests do,
// through Plant (the package is internal to the module), and a binary
// built with `go build -tags plant` reads QKV_PLANT at start
// (plant_env.go), for running the bench against real processes with a bug
// planted. A binary built without the tag has no way to turn one on from
// its input.
//
// The checks cost one atomic load per hook call. The package does no I/O.
package plant

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/quorumkv/quorumkv/vclock"
)

// Bug names a planted bug.
type Bug int

// The planted bugs (issue 20's table).
const (
	// MergeKeepsNewest: a replica's merge keeps only the newest sibling
	// (largest timestamp), dropping concurrent writes, while the clocks
	// are still joined (so every context covers the dropped dots).
	// Detector: the bench's oracle reports lost writes.
	MergeKeepsNewest Bug = iota + 1
	// HandoffPushesNothing: a leave or join handoff sends no record to the
	// new primaries, then drops the partition anyway, and a pending owner
	// reports its partitions received without pulling them (node's
	// transfers). Detector: the handoff tests (node/handoff_test.go).
	HandoffPushesNothing
	// MergeResurrects: a replica's merge brings back siblings of the
	// incoming set that its own copy had already superseded. Detector: the
	// oracle's resurrection check (TestChaos, the bench).
	MergeResurrects
	numBugs
)

var names = map[Bug]string{
	MergeKeepsNewest:     "merge-keeps-newest",
	HandoffPushesNothing: "handoff-pushes-nothing",
	MergeResurrects:      "merge-resurrects",
}

func (b Bug) String() string {
	if n, ok := names[b]; ok {
		return n
	}
	return fmt.Sprintf("bug(%d)", int(b))
}

// Parse returns the bug named s (as String prints it).
func Parse(s string) (Bug, error) {
	for b, n := range names {
		if n == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown planted bug %q", s)
}

var on [numBugs]atomic.Bool

// On reports whether b is planted.
func On(b Bug) bool { return b > 0 && b < numBugs && on[b].Load() }

// Plant switches b on for the whole process until the returned function
// is called. Tests that plant a bug must not run in parallel with tests
// that expect a correct store.
func Plant(b Bug) (undo func()) {
	on[b].Store(true)
	return func() { on[b].Store(false) }
}

// Len returns n, or 0 when b is planted: `batch = batch[:plant.Len(b,
// len(batch))]` empties a batch under the bug.
func Len(b Bug, n int) int {
	if On(b) {
		return 0
	}
	return n
}

// Merge applies the merge bugs to next, the correct merge of the incoming
// set in into a replica's copy cur. It returns next unchanged when no
// merge bug is planted.
func Merge(cur, in, next vclock.Set) vclock.Set {
	if On(MergeResurrects) {
		next = resurrect(cur, in, next)
	}
	if On(MergeKeepsNewest) && len(next.Siblings) > 1 {
		newest := slices.MaxFunc(next.Siblings, func(a, b vclock.Sibling) int {
			return int(min(max(a.Value.Timestamp-b.Value.Timestamp, -1), 1))
		})
		next = vclock.Set{Context: next.Context, Siblings: []vclock.Sibling{newest}}
	}
	return next
}

// resurrect adds back the siblings of in that cur had superseded (cur's
// context covers them, next dropped them).
func resurrect(cur, in, next vclock.Set) vclock.Set {
	var extra []vclock.Sibling
	for _, sb := range in.Siblings {
		if _, ok := next.Find(sb.Dot); !ok && cur.Context.Covers(sb.Dot) {
			extra = append(extra, sb)
		}
	}
	if len(extra) == 0 {
		return next
	}
	// Sync under empty contexts keeps every sibling of both, in the
	// set's canonical order; the clock stays next's (it covers them all).
	out := vclock.Sync(vclock.Set{Siblings: next.Siblings}, vclock.Set{Siblings: extra})
	out.Context = next.Context
	return out
}
