// Package membudget accounts the bytes a node holds for requests in flight
// (request bodies, decoded sibling sets, replies being written, RPC frames)
// against one node-wide budget, so that a burst of large requests is
// refused with a clear "busy" instead of killing the node with an
// out-of-memory error.
//
// A Budget grants bytes with Take (or Acquire, which returns the release
// function) and gets them back with Release. When they do not fit, a
// request waits in line, first come first served, for at most
// Config.MaxWait, then fails with a *BusyError carrying a Retry-After hint
// (HTTP 503 busy, RESP -BUSY). With Config.SmallRequest, small requests
// have their own line and a reserved share (Config.Reserve), so they are
// not refused while large ones wait for room. A request larger than the whole budget
// fails at once with a *TooLargeError (HTTP 413). Force charges memory
// that already exists without waiting; Hold tracks one owner's growing and
// shrinking share (a read buffer). A Budget may have a Parent that is
// charged too, for a sub-budget such as RESP's partial commands. A nil
// *Budget is unlimited and costs a nil check.
//
// The uncontended path is one compare-and-swap to take and one atomic add
// to release (about 10-20 ns, docs/bench/limits.md); the lock is taken
// only while someone waits.
//
// PlanFor derives the node's memory limit (--memory-limit, default a share
// of the cgroup limit or the machine, read by ReadMachine) and the budget
// and the store's memory from it, keeping a share out of the Go runtime's
// limit for the memory-mapped files RSS also counts; Plan.Apply makes the
// rest the Go runtime's GOMEMLIMIT.
//
// The package does not know what a byte is for and does not log; the
// caller maps errors to answers and exports Stats as metrics. All methods
// of Budget are safe for concurrent use; a Hold is owned by one goroutine.
//
//	release, err := budget.Acquire(ctx, int64(len(body)))
//	if err != nil {
//		return err // *BusyError: 503 + Retry-After; *TooLargeError: 413
//	}
//	defer release()
package membudget
