package antientropy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/replica"
)

// Status is the anti-entropy part of /status.
type Status struct {
	// Enabled is false when the schedule is off (Interval 0): exchanges
	// then run only on demand or for marked partitions.
	Enabled         bool    `json:"enabled"`
	IntervalSeconds float64 `json:"interval_seconds"`
	LeafBits        int     `json:"leaf_bits"`
	// TreeBytes is the memory of all the partition trees.
	TreeBytes int `json:"tree_bytes"`
	// KeysAtStart and BuildMS describe the trees' start-up build from the
	// store.
	KeysAtStart           int     `json:"keys_at_start"`
	BuildMS               float64 `json:"build_ms"`
	TombstoneGraceSeconds float64 `json:"tombstone_grace_seconds"`
	MaxDowntimeSeconds    float64 `json:"max_downtime_seconds"`
	// Quarantined: this node's records are closed while it checks with its
	// peers (or drops its data); QuarantineReason says why.
	Quarantined      bool   `json:"quarantined"`
	QuarantineReason string `json:"quarantine_reason,omitempty"`
	// Excluded is the exclusion ledger: peers this node reaped tombstones
	// without; their RPCs are refused until they dropped their data.
	Excluded []ExcludedPeer `json:"excluded,omitempty"`
	// PendingClear lists peers not yet told that this node dropped its data.
	PendingClear []string `json:"pending_clear,omitempty"`
	// Wipes counts the times this node dropped its data since it started.
	Wipes int `json:"wipes"`
	// Running is the exchange in progress, if any.
	Running *RunningExchange `json:"running,omitempty"`
	// Totals since the node started, over the exchanges it started.
	Exchanges           uint64 `json:"exchanges"`
	ExchangesFailed     uint64 `json:"exchanges_failed"`
	KeysCompared        uint64 `json:"keys_compared"`
	KeysDiffering       uint64 `json:"keys_differing"`
	RepairedLocal       uint64 `json:"repaired_local"`
	RepairedRemote      uint64 `json:"repaired_remote"`
	BytesSent           uint64 `json:"bytes_sent"`
	BytesReceived       uint64 `json:"bytes_received"`
	TombstonesConfirmed uint64 `json:"tombstones_confirmed"`
	TombstonesReaped    uint64 `json:"tombstones_reaped"`
	// LastReap is the last reap pass.
	LastReap *ReapStatus `json:"last_reap,omitempty"`
	// Partitions has the last exchange of each partition this node started
	// one for, by partition.
	Partitions []ExchangeStatus `json:"partitions"`
}

// ExcludedPeer is one entry of the exclusion ledger.
type ExcludedPeer struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// RunningExchange is a running exchange.
type RunningExchange struct {
	Partition uint32    `json:"partition"`
	Peer      string    `json:"peer"`
	Started   time.Time `json:"started"`
}

// ExchangeStatus is one exchange: partition, peer, what it compared and
// repaired, its bytes on the wire (RPC bodies both ways) and its error.
type ExchangeStatus struct {
	Partition  uint32    `json:"partition"`
	Peer       string    `json:"peer"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	// Rounds counts the tree round trips (1 when the roots agreed);
	// LevelsWalked the deepest tree level reached.
	Rounds       int `json:"rounds"`
	LevelsWalked int `json:"levels_walked"`
	// KeysCompared counts the keys listed, both sides, in the leaves that
	// differed; KeysDiffering those whose digests differed.
	KeysCompared  int `json:"keys_compared"`
	KeysDiffering int `json:"keys_differing"`
	// RepairedLocal and RepairedRemote count keys written here and at the
	// peer.
	RepairedLocal  int `json:"repaired_local"`
	RepairedRemote int `json:"repaired_remote"`
	// LeftToReaper counts confirmed tombstones absent on the other side,
	// not copied (see driver_reap.go); KeyErrors keys that could not be
	// repaired (undecodable sets, keys filed under a wrong hash).
	LeftToReaper  int    `json:"left_to_reaper,omitempty"`
	Errors        int    `json:"key_errors,omitempty"`
	BytesSent     int    `json:"bytes_sent"`
	BytesReceived int    `json:"bytes_received"`
	Error         string `json:"error,omitempty"`
}

// ReapStatus is one pass of the tombstone reaper.
type ReapStatus struct {
	At time.Time `json:"at"`
	// Candidates counts the all-tombstone records looked at; Confirmed those
	// every primary was found to hold (the grace starts); Reaped those
	// deleted; Blocked those a primary did not hold or could not confirm.
	Candidates int `json:"candidates"`
	Confirmed  int `json:"confirmed"`
	Reaped     int `json:"reaped"`
	Blocked    int `json:"blocked"`
	// Expired counts the records whose values had all passed their
	// deadline and that this pass turned into tombstones (they are
	// confirmed and reaped like deleted ones from then on).
	Expired int `json:"expired"`
}

// Status reports anti-entropy for /status.
func (a *Driver) Status() Status {
	st := Status{
		Enabled:               a.cfg.Interval > 0,
		IntervalSeconds:       a.cfg.Interval.Seconds(),
		LeafBits:              a.cfg.LeafBits,
		KeysAtStart:           a.built,
		BuildMS:               float64(a.buildTime.Microseconds()) / 1000,
		TombstoneGraceSeconds: a.cfg.TombstoneGrace.Seconds(),
		MaxDowntimeSeconds:    a.cfg.MaxDowntime.Seconds(),
		Exchanges:             a.stats.exchanges.Load(),
		ExchangesFailed:       a.stats.failed.Load(),
		KeysCompared:          a.stats.compared.Load(),
		KeysDiffering:         a.stats.differing.Load(),
		RepairedLocal:         a.stats.repairedLocal.Load(),
		RepairedRemote:        a.stats.repairedRemote.Load(),
		BytesSent:             a.stats.bytesSent.Load(),
		BytesReceived:         a.stats.bytesReceived.Load(),
		TombstonesConfirmed:   a.stats.confirmed.Load(),
		TombstonesReaped:      a.stats.reaped.Load(),
	}
	for p := range a.trees.trees {
		t := &a.trees.trees[p]
		t.mu.Lock()
		st.TreeBytes += t.t.SizeBytes()
		t.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st.Quarantined, st.QuarantineReason, st.Wipes = a.quarantined, a.quarantineReason, a.wipes
	for id, ns := range a.excluded {
		st.Excluded = append(st.Excluded, ExcludedPeer{Node: id, Since: time.Unix(0, ns)})
	}
	slices.SortFunc(st.Excluded, func(x, y ExcludedPeer) int { return cmp.Compare(x.Node, y.Node) })
	for id := range a.pendingClear {
		st.PendingClear = append(st.PendingClear, id)
	}
	slices.Sort(st.PendingClear)
	if a.running != nil {
		j := *a.running
		st.Running = &j
	}
	if !a.lastReap.At.IsZero() {
		r := a.lastReap
		st.LastReap = &r
	}
	st.Partitions = make([]ExchangeStatus, 0, len(a.parts))
	for _, ps := range a.parts {
		st.Partitions = append(st.Partitions, *ps)
	}
	slices.SortFunc(st.Partitions, func(x, y ExchangeStatus) int { return int(x.Partition) - int(y.Partition) })
	return st
}

// RepairReport is what an on-demand repair did (POST /admin/repair).
type RepairReport struct {
	Node string `json:"node"`
	// Partitions is how many partitions were repaired, each with every
	// other primary in turn (Exchanges in all, Failed of which failed).
	Partitions     int     `json:"partitions"`
	Exchanges      int     `json:"exchanges"`
	Failed         int     `json:"failed"`
	KeysCompared   int     `json:"keys_compared"`
	KeysDiffering  int     `json:"keys_differing"`
	RepairedLocal  int     `json:"repaired_local"`
	RepairedRemote int     `json:"repaired_remote"`
	BytesSent      int     `json:"bytes_sent"`
	BytesReceived  int     `json:"bytes_received"`
	DurationMS     float64 `json:"duration_ms"`
	// Details lists the exchanges that found differences or failed.
	Details []ExchangeStatus `json:"details"`
}

// Repair runs anti-entropy now, synchronously: for partition p (or every
// partition this node replicates when p < 0), an exchange with each other
// primary in turn, one exchange at a time. A primary that gossip does not
// see alive counts as a failed exchange. It returns replica.ErrQuarantined while
// the node's records are closed and ErrNotReplica for a partition it does
// not replicate.
func (a *Driver) Repair(ctx context.Context, p int) (RepairReport, error) {
	rep := RepairReport{Node: a.self, Details: []ExchangeStatus{}}
	if a.gate.Closed() {
		return rep, replica.ErrQuarantined
	}
	start := time.Now()
	owned := a.replicated(a.host.Ring())
	var parts []uint32
	if p >= 0 {
		if _, ok := owned[uint32(p)]; !ok {
			return rep, fmt.Errorf("partition %d: %w", p, ErrNotReplica)
		}
		parts = []uint32{uint32(p)}
	} else {
		for q := range owned {
			parts = append(parts, q)
		}
		slices.Sort(parts)
	}
	for _, q := range parts {
		rep.Partitions++
		for _, peer := range owned[q] {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Exchanges++
			var res ExchangeStatus
			var err error
			if !a.usable(peer) {
				res = ExchangeStatus{Partition: q, Peer: peer, At: a.now(), Error: "peer not alive (or excluded)"}
				err = errors.New(res.Error)
			} else {
				res, err = a.exchangeJob(ctx, q, peer)
			}
			rep.KeysCompared += res.KeysCompared
			rep.KeysDiffering += res.KeysDiffering
			rep.RepairedLocal += res.RepairedLocal
			rep.RepairedRemote += res.RepairedRemote
			rep.BytesSent += res.BytesSent
			rep.BytesReceived += res.BytesReceived
			if err != nil {
				rep.Failed++
			}
			if err != nil || res.KeysDiffering > 0 {
				rep.Details = append(rep.Details, res)
			}
		}
	}
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return rep, nil
}

// Reap runs one pass of the tombstone reaper now (it also runs every
// TombstoneGrace/8).
func (a *Driver) Reap(ctx context.Context) (ReapStatus, error) { return a.reap(ctx) }
