package antientropy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Reaping tombstones (docs/ARCHITECTURE.md, "Deletes that stay deleted"). Each
// primary decides for its own records, in two steps:
//
//  1. confirm: a record that is all tombstones asks the partition's other
//     primaries whether they hold the same set (or nothing: a replica that
//     reaped it already). If all do, the record notes the time (tomb field,
//     package replica). A write that changes the set clears the note.
//  2. reap: once the note is TombstoneGrace old, it asks again and, if all
//     still hold it, deletes the record.
//
// Expired values take the same path (docs/ARCHITECTURE.md, "Expiry"): a
// live record whose envelope says all its values have passed their
// deadline is first rewritten with their tombstones (replica.Expire, which
// waits out the expiry margin), and is then an ordinary candidate of step 1
// in the same pass.
//
// A primary that gossip has shown dead for MaxDowntime, while this node sees
// a majority of the ring alive, is excused from answering; reaping without
// it first puts it in the exclusion ledger (driver_stale.go), persisted.

// aeReapScanMax bounds the candidates one pass collects per partition; the
// rest wait for the next pass.
const aeReapScanMax = 16 * wire.MaxBatch

// reapEvery is the period of reap passes: an eighth of the grace, between
// 50ms and one hour.
func (a *Driver) reapEvery() time.Duration {
	return min(max(a.cfg.TombstoneGrace/8, 50*time.Millisecond), time.Hour)
}

func (a *Driver) reapLoop() {
	a.every(a.reapEvery(), func() {
		if _, err := a.reap(a.ctx); err != nil && a.ctx.Err() == nil && !errors.Is(err, replica.ErrQuarantined) {
			a.log.Debug("anti-entropy: reap pass", "op", "reap", "err", err)
		}
	})
}

type reapCandidate struct {
	k      ring.Key
	digest uint64 // set digest
	reap   bool   // step 2 (else step 1)
}

// reap runs one pass over the partitions this node replicates.
func (a *Driver) reap(ctx context.Context) (ReapStatus, error) {
	st := ReapStatus{At: a.now()}
	if a.cfg.TombstoneGrace <= 0 {
		return st, nil
	}
	if a.gate.Closed() {
		return st, replica.ErrQuarantined
	}
	rep := a.replicated(a.host.Ring())
	parts := make([]uint32, 0, len(rep))
	for p := range rep {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var errs []error
	for _, p := range parts {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if err := a.reapPartition(ctx, p, rep[p], &st); err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
		}
	}
	a.mu.Lock()
	a.lastReap = st
	a.mu.Unlock()
	return st, errors.Join(errs...)
}

func (a *Driver) reapPartition(ctx context.Context, p uint32, peers []string, st *ReapStatus) error {
	cands, expired, err := a.reapCandidates(p)
	if err != nil {
		return err
	}
	for _, k := range expired {
		changed, dig, err := a.rep.Expire(ctx, k)
		if err != nil {
			return err
		}
		if changed {
			st.Expired++
			if len(cands) < aeReapScanMax {
				cands = append(cands, reapCandidate{k: k, digest: dig})
			}
		}
	}
	st.Candidates += len(cands)
	for batch := range slices.Chunk(cands, wire.MaxBatch) {
		held, excused, err := a.acks(ctx, p, peers, batch)
		if err != nil {
			st.Blocked += len(batch)
			continue
		}
		for i, c := range batch {
			if !held[i] {
				st.Blocked++
				continue
			}
			if !c.reap {
				ok, err := a.confirmTomb(ctx, c)
				if err != nil {
					return err
				}
				if ok {
					st.Confirmed++
					a.stats.confirmed.Add(1)
				}
				continue
			}
			if len(excused) > 0 {
				if err := a.exclude(excused); err != nil {
					return err
				}
			}
			ok, err := a.reapRecord(ctx, c)
			if err != nil {
				return err
			}
			if ok {
				st.Reaped++
				a.stats.reaped.Add(1)
				a.m.reaped.Inc()
			}
		}
	}
	return nil
}

// reapCandidates lists partition p's records that are all tombstones: those
// not confirmed yet (step 1) and those confirmed at least TombstoneGrace ago
// (step 2); and, in expired, the live records whose values have all passed
// their deadline by this node's clock.
func (a *Driver) reapCandidates(p uint32) (out []reapCandidate, expired []ring.Key, err error) {
	now := a.now()
	err = a.rep.Scan(p, 0, math.MaxUint64, func(k ring.Key, val []byte) error {
		h, err := replica.ParseHeader(val)
		if err != nil {
			return nil
		}
		if h.Tomb == replica.TombLive {
			if h.DeadAt != 0 && h.DeadAt <= now.UnixMilli() && len(expired) < aeReapScanMax {
				expired = append(expired, ring.Key{Partition: p, Hash: k.Hash, Key: append([]byte(nil), k.Key...)})
			}
			return nil
		}
		set := val[h.SetOff:]
		c := reapCandidate{k: ring.Key{Partition: p, Hash: k.Hash, Key: append([]byte(nil), k.Key...)}, digest: replica.SetBytesDigest(set)}
		switch {
		case h.Tomb == replica.TombUnknown: // format 1: look at the set itself
			s, err := vclock.DecodeSet(set)
			if err != nil || !s.IsDeleted() {
				return nil
			}
		case h.Tomb == replica.TombUnconfirmed:
		default:
			since := time.UnixMilli(int64(h.Tomb))
			if now.Sub(since) < a.cfg.TombstoneGrace {
				return nil
			}
			c.reap = true
		}
		out = append(out, c)
		if len(out) >= aeReapScanMax {
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, expired, err
}

var errStopScan = errors.New("stop scan")

// acks asks every other primary of p whether it holds each candidate's set
// (or nothing). held[i] is true when all did; excused lists the primaries
// that did not have to answer because they have been dead for MaxDowntime.
// An error means no candidate of the batch may move on.
func (a *Driver) acks(ctx context.Context, p uint32, peers []string, batch []reapCandidate) (held []bool, excused []string, err error) {
	held = make([]bool, len(batch))
	for i := range held {
		held[i] = true
	}
	var req wire.TombAckRequest
	for _, peer := range peers {
		switch {
		case a.refuses(peer):
			excused = append(excused, peer) // excluded already: it drops its data before it is heard
			continue
		case !a.host.Alive(ring.NodeID(peer)):
			if a.excusable(peer) {
				excused = append(excused, peer)
				continue
			}
			return nil, nil, fmt.Errorf("primary %s is down and not excused yet", peer)
		}
		if req.Entries == nil {
			req.Partition = p
			req.Entries = make([]wire.TombAckEntry, len(batch))
			for i, c := range batch {
				req.Entries[i] = wire.TombAckEntry{Hash: c.k.Hash, Key: c.k.Key, Digest: c.digest}
			}
		}
		var resp wire.TombAckResponse
		if err := a.rpc(ctx, peer, wire.MethodTombstoneAck, &req, &resp, nil); err != nil {
			return nil, nil, err
		}
		if len(resp.Held) != len(batch) {
			return nil, nil, fmt.Errorf("%d answers for %d keys from %s: %w", len(resp.Held), len(batch), peer, wire.ErrMalformed)
		}
		for i, h := range resp.Held {
			held[i] = held[i] && h
		}
	}
	return held, excused, nil
}

// excusable reports whether peer has been dead, by this node's own
// observation, for MaxDowntime while this node sees a strict majority of
// the ring alive (so that the two sides of a network split cannot both
// reap without each other).
func (a *Driver) excusable(peer string) bool {
	if a.cfg.MaxDowntime <= 0 {
		return false
	}
	a.mu.Lock()
	since, dead := a.deadSince[peer]
	a.mu.Unlock()
	now := a.now()
	if !dead || now.Sub(since) < a.cfg.MaxDowntime {
		return false // not dead long enough: no need to count who is alive
	}
	r := a.host.Ring()
	alive := 0
	for _, id := range r.Members() {
		if a.host.Alive(id) {
			alive++
		}
	}
	return mayExcuse(since, now, a.cfg.MaxDowntime, alive, r.Len())
}

// exclude puts peers in the exclusion ledger, persisted before anything is
// reaped without them.
func (a *Driver) exclude(peers []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	added := false
	now := a.now().UnixNano()
	for _, p := range peers {
		if _, ok := a.excluded[p]; !ok {
			a.excluded[p] = now
			added = true
			a.log.Warn("anti-entropy: reaping tombstones without a primary dead longer than max downtime; it must drop its data when it returns",
				"op", "reap", "peer", p, "max_downtime", a.cfg.MaxDowntime)
		}
	}
	if !added {
		return nil
	}
	a.excludedN.Store(int32(len(a.excluded)))
	if err := saveLedger(a.st, metaAEExcluded, a.excluded); err != nil {
		return fmt.Errorf("persist exclusion ledger: %w", err)
	}
	return nil
}

// confirmTomb notes in c's record that every primary holds its set, if the
// record still holds that set unconfirmed.
func (a *Driver) confirmTomb(ctx context.Context, c reapCandidate) (bool, error) {
	return a.rep.ConfirmTomb(ctx, c.k, c.digest, a.now())
}

// reapRecord deletes c's record if it still holds the confirmed set; the
// replica takes it out of the tree.
func (a *Driver) reapRecord(ctx context.Context, c reapCandidate) (bool, error) {
	return a.rep.Reap(ctx, c.k, c.digest)
}

// serveTombAck answers whether this node holds each key's set, or nothing.
func (a *Driver) serveTombAck(body []byte) ([]byte, error) {
	var req wire.TombAckRequest
	if err := req.Decode(body); err != nil {
		return nil, err
	}
	resp := wire.TombAckResponse{Held: make([]bool, len(req.Entries))}
	for i, en := range req.Entries {
		loc, err := a.namedRecord(req.Partition, en.Hash, en.Key)
		if err != nil {
			return nil, err
		}
		resp.Held[i] = !loc.Found || replica.SetBytesDigest(loc.Set) == en.Digest
	}
	return resp.Append(nil)
}
