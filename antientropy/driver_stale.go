package antientropy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// This file keeps a node that may hold deleted values from bringing them
// back (docs/ARCHITECTURE.md, "Deletes that stay deleted"):
//
//   - A running node persists a heartbeat (its own clock) every few seconds.
//   - A peer may reap a tombstone without this node's confirmation only
//     after seeing it dead for MaxDowntime; it then notes this node in its
//     exclusion ledger (driver_reap.go) before deleting anything.
//   - At start, a node whose heartbeat is older than MaxDowntime/2 closes
//     its records (quarantine: reads and writes of them fail) and asks every
//     ring member whether it is in their ledger. If one says yes, it drops
//     its records and hints and refills through anti-entropy; if all say
//     no, it opens its records as they are.
//   - A node refuses every RPC from a node in its ledger with
//     codeExcluded, and does not call it; a node that gets wire.CodeExcluded
//     does the same drop and refill at once.

// Meta names of anti-entropy state.
const (
	metaAEExcluded = "ae.excluded" // exclusion ledger: msgpack map id -> Unix ns
	metaAEClear    = "ae.clear"    // peers still to tell that we dropped our data
)

// Anti-entropy errors.
var (
	// ErrNotReplica refuses an on-demand repair of a partition this node
	// does not replicate.
	ErrNotReplica = errors.New("this node does not replicate the partition")
	// errExcluded is what a peer's refusal (wire.CodeExcluded) becomes.
	errExcluded = errors.New("peer reaped tombstones without this node: it must drop its data")
)

// maxLedger bounds the exclusion ledger and the clear list read from disk:
// they name ring members.
const maxLedger = 4096

func loadLedger(st *store.Store, name string) (map[string]int64, error) {
	b, err := st.GetMeta(name)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]int64
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("meta %s: %w", name, err)
	}
	if len(m) > maxLedger {
		return nil, fmt.Errorf("meta %s: %d entries", name, len(m))
	}
	if m == nil {
		m = map[string]int64{}
	}
	return m, nil
}

func saveLedger(st *store.Store, name string, m map[string]int64) error {
	if len(m) == 0 {
		return st.PutMeta(name, nil)
	}
	b, err := msgpack.Marshal(m)
	if err != nil {
		return err
	}
	return st.PutMeta(name, b)
}

// checkHeartbeat decides at start whether this node's records may be stale:
// its last heartbeat is older than MaxDowntime/2. Peers reap without a node
// only after seeing it dead for MaxDowntime by their clocks, which takes at
// least that long a downtime by ours; the other half is margin for clock
// differences, the heartbeat period and failure detection. It runs in New,
// before the node serves anything.
func (a *Driver) checkHeartbeat() error {
	if a.cfg.TombstoneGrace == 0 || a.cfg.MaxDowntime == 0 {
		return nil
	}
	hb, ok, err := replica.LastHeartbeat(a.st)
	if err != nil {
		return fmt.Errorf("read heartbeat: %w", err)
	}
	if !ok {
		return nil // a new data directory, or one from before heartbeats
	}
	if now := a.now(); mayBeStale(hb, now, a.cfg.TombstoneGrace, a.cfg.MaxDowntime) {
		a.quarantine(fmt.Sprintf("down for %s (last heartbeat %s), more than half of max downtime %s",
			now.Sub(hb).Round(time.Second), hb.Format(time.RFC3339), a.cfg.MaxDowntime))
	}
	return nil
}

// quarantine closes the records until resolveQuarantine decides.
func (a *Driver) quarantine(reason string) {
	a.mu.Lock()
	if a.quarantined {
		a.mu.Unlock()
		return
	}
	a.quarantined, a.quarantineReason = true, reason
	a.mu.Unlock()
	a.gate.Close()
	a.log.Warn("anti-entropy: records closed until the peers confirm they did not reap without this node", "op", "quarantine", "reason", reason)
}

func (a *Driver) isQuarantined() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.quarantined
}

// heartbeat persists the node's liveness, unless its records are closed: a
// crash while quarantined must not make the next start look recent.
func (a *Driver) heartbeat() {
	if a.isQuarantined() {
		return
	}
	if err := replica.Heartbeat(a.st, a.now()); err != nil && a.ctx.Err() == nil {
		a.log.Warn("anti-entropy: persist heartbeat", "err", err)
	}
}

// heartbeatEvery is the heartbeat period: a sixteenth of MaxDowntime, at
// most 5 s.
func (a *Driver) heartbeatEvery() time.Duration {
	d := 5 * time.Second
	if a.cfg.MaxDowntime > 0 {
		d = min(d, a.cfg.MaxDowntime/16)
	}
	return max(d, 10*time.Millisecond)
}

func (a *Driver) heartbeatLoop() { a.every(a.heartbeatEvery(), a.heartbeat) }

// resolveQuarantine asks every other ring member for its ledger. Run by the
// anti-entropy loop while quarantined; it returns once it decided, or when
// a member could not be asked (the loop retries).
func (a *Driver) resolveQuarantine(ctx context.Context) {
	r := a.host.Ring()
	var excludedBy, missing []string
	for _, id := range r.Members() {
		if string(id) == a.self {
			continue
		}
		resp, err := a.peerStatus(ctx, string(id), false)
		if err != nil {
			missing = append(missing, string(id))
			continue
		}
		if resp.Excluded {
			excludedBy = append(excludedBy, string(id))
		}
	}
	switch {
	case len(excludedBy) > 0:
		a.wipe(ctx, fmt.Sprintf("peers %v reaped tombstones without this node", excludedBy))
	case len(missing) > 0:
		a.log.Warn("anti-entropy: records stay closed until every ring member answered", "op", "quarantine", "missing", missing)
	default:
		a.mu.Lock()
		a.quarantined, a.quarantineReason = false, ""
		a.mu.Unlock()
		a.gate.Open()
		a.heartbeat()
		a.log.Warn("anti-entropy: no peer reaped without this node; its records are open again", "op", "quarantine")
	}
}

// peerStatus asks id for its ledger entry about this node (and clears it
// with clear).
func (a *Driver) peerStatus(ctx context.Context, id string, clear bool) (wire.PeerStatusResponse, error) {
	var resp wire.PeerStatusResponse
	err := a.rpc(ctx, id, wire.MethodPeerStatus, &wire.PeerStatusRequest{Clear: clear}, &resp, nil)
	return resp, err
}

// onExcluded reacts to a peer's wire.CodeExcluded: if this node dropped its data
// since, it tells the peer again; otherwise it drops its data now. Called
// from any goroutine; the work runs in the anti-entropy loop.
//
// The records close at once (waiting for reads and writes in flight), so
// nothing more of them is served or sent while the loop gets to the wipe.
// Callers must not hold the gate.
func (a *Driver) onExcluded(peer string) {
	reason := fmt.Sprintf("peer %s reaped tombstones without this node", peer)
	a.mu.Lock()
	_, pending := a.pendingClear[peer]
	if !pending && a.wipeRequested == "" {
		a.wipeRequested = reason
	}
	a.mu.Unlock()
	if !pending {
		a.quarantine(reason)
	}
	a.Kick()
}

// wipe drops this node's records and hints because they may hold values
// whose tombstones the peers reaped: with the records closed it drops every
// partition and every hint, empties the trees and moves the epochs on, tells
// every ring member, and opens the records empty for anti-entropy to refill.
func (a *Driver) wipe(ctx context.Context, reason string) {
	a.log.Error("anti-entropy: DROPPING THIS NODE'S DATA: it may hold values deleted and reaped while it was away; anti-entropy refills it from the peers",
		"op", "wipe", "reason", reason)
	a.exMu.Lock() // no exchange or handoff of ours runs meanwhile
	defer a.exMu.Unlock()
	a.mu.Lock()
	a.quarantined, a.quarantineReason = true, reason
	a.mu.Unlock()
	a.gate.Close()

	st := a.st
	if err := a.rep.DropAll(ctx); err != nil {
		// The records stay closed; the loop tries again.
		a.log.Error("anti-entropy: drop stale data", "op", "wipe", "err", err)
		a.mu.Lock()
		a.wipeRequested = reason
		a.mu.Unlock()
		return
	}
	for p := range a.trees.trees {
		a.trees.reset(uint32(p))
	}
	a.mu.Lock()
	for _, id := range a.host.Ring().Members() {
		if string(id) != a.self {
			a.pendingClear[string(id)] = a.now().UnixNano()
		}
	}
	if err := saveLedger(st, metaAEClear, a.pendingClear); err != nil {
		a.log.Warn("anti-entropy: persist peers to tell", "err", err)
	}
	a.quarantined, a.quarantineReason, a.wipeRequested = false, "", ""
	a.wipes++
	a.mu.Unlock()
	a.gate.Open()
	a.heartbeat()
	a.sendClears(ctx)
	a.markAll()
	a.log.Warn("anti-entropy: data dropped; refilling through anti-entropy", "op", "wipe")
}

// sendClears tells the peers in pendingClear that this node dropped its
// data, forgetting those that acknowledged.
func (a *Driver) sendClears(ctx context.Context) {
	a.mu.Lock()
	peers := slices.Sorted(maps.Keys(a.pendingClear))
	a.mu.Unlock()
	r := a.host.Ring()
	var done []string
	for _, id := range peers {
		if !r.Has(ring.NodeID(id)) {
			done = append(done, id) // left the ring: nobody to tell
			continue
		}
		if !a.host.Alive(ring.NodeID(id)) {
			continue
		}
		if _, err := a.peerStatus(ctx, id, true); err == nil {
			done = append(done, id)
		}
	}
	if len(done) == 0 {
		return
	}
	a.mu.Lock()
	for _, id := range done {
		delete(a.pendingClear, id)
	}
	err := saveLedger(a.st, metaAEClear, a.pendingClear)
	a.mu.Unlock()
	if err != nil {
		a.log.Warn("anti-entropy: persist peers to tell", "err", err)
	}
}

// servePeerStatus answers a peer's question about this node's ledger.
func (a *Driver) servePeerStatus(from string, body []byte) ([]byte, error) {
	var req wire.PeerStatusRequest
	if err := req.Decode(body); err != nil {
		return nil, invalid("peer status: %v", err)
	}
	a.mu.Lock()
	_, excluded := a.excluded[from]
	if req.Clear && excluded {
		delete(a.excluded, from)
		a.excludedN.Store(int32(len(a.excluded)))
		if err := saveLedger(a.st, metaAEExcluded, a.excluded); err != nil {
			a.log.Warn("anti-entropy: persist exclusion ledger", "err", err)
		}
		excluded = false
		a.log.Info("anti-entropy: peer dropped its data; removed from the exclusion ledger", "peer", from)
	}
	resp := wire.PeerStatusResponse{Excluded: excluded, Quarantined: a.quarantined}
	a.mu.Unlock()
	return resp.Append(nil)
}

// refuses reports whether RPCs from id are refused: id is in the ledger.
// Cheap when the ledger is empty (the common case): one atomic load.
func (a *Driver) refuses(id string) bool {
	if a == nil || a.excludedN.Load() == 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.excluded[id]
	return ok
}

// Refusal returns the refusal of an RPC from id (CodeExcluded) when id is
// in the exclusion ledger, and nil otherwise: a node answers nothing but
// peer-status questions from a peer it reaped tombstones without. Cheap
// when the ledger is empty.
func (a *Driver) Refusal(id string) error {
	if !a.refuses(id) {
		return nil
	}
	return &transport.RemoteError{Code: wire.CodeExcluded, Msg: "this node reaped tombstones without you: drop your data and tell it (anti-entropy does)"}
}

// CheckPeer is the caller side: it refuses to call an excluded peer, whose
// answers may carry values deleted and reaped meanwhile.
func (a *Driver) CheckPeer(id string) error {
	if a.refuses(id) {
		return fmt.Errorf("%s: %w", id, errExcluded)
	}
	return nil
}

// NoteRemoteError looks at the error of a call this node made to id: wire.CodeExcluded means id
// reaped without this node (see onExcluded).
func (a *Driver) NoteRemoteError(id string, err error) {
	var re *transport.RemoteError
	if a != nil && errors.As(err, &re) && re.Code == wire.CodeExcluded {
		a.onExcluded(id)
	}
}
