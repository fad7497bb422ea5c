package quorum

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/quorumkv/quorumkv/ring"
)

// writePlan is what a write will do, decided before any I/O: a function of
// the ring, who is alive, the request's params and this node's id. The
// coordinator's loop executes it; when a target fails, onFailure decides
// what stands in for it. The plan does no I/O, reads no clock and is used by
// one goroutine at a time (onFailure with replace=false reads it only, so
// the drain that runs after the answer may call it).
type writePlan struct {
	op     string // "put" or "delete": names the request in errors
	ring   *ring.Ring
	key    ring.Key
	params Params // resolved: defaults filled and validated
	self   ring.NodeID

	// targets are the replicas to write, in ring.Targets order: the live
	// primaries, then one live fallback per dead primary, HintFor naming it.
	targets []ring.Target
	// local is the index of self in targets. -1 means this node is not a
	// replica of the key: it cannot mint the dot, so the write is forwarded
	// to targets, in order.
	local int
	// lastResort are the primaries that no target acknowledges or stands
	// in for (dead, and no spare member left): the coordinator keeps a
	// local hint for each at once. Such a hint never counts as an ack.
	lastResort []ring.NodeID
	// refused, when set, refuses the write before anything is written:
	// gossip already shows too few live targets for W, or primaries for PW.
	// It is only set when the write is not forwarded (the coordinator that
	// receives a forward judges with its own view).
	refused error

	// spares are the candidates for later fallbacks, nearest first: the
	// preference list past the first N. Shared with the ring; read only.
	spares []ring.NodeID
	// extra are the fallbacks chosen after a failure, so none is used
	// twice. nil until the first one: the common write allocates nothing
	// for it.
	extra []ring.NodeID
	// joint are the owner lists of the other assignments in use during a
	// ring change (PendingMembership): the write needs W of each too.
	joint [][]ring.NodeID
	// pending are the live members of joint that are not targets: they get
	// the write too, counted toward joint only, never toward W.
	pending []ring.NodeID
}

// live reports whether id is alive, counting self as alive whatever alive
// says: a node always reaches its own replica.
func live(self ring.NodeID, alive func(ring.NodeID) bool, id ring.NodeID) bool {
	return id == self || alive(id)
}

// planWrite plans a write of k with resolved params p on ring r, coordinated
// by self, given who is alive now and the owner lists of the other
// assignments in use (joint, nil when no ring change is in course). alive must not block; it is called
// synchronously, about once per preference entry.
func planWrite(r *ring.Ring, alive func(ring.NodeID) bool, self ring.NodeID, op string, k ring.Key, p Params, joint [][]ring.NodeID) writePlan {
	return planWriteIn(nil, r, alive, self, op, k, p, joint)
}

// planWriteIn is planWrite whose targets are appended to dst (room the
// request holds already); nil dst: a fresh slice.
func planWriteIn(dst []ring.Target, r *ring.Ring, alive func(ring.NodeID) bool, self ring.NodeID, op string, k ring.Key, p Params, joint [][]ring.NodeID) writePlan {
	pref := r.Preference(k.Partition)
	pl := writePlan{op: op, ring: r, key: k, params: p, self: self, local: -1,
		targets: liveTargets(dst, r, alive, self, k, p.N),
		spares:  pref[min(p.N, len(pref)):]}
	for i, t := range pl.targets {
		if t.Node == self {
			pl.local = i
			break
		}
	}
	if pl.local < 0 {
		return pl
	}
	pl.refused = refusal(op, pl.targets, p.W, p.PW, p.DW)
	if pl.refused == nil && p.PZ > 0 {
		pl.refused = zoneRefusal(r, op, pl.targets, p)
	}
	pl.joint = joint
	for _, set := range joint {
		for _, id := range set {
			if live(self, alive, id) && !slices.Contains(pl.pending, id) &&
				!slices.ContainsFunc(pl.targets, func(t ring.Target) bool { return t.Node == id }) {
				pl.pending = append(pl.pending, id)
			}
		}
	}
	for _, id := range r.Primaries(k.Partition, p.N) {
		if id != self && !slices.ContainsFunc(pl.targets, func(t ring.Target) bool { return standsFor(t) == id }) {
			pl.lastResort = append(pl.lastResort, id)
		}
	}
	return pl
}

// forwarded reports whether this node is not a replica and must hand the
// write to one of targets.
func (pl *writePlan) forwarded() bool { return pl.local < 0 }

// coordinator is this node's own target: HintFor is set when it is itself a
// fallback. Only valid when the write is not forwarded.
func (pl *writePlan) coordinator() ring.Target { return pl.targets[pl.local] }

// durable reports whether replicas are asked to fsync (DW > 0).
func (pl *writePlan) durable() bool { return pl.params.DW > 0 }

// forwardOnLocalFailure returns the targets to hand the write to when this
// node could not store it locally, or nil when the failure is final. Only a
// fallback coordinator hands off (its hints for the primary can be at their
// cap while other targets can still take the write); a primary that cannot
// write its own replica fails the request.
func (pl *writePlan) forwardOnLocalFailure() []ring.Target {
	if pl.coordinator().HintFor == "" || len(pl.targets) < 2 {
		return nil
	}
	others := make([]ring.Target, 0, len(pl.targets)-1)
	for i, t := range pl.targets {
		if i != pl.local {
			others = append(others, t)
		}
	}
	return others
}

// recovery is what stands in for a target whose write failed: a fallback to
// send the write to, or else a primary to keep a local hint for. Both zero
// means nothing is left to do.
type recovery struct {
	fallback ring.Target // Node is empty when there is none
	hintFor  ring.NodeID // a hint of last resort for this primary on self
}

// onFailure decides what stands in for target t, whose write failed. With
// replace (the request still has time to count another ack), it is a
// spare that is alive now and not yet written to, as a fallback standing
// in for the primary t stood for (the sloppy quorum); it is then recorded
// as used. The spare is the nearest one in a zone that holds no target
// written so far (other than t), if any, else the nearest one: like
// ring.Targets, a write reaches as many zones as the live members allow. Otherwise, or with no such spare, it is a local hint of
// last resort for that primary, so that hinted handoff brings it up to date
// when it is back. alive is the current liveness (members may have died
// since the plan was made); it is not called when replace is false.
func (pl *writePlan) onFailure(t ring.Target, replace bool, alive func(ring.NodeID) bool) recovery {
	primary := standsFor(t)
	if replace {
		pick := ring.NodeID("")
		for _, id := range pl.spares {
			if pl.written(id) || !live(pl.self, alive, id) {
				continue
			}
			if pick == "" {
				pick = id
			}
			if pl.ring.ZoneCount() < 2 || !pl.zoneWritten(pl.ring.ZoneIndex(id), t.Node) {
				pick = id
				break
			}
		}
		if pick != "" {
			pl.extra = append(pl.extra, pick)
			return recovery{fallback: ring.Target{Node: pick, HintFor: primary}}
		}
	}
	if primary == pl.self {
		return recovery{}
	}
	return recovery{hintFor: primary}
}

// written reports whether id is a target or an earlier fallback.
func (pl *writePlan) written(id ring.NodeID) bool {
	return slices.Contains(pl.extra, id) ||
		slices.ContainsFunc(pl.targets, func(t ring.Target) bool { return t.Node == id })
}

// zoneOf is the zone number of target id for the write's tracker
// (WriteTracker.RecordZone): -1, not counted, when the request asks for
// no zones and the ring has only one.
func (pl *writePlan) zoneOf(id ring.NodeID) int {
	if pl.params.PZ == 0 && pl.ring.ZoneCount() < 2 {
		return -1
	}
	return pl.ring.ZoneIndex(id)
}

// zoneWritten reports whether a target or earlier fallback other than
// failed is in zone z.
func (pl *writePlan) zoneWritten(z int, failed ring.NodeID) bool {
	for _, t := range pl.targets {
		if t.Node != failed && pl.ring.ZoneIndex(t.Node) == z {
			return true
		}
	}
	for _, id := range pl.extra {
		if id != failed && pl.ring.ZoneIndex(id) == z {
			return true
		}
	}
	return false
}

// zoneRefusal refuses a write whose targets (those gossip sees alive)
// span fewer zones than p.PZ: it could never reach them.
func zoneRefusal(r *ring.Ring, op string, targets []ring.Target, p Params) error {
	var seen uint64
	for _, t := range targets {
		seen |= 1 << (uint(r.ZoneIndex(t.Node)) % 64)
	}
	if zones := bits.OnesCount64(seen); zones < p.PZ {
		return &QuorumError{Op: op, Required: p.W, RequiredPrimary: p.PW, RequiredDurable: p.DW, RequiredZones: p.PZ,
			Targets: len(targets), Errs: []error{fmt.Errorf("pz=%d: the live replicas span %d zone(s) (the ring has %d)", p.PZ, zones, r.ZoneCount())}}
	}
	return nil
}

// standsFor names the primary whose replica target t holds: itself, or the
// dead primary it keeps a hint for.
func standsFor(t ring.Target) ring.NodeID {
	if t.HintFor != "" {
		return t.HintFor
	}
	return t.Node
}

// readPlan is what a read will do, decided before any I/O: ask every target
// (live primaries, then fallbacks for dead ones), unless gossip already
// shows too few of them for R or PR.
type readPlan struct {
	key     ring.Key
	params  Params
	targets []ring.Target
	refused error
}

// planRead plans a read of k with resolved params p on ring r. A read needs
// no local state, so any node coordinates it: self only counts as alive.
func planRead(r *ring.Ring, alive func(ring.NodeID) bool, self ring.NodeID, k ring.Key, p Params) readPlan {
	return planReadIn(nil, r, alive, self, k, p)
}

// planReadIn is planRead whose targets are appended to dst (see
// planWriteIn).
func planReadIn(dst []ring.Target, r *ring.Ring, alive func(ring.NodeID) bool, self ring.NodeID, k ring.Key, p Params) readPlan {
	targets := liveTargets(dst, r, alive, self, k, p.N)
	return readPlan{key: k, params: p, targets: targets, refused: refusal("get", targets, p.R, p.PR, 0)}
}

// liveTargets is ring.Targets of k's partition with self always alive,
// appended to dst; nil dst: a fresh slice, as ring.Targets returns.
func liveTargets(dst []ring.Target, r *ring.Ring, alive func(ring.NodeID) bool, self ring.NodeID, k ring.Key, n int) []ring.Target {
	isLive := func(id ring.NodeID) bool { return live(self, alive, id) }
	if dst == nil {
		return r.Targets(k.Partition, n, isLive)
	}
	return r.AppendTargets(dst, k.Partition, n, isLive)
}

// refusal returns the error that refuses a request up front, when targets
// (those gossip sees alive) are fewer than need or hold fewer primaries than
// needPrimary; nil otherwise. needDurable only fills in the error's counts.
func refusal(op string, targets []ring.Target, need, needPrimary, needDurable int) error {
	primaries := 0
	for _, t := range targets {
		if t.HintFor == "" {
			primaries++
		}
	}
	if len(targets) >= need && primaries >= needPrimary {
		return nil
	}
	return &QuorumError{Op: op, Required: need, RequiredPrimary: needPrimary, RequiredDurable: needDurable,
		Targets: len(targets), Errs: []error{fmt.Errorf("%d live replica(s), %d of them primaries", len(targets), primaries)}}
}
