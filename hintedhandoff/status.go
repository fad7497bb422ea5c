package hintedhandoff

import (
	"slices"

	"github.com/quorumkv/quorumkv/ring"
)

// Status is the hinted-handoff part of a node's /status.
type Status struct {
	// Stored, Delivered and Failed count, since the node started, hint
	// writes that changed a stored hint, hints acknowledged by their
	// destination, and delivery attempts that failed.
	Stored    uint64 `json:"stored"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// Dropped counts hints refused or deleted by the caps, by reason
	// (bytes, age, corrupt).
	Dropped map[string]uint64 `json:"dropped"`
	// Targets has one entry per node this node holds hints for or has
	// delivered to, sorted by id.
	Targets []TargetStatus `json:"targets"`
	// RatePerSecond is the current cap on hints delivered per second (0:
	// none); it adapts between Config.MinRatePerSecond and
	// RatePerSecond when both are set.
	RatePerSecond float64 `json:"rate_per_second"`
	// RepairMarked lists (at most 256 of) the partitions marked for
	// anti-entropy since this node started because hints for them were
	// dropped, and MarkedCount how many there are. The list is cumulative;
	// anti-entropy's own status says which repairs are still pending.
	RepairMarked []uint32 `json:"repair_marked,omitempty"`
	MarkedCount  int      `json:"repair_marked_count"`
}

// TargetStatus is one target of hinted handoff in /status.
type TargetStatus struct {
	Target string `json:"target"`
	Alive  bool   `json:"alive"` // as gossip sees it
	OnRing bool   `json:"on_ring"`
	// Pending and Bytes are the hints held now and their size in the store.
	Pending int   `json:"pending"`
	Bytes   int64 `json:"bytes"`
	// OldestAgeSeconds is the age of the oldest hint (0 when none).
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Delivering is true while a delivery pass runs.
	Delivering bool `json:"delivering"`
	// Failures counts consecutive failed passes; RetryInSeconds is the
	// backoff left before the next (0: none); LastError is the last
	// failure's cause.
	Failures       int     `json:"failures"`
	RetryInSeconds float64 `json:"retry_in_seconds"`
	LastError      string  `json:"last_error,omitempty"`
	// Delivered, Failed and Dropped count since the node started.
	Delivered uint64            `json:"delivered"`
	Failed    uint64            `json:"failed"`
	Dropped   map[string]uint64 `json:"dropped,omitempty"`
}

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
