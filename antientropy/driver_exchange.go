package antientropy

import (
	"context"
	"fmt"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// byteCount counts one exchange's RPC body bytes, and carries the hooks
// of the transfer the exchange is part of (nil for other exchanges).
type byteCount struct {
	sent, received int
	t              *TransferHooks
}

// aePeer is the Peer of one exchange: the tree RPCs to a peer.
type aePeer struct {
	a    *Driver
	peer string
	bc   *byteCount
}

var _ Peer = aePeer{}

func (pe aePeer) Hashes(ctx context.Context, p uint32, level int, nodes []uint32) ([]uint64, error) {
	resp, err := roundTrip(HashesRequest{Tree: pe.a.trees.Shape(p), Level: level, Nodes: nodes}.Encode,
		pe.caller(ctx, wire.MethodHashes), DecodeHashesResponse)
	if err != nil {
		return nil, err
	}
	return resp.Hashes, nil
}

func (pe aePeer) Keys(ctx context.Context, p uint32, buckets []uint32) ([]KeyDigest, error) {
	resp, err := roundTrip(KeysRequest{Tree: pe.a.trees.Shape(p), Buckets: buckets}.Encode,
		pe.caller(ctx, wire.MethodKeys), DecodeKeysResponse)
	if err != nil {
		return nil, err
	}
	return resp.Result()
}

// caller calls method m on the exchange's peer, counting the bytes.
func (pe aePeer) caller(ctx context.Context, m transport.Method) func([]byte) ([]byte, error) {
	return func(body []byte) ([]byte, error) { return pe.a.countedCall(ctx, pe.peer, m, body, pe.bc) }
}

// roundTrip is one tree RPC of an exchange, from the asker's side: the
// request encoded by enc, sent by call, the answer decoded by dec.
func roundTrip[R any](enc func() ([]byte, error), call func([]byte) ([]byte, error), dec func([]byte) (R, error)) (R, error) {
	var zero R
	body, err := enc()
	if err != nil {
		return zero, err
	}
	out, err := call(body)
	if err != nil {
		return zero, err
	}
	return dec(out)
}

// rpc sends req to peer as method m and decodes the answer into resp; the
// bytes are added to bc (nil: not counted).
func (a *Driver) rpc(ctx context.Context, peer string, m transport.Method, req interface{ Append([]byte) ([]byte, error) }, resp interface{ Decode([]byte) error }, bc *byteCount) error {
	body, err := req.Append(nil)
	if err != nil {
		return err
	}
	out, err := a.countedCall(ctx, peer, m, body, bc)
	if err != nil {
		return err
	}
	return resp.Decode(out)
}

// countedCall is call, adding the bytes to bc (nil: not counted).
func (a *Driver) countedCall(ctx context.Context, peer string, m transport.Method, body []byte, bc *byteCount) ([]byte, error) {
	out, err := a.call(ctx, peer, m, body)
	if bc != nil {
		bc.sent += len(body)
		bc.received += len(out)
	}
	return out, err
}

// exchangeJob runs one exchange of partition p with peer, records it for
// /status and the metrics, and returns what it did. Exchanges of this node
// run one at a time.
func (a *Driver) exchangeJob(ctx context.Context, p uint32, peer string, t *TransferHooks) (ExchangeStatus, error) {
	if t != nil {
		a.exMu.RLock()
		defer a.exMu.RUnlock()
	} else {
		a.exMu.Lock()
		defer a.exMu.Unlock()
	}
	res := ExchangeStatus{Partition: p, Peer: peer, At: a.now()}
	if a.gate.Closed() {
		return res, replica.ErrQuarantined
	}
	if !a.replicaOf(p, ring.NodeID(peer)) {
		// An exchange repairs both ways: never push to a node that does
		// not keep p (it left, or lost p, since the exchange was planned).
		return res, errNotReplica(peer, p)
	}
	if f := a.onExchange.Load(); f != nil {
		(*f)(true)
		defer (*f)(false)
	}
	if t == nil { // transfers run side by side; /cluster/transfers shows them
		a.mu.Lock()
		a.running = &RunningExchange{Partition: p, Peer: peer, Started: res.At}
		a.mu.Unlock()
	}
	start := a.clk.Now()
	bc := &byteCount{t: t}
	err := a.exchange(ctx, p, peer, &res, bc)
	res.DurationMS = float64(clock.Since(a.clk, start).Microseconds()) / 1000
	res.BytesSent, res.BytesReceived = bc.sent, bc.received
	result := "ok"
	if err != nil {
		res.Error = err.Error()
		result = "failed"
		a.stats.failed.Add(1)
	}
	a.stats.exchanges.Add(1)
	a.stats.compared.Add(uint64(res.KeysCompared))
	a.stats.differing.Add(uint64(res.KeysDiffering))
	a.stats.repairedLocal.Add(uint64(res.RepairedLocal))
	a.stats.repairedRemote.Add(uint64(res.RepairedRemote))
	a.m.exchanges.WithLabelValues(result).Inc()
	a.m.compared.Add(float64(res.KeysCompared))
	a.m.differing.Add(float64(res.KeysDiffering))
	a.m.repaired.WithLabelValues("local").Add(float64(res.RepairedLocal))
	a.m.repaired.WithLabelValues("remote").Add(float64(res.RepairedRemote))
	a.m.duration.Observe(clock.Since(a.clk, start).Seconds())
	a.mu.Lock()
	if t == nil {
		a.running = nil
	}
	r := res
	a.parts[p] = &r
	a.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		a.log.Debug("anti-entropy exchange failed", "op", "exchange", "partition", p, "peer", peer, "err", err)
	} else if res.KeysDiffering > 0 {
		a.log.Debug("anti-entropy exchange repaired", "op", "exchange", "partition", p, "peer", peer,
			"differing", res.KeysDiffering, "local", res.RepairedLocal, "remote", res.RepairedRemote)
	}
	return res, err
}

// exchange compares partition p with peer and repairs the differing keys
// both ways.
func (a *Driver) exchange(ctx context.Context, p uint32, peer string, res *ExchangeStatus, bc *byteCount) error {
	shape := a.trees.Shape(p)
	diff, err := Compare(ctx, p, a.trees.local(p), aePeer{a: a, peer: peer, bc: bc},
		func(b []uint32) ([]KeyDigest, error) {
			return listKeys(a.rep, shape, b, 0)
		})
	res.Rounds = diff.Stats.Rounds
	res.LevelsWalked = diff.Stats.LevelsWalked
	res.KeysCompared = diff.Stats.KeysLocal + diff.Stats.KeysRemote
	res.KeysDiffering = len(diff.Keys)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if bc.t != nil && bc.t.Diff != nil {
		bc.t.Diff(len(diff.Keys))
	}
	return a.repair(ctx, p, peer, diff.Keys, res, bc)
}

// repair brings each differing key to the merge of both sides' sets on both
// sides, in batches paced by KeysPerSecond. A key that is all tombstones
// confirmed by every primary on one side and absent on the other is left to
// the reaper (driver_reap.go): the absent side reaped it already, and copying
// it back would only restart its grace period.
func (a *Driver) repair(ctx context.Context, p uint32, peer string, keys []KeyDiff, res *ExchangeStatus, bc *byteCount) error {
	step := aeRepairBatch
	if b := a.lim.Burst(); b > 0 {
		step = min(step, b)
	}
	r := a.host.Ring()
	for len(keys) > 0 {
		batch := keys[:min(step, len(keys))]
		keys = keys[len(batch):]
		if err := a.lim.WaitN(ctx, len(batch)); err != nil {
			return err
		}
		// The peer's copies of the keys it listed.
		var ask []wire.KeyRef
		for _, k := range batch {
			if k.Remote != 0 {
				ask = append(ask, wire.KeyRef{Hash: k.Hash, Key: k.Key})
			}
		}
		t0, moved := a.clk.Now(), bc.sent+bc.received
		got, err := a.readMany(ctx, peer, p, ask, bc)
		if err != nil {
			return fmt.Errorf("read from peer: %w", err)
		}
		if len(batch) == step && len(ask) == len(batch) {
			// Only full batches teach the pacer: equal work, comparable
			// latencies.
			a.lim.Observe(clock.Since(a.clk, t0))
		}
		var push []wire.MergeManyEntry
		j := 0
		for _, k := range batch {
			var rem wire.ReadManyEntry
			if k.Remote != 0 {
				rem = got[j]
				j++
			}
			qk := r.KeyOf(k.Key)
			if qk.Hash != k.Hash || qk.Partition != p {
				res.Errors++ // a key filed under the wrong hash by the peer
				continue
			}
			loc, err := a.rep.Record(qk)
			if err != nil {
				return err
			}
			switch decideRepair(keyCopy{loc.Found, loc.Confirmed()}, keyCopy{rem.Found, rem.Confirmed}) {
			case actNone:
			case actLeaveToReaper:
				res.LeftToReaper++
			case actPull:
				s, err := vclock.DecodeSet(rem.Set)
				if err != nil {
					res.Errors++
					continue
				}
				changed, err := a.rep.MergeSet(ctx, "", qk, s, false)
				if err != nil {
					return err
				}
				if changed {
					res.RepairedLocal++
				}
			case actPush:
				push = append(push, wire.MergeManyEntry{Hash: qk.Hash, Key: qk.Key, Set: loc.Set})
			case actSync:
				ls, lerr := vclock.DecodeSet(loc.Set)
				rs, rerr := vclock.DecodeSet(rem.Set)
				if lerr != nil || rerr != nil {
					res.Errors++
					continue
				}
				m, pushM, pull := syncSides(ls, rs)
				if pushM {
					enc, err := m.MarshalBinary()
					if err != nil {
						res.Errors++
						continue
					}
					push = append(push, wire.MergeManyEntry{Hash: qk.Hash, Key: qk.Key, Set: enc})
				}
				if pull {
					changed, err := a.rep.MergeSet(ctx, "", qk, rs, false)
					if err != nil {
						return err
					}
					if changed {
						res.RepairedLocal++
					}
				}
			}
		}
		n, err := a.mergeMany(ctx, peer, p, push, bc)
		res.RepairedRemote += n
		if err != nil {
			return fmt.Errorf("write to peer: %w", err)
		}
		if bc.t != nil && bc.t.Batch != nil {
			if err := bc.t.Batch(ctx, len(batch), bc.sent+bc.received-moved, clock.Since(a.clk, t0)); err != nil {
				return err
			}
		}
	}
	return nil
}

// readMany fetches the peer's copies of keys, in as many calls as the
// answers' size budget needs; the result is aligned with keys.
func (a *Driver) readMany(ctx context.Context, peer string, p uint32, keys []wire.KeyRef, bc *byteCount) ([]wire.ReadManyEntry, error) {
	out := make([]wire.ReadManyEntry, 0, len(keys))
	for len(keys) > 0 {
		req := wire.ReadManyRequest{Partition: p, Keys: keys[:min(len(keys), wire.MaxBatch)]}
		var resp wire.ReadManyResponse
		if err := a.rpc(ctx, peer, wire.MethodReadMany, &req, &resp, bc); err != nil {
			return nil, err
		}
		if len(resp.Entries) == 0 || len(resp.Entries) > len(req.Keys) {
			return nil, fmt.Errorf("%d answers to %d keys: %w", len(resp.Entries), len(req.Keys), wire.ErrMalformed)
		}
		out = append(out, resp.Entries...)
		keys = keys[len(resp.Entries):]
	}
	return out, nil
}

// mergeMany sends sets for the peer to merge, in calls of at most
// wire.MaxBatch keys and about wire.BatchBytes, and returns how many it changed.
func (a *Driver) mergeMany(ctx context.Context, peer string, p uint32, entries []wire.MergeManyEntry, bc *byteCount) (int, error) {
	changed := 0
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < wire.MaxBatch && (n == 0 || size+len(entries[n].Set) <= wire.BatchBytes) {
			size += len(entries[n].Set)
			n++
		}
		var resp wire.MergeManyResponse
		if err := a.rpc(ctx, peer, wire.MethodMergeMany, &wire.MergeManyRequest{Partition: p, Entries: entries[:n]}, &resp, bc); err != nil {
			return changed, err
		}
		changed += min(resp.Changed, n)
		entries = entries[n:]
	}
	return changed, nil
}

// serveReadMany answers a readMany with this node's records (not hints).
func (a *Driver) serveReadMany(body []byte) ([]byte, error) {
	var req wire.ReadManyRequest
	if err := req.Decode(body); err != nil {
		return nil, err
	}
	resp := wire.ReadManyResponse{Entries: make([]wire.ReadManyEntry, 0, len(req.Keys))}
	size := 0
	for i, kr := range req.Keys {
		loc, err := a.namedRecord(req.Partition, kr.Hash, kr.Key)
		if err != nil {
			return nil, err
		}
		if i > 0 && size+len(loc.Set) > wire.BatchBytes {
			break // the asker asks again for the rest
		}
		size += len(loc.Set)
		resp.Entries = append(resp.Entries, wire.ReadManyEntry{Found: loc.Found, Confirmed: loc.Confirmed(), Set: loc.Set})
	}
	return resp.Append(nil)
}

// serveMergeMany merges a peer's sets into this node's records.
func (a *Driver) serveMergeMany(ctx context.Context, body []byte) ([]byte, error) {
	var req wire.MergeManyRequest
	if err := req.Decode(body); err != nil {
		return nil, err
	}
	if err := a.checkServeOwner(req.Partition); err != nil {
		return nil, err
	}
	changed := 0
	for _, en := range req.Entries {
		k, err := a.checkKey(req.Partition, en.Hash, en.Key)
		if err != nil {
			return nil, err
		}
		s, err := vclock.DecodeSet(en.Set)
		if err != nil {
			return nil, invalid("merge many: key %q: %v", en.Key, err)
		}
		c, err := a.rep.MergeSet(ctx, "", k, s, false)
		if err != nil {
			return nil, err
		}
		if c {
			changed++
		}
	}
	return (&wire.MergeManyResponse{Changed: changed}).Append(nil)
}
