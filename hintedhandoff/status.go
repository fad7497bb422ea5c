package hintedhandoff

import (
	"slices"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/ring"
)

// The /status body is package api's (the HTTP contract); the driver
// fills it under these names.
type (
	Status       = api.HintsStatus
	TargetStatus = api.HintTarget
)

// Status reports delivery for /status.
func (d *Driver) Status() Status {
	out := Status{Stored: d.stored.Load(), Delivered: d.delivered.Load(), Failed: d.failed.Load(),
		Dropped: map[string]uint64{}, RatePerSecond: d.rate()}
	for _, r := range DropReasons {
		out.Dropped[r.String()] = d.droppedBy[r].Load()
	}
	held := d.st.HintTargets()
	r := d.host.Ring()
	now, mono := d.now(), d.clk.Now()
	d.mu.Lock()
	targets := slices.Compact(slices.Sorted(slices.Values(append(held, d.sched.Targets()...))))
	states := make([]TargetState, len(targets))
	for i, t := range targets {
		states[i] = d.sched.State(t, mono)
	}
	for p := range d.marked {
		out.RepairMarked = append(out.RepairMarked, p)
	}
	d.mu.Unlock()
	slices.Sort(out.RepairMarked)
	out.MarkedCount = len(out.RepairMarked)
	if len(out.RepairMarked) > maxMarkedShown {
		out.RepairMarked = out.RepairMarked[:maxMarkedShown]
	}
	out.Targets = make([]TargetStatus, 0, len(targets))
	for i, t := range targets {
		st, s := d.st.HintStats(t), states[i]
		ts := TargetStatus{Target: t, Alive: d.host.Alive(ring.NodeID(t)), OnRing: r.Has(ring.NodeID(t)),
			Pending: st.Count, Bytes: st.Bytes, Delivering: s.Running, Failures: s.Failures,
			RetryInSeconds: s.RetryIn.Seconds(), LastError: s.LastError,
			Delivered: s.Delivered, Failed: s.Failed, Dropped: s.Dropped}
		if !st.Oldest.IsZero() {
			ts.OldestAgeSeconds = max(0, now.Sub(st.Oldest).Seconds())
		}
		out.Targets = append(out.Targets, ts)
	}
	return out
}
