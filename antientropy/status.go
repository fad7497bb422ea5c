package antientropy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/replica"
)

// The /status and /admin/repair bodies are package api's (the HTTP
// contract); the driver fills them under these names.
type (
	Status          = api.AEStatus
	ExcludedPeer    = api.ExcludedPeer
	RunningExchange = api.RunningExchange
	ExchangeStatus  = api.ExchangeStatus
	ReapStatus      = api.ReapStatus
	RepairReport    = api.RepairReport
)

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
	st.TreeBytes = a.trees.SizeBytes()
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
	st.Marked = a.sched.Marked()
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
	start := a.clk.Now()
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
				res, err = a.exchangeJob(ctx, q, peer, nil)
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
	rep.DurationMS = float64(clock.Since(a.clk, start).Microseconds()) / 1000
	return rep, nil
}
