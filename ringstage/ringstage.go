// Package ringstage runs `quorumkv ring plan|commit|clear` on a node: it
// plans the staged joins, leaves and removes (ring.PlanChange), stages,
// commits and clears them in the gossiped ring state (ownership.Stage), and
// estimates the bytes a change copies from the node's own partitions.
//
// The node implements Host (its ring state under its lock, gossip, leave
// and remove); the Stager is the httpapi.RingStager the admin endpoints
// call. What a member does about its own staged changes (a staged joiner
// clears its flag once admitted, a member whose leave is committed leaves)
// is decided by SelfAction, a pure function of the state, which the node
// evaluates after each change of its ring state.
package ringstage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
)

// Record is what staging needs of one member record of the ring state.
type Record struct {
	Zone        string
	Weight      int
	Incarnation uint64
	Left        bool
	// Staged marks a member that joined with --join-mode staged and is
	// not admitted yet (it clears the flag once admitted).
	Staged bool
}

// Snapshot is the node's ring state as staging sees it, taken under the
// node's lock.
type Snapshot struct {
	Self string
	// Claim is whether the ring is placed by an agreed assignment
	// (ModeClaim); only such a ring stages changes.
	Claim bool
	// Config has the cluster's Q and N.
	Config ring.Config
	// Committed is the assignment reads route with; nil before the first.
	Committed *ring.Assignment
	// Members are the members on the ring now (admitted, not left).
	Members []ring.Member
	// Records are every member record, by id.
	Records map[string]Record
	// Stage is the staged changes.
	Stage ownership.Stage
	// Live lists this node and the members gossip sees alive or suspect;
	// nil when not known (every member is then taken as up).
	Live []string
}

// down reports whether member id is known to be down.
func (snap Snapshot) down(id string) bool {
	return snap.Live != nil && !slices.Contains(snap.Live, id)
}

// downLeaveMsg says why a leave of member id, down, cannot complete.
func downLeaveMsg(id string) string {
	return fmt.Sprintf("%s is down: a leave needs the member itself to hand its partitions over, so it would never complete; "+
		"take it off the ring with 'quorumkv ring remove %s' (its partitions are rebuilt from the other replicas), or restart it", id, id)
}

// downLeaves returns the staged leaves in ch of members that are down.
func downLeaves(snap Snapshot, ch ring.Change) []string {
	var out []string
	for _, id := range ch.Leaves {
		if snap.down(string(id)) {
			out = append(out, string(id))
		}
	}
	return out
}

// Host is the node side of staging.
type Host interface {
	// Snapshot returns the ring state now.
	Snapshot() Snapshot
	// MergeStage merges entries into the ring state's stage, rebuilds the
	// ring, persists the state and gossips the entries.
	MergeStage(entries ownership.Stage)
	// Remove takes member id, down for good, off the ring on the request
	// of admin by (it signs the removal).
	Remove(id, by string) error
}

// Stager implements httpapi.RingStager over a Host.
type Stager struct {
	H Host
	// Store is the node's store: plans estimate bytes from it
	// (EstimateBytes) while Ctx lasts (the node's life).
	Store Scanner
	Ctx   context.Context
}

var _ httpapi.RingStager = Stager{}

// Admitted reports whether member record rec of id is on the ring: not
// left, and not a staged joiner whose join is not committed.
func Admitted(st ownership.Stage, id string, rec Record) bool {
	if rec.Left {
		return false
	}
	if !rec.Staged {
		return true
	}
	return st.Joined(id, rec.Incarnation)
}

// pending is the staged change of snap: the staged joiners not yet
// admitted nor cleared, and the staged leaves and removes.
func pending(snap Snapshot) (ring.Change, map[ring.NodeID]string) {
	by := map[ring.NodeID]string{}
	ch := snap.Stage.Pending()
	for id, e := range snap.Stage {
		if e.State == ownership.StateStaged && e.Kind != ownership.StageJoin {
			by[ring.NodeID(id)] = e.By
		}
	}
	for _, id := range sortedIDs(snap.Records) {
		rec := snap.Records[id]
		if !rec.Staged || rec.Left || Admitted(snap.Stage, id, rec) {
			continue
		}
		if snap.Stage.Cleared(id, rec.Incarnation) {
			continue // dropped by ring clear; ring join ID stages it again
		}
		ch.Joins = append(ch.Joins, ring.Member{ID: ring.NodeID(id), Zone: rec.Zone, Weight: rec.Weight})
		by[ring.NodeID(id)] = id
		if e, ok := snap.Stage[id]; ok && e.Kind == ownership.StageJoin && e.Inc == rec.Incarnation && e.By != "" {
			by[ring.NodeID(id)] = e.By // staged again by an admin
		}
	}
	return ch, by
}

func sortedIDs(m map[string]Record) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// plan plans ch on snap.
func (s Stager) plan(snap Snapshot, ch ring.Change, by map[ring.NodeID]string) (api.RingPlan, error) {
	if !snap.Claim {
		return api.RingPlan{}, fmt.Errorf("%w: it is a token ring (placed by --ring tokens); only a claim ring stages changes", httpapi.ErrNoStaging)
	}
	sizes, note := EstimateBytes(s.Ctx, s.Store, snap.Config.Partitions, snap.Self)
	cp, err := ring.PlanChange(snap.Config, snap.Committed, snap.Members, ch, sizes)
	if err != nil {
		return api.RingPlan{}, err
	}
	p := httpapi.RingPlanBody(snap.Self, cp, by, note)
	p.Version = version(snap, ch)
	return p, nil
}

// version names the plan of ch on snap (api.RingPlan.Version): a digest
// of everything the placement after a commit depends on, which is what
// ring.PlanChange reads (the config's mode, Q, tokens and N, the
// committed assignment, the members on the ring, the change), so that a
// commit naming it applies the very placement that plan showed. Who
// staged a change, the byte estimate and the warnings are left out: they
// do not change what a commit applies. Lists are hashed sorted, so the
// order a map or gossip produced them in does not matter, and every field
// is length-prefixed, so two different states cannot write the same
// bytes. Any node that sees the same state gives the same version.
func version(snap Snapshot, ch ring.Change) string {
	d := xxhash.New()
	var buf [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		d.Write(buf[:])
	}
	str := func(v string) {
		num(uint64(len(v)))
		d.WriteString(v)
	}
	members := func(ms []ring.Member) {
		ms = slices.Clone(ms)
		slices.SortFunc(ms, func(a, b ring.Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
		num(uint64(len(ms)))
		for _, m := range ms {
			str(string(m.ID))
			str(m.Zone)
			num(uint64(m.Weight))
		}
	}
	ids := func(l []ring.NodeID) {
		l = slices.Clone(l)
		slices.Sort(l)
		num(uint64(len(l)))
		for _, id := range l {
			str(string(id))
		}
	}
	c := snap.Config
	for _, v := range []int{int(c.Mode), c.Partitions, c.Tokens, c.Replicas} {
		num(uint64(v))
	}
	var committed []byte
	if snap.Committed != nil {
		committed = snap.Committed.Encode()
	}
	str(string(committed))
	members(snap.Members)
	members(ch.Joins)
	ids(ch.Leaves)
	ids(ch.Removes)
	return fmt.Sprintf("%016x", d.Sum64())
}

// RingPlan plans the staged changes; it warns of staged leaves of
// members that are down (a commit refuses them).
func (s Stager) RingPlan() (api.RingPlan, error) {
	snap := s.H.Snapshot()
	ch, by := pending(snap)
	p, err := s.plan(snap, ch, by)
	for _, id := range downLeaves(snap, ch) {
		p.Warnings = append(p.Warnings, downLeaveMsg(id)+"; ring clear drops the staged leave")
	}
	return p, err
}

// StageRing stages op of member id by admin by: a leave or removal of a
// member on the ring, or again the join of a staged joiner that ring
// clear dropped. The change is planned with what is staged already
// before it is staged, so one that does not fit is refused.
func (s Stager) StageRing(op, id, by string) (api.RingPlan, error) {
	snap := s.H.Snapshot()
	ch, who := pending(snap)
	rec, known := snap.Records[id]
	var e ownership.StageEntry
	switch op {
	case "join":
		if !known || !rec.Staged || rec.Left || Admitted(snap.Stage, id, rec) {
			return api.RingPlan{}, fmt.Errorf("%w: %q is not an agent waiting to join (start it with --join-mode staged)", ring.ErrInvalidChange, id)
		}
		if !slices.ContainsFunc(ch.Joins, func(m ring.Member) bool { return string(m.ID) == id }) {
			ch.Joins = append(ch.Joins, ring.Member{ID: ring.NodeID(id), Zone: rec.Zone, Weight: rec.Weight})
		}
		e = snap.Stage.Put(id, ownership.StageJoin, rec.Incarnation, by)
	case "leave", "remove":
		kind, list := ownership.StageLeave, &ch.Leaves
		if op == "remove" {
			kind, list = ownership.StageRemove, &ch.Removes
		}
		if op == "leave" && snap.down(id) {
			return api.RingPlan{}, fmt.Errorf("%w: %s", ring.ErrInvalidChange, downLeaveMsg(id))
		}
		if cur, ok := snap.Stage[id]; ok && cur.State == ownership.StateStaged && cur.Kind == kind {
			return s.plan(snap, ch, who) // staged already
		}
		*list = append(*list, ring.NodeID(id))
		e = snap.Stage.Put(id, kind, 0, by)
	default:
		return api.RingPlan{}, fmt.Errorf("%w: op %q", ring.ErrInvalidChange, op)
	}
	who[ring.NodeID(id)] = by
	p, err := s.plan(snap, ch, who)
	if err != nil {
		return p, err
	}
	s.H.MergeStage(ownership.Stage{id: e})
	return p, nil
}

// staged returns the ring state, its staged change and the change's plan,
// or ErrNothingStaged.
func (s Stager) staged() (Snapshot, ring.Change, api.RingPlan, error) {
	snap := s.H.Snapshot()
	ch, who := pending(snap)
	if ch.Empty() {
		return snap, ch, api.RingPlan{Node: snap.Self}, httpapi.ErrNothingStaged
	}
	p, err := s.plan(snap, ch, who)
	return snap, ch, p, err
}

// CommitRing applies everything staged at once: removes (signed here),
// then the leaves and admissions (gossiped: each leaving member leaves by
// itself, each admitted joiner clears its flag; see Self), this node's
// own leave included. It is CommitPlan without a version: it applies
// whatever is staged now, seen or not.
func (s Stager) CommitRing(by string) (api.RingPlan, error) { return s.CommitPlan("", by) }

// CommitPlan is CommitRing of the plan of version ver only
// (httpapi.RingStager): if what is staged, or the placement and
// members it applies to, changed since that plan was shown (by this node
// or another that saw the same ring state), it commits nothing. ver ""
// commits whatever is staged.
func (s Stager) CommitPlan(ver, by string) (api.RingPlan, error) {
	snap, ch, p, err := s.staged()
	if err != nil {
		return p, err
	}
	if ver != "" && ver != p.Version {
		return p, fmt.Errorf("%w: nothing committed: the plan of version %s is not what is staged now on %s's ring (the current plan is %s: "+
			"changes were staged, cleared or committed, or the ring moved, since that plan was shown, or this node has not seen them yet); "+
			"run quorumkv ring plan, check it, and commit its version", httpapi.ErrStalePlan, ver, snap.Self, p.Version)
	}
	if down := downLeaves(snap, ch); len(down) > 0 {
		return p, fmt.Errorf("%w: nothing committed: %s; ring clear drops the staged leave", ring.ErrInvalidChange, downLeaveMsg(down[0]))
	}
	for i, id := range ch.Removes {
		if err := s.H.Remove(string(id), by); err != nil {
			s.H.MergeStage(entries(snap, ring.Change{Removes: ch.Removes[:i]}, ownership.StateCommitted, by))
			return p, fmt.Errorf("remove %s: %w (nothing after it committed: run ring plan, then ring clear or fix and commit again)", id, err)
		}
	}
	s.H.MergeStage(entries(snap, ch, ownership.StateCommitted, by))
	p.Status = fmt.Sprintf("committed %s: the cluster moves to the new placement (quorumkv transfers shows the progress)", summary(ch))
	return p, nil
}

// ClearRing drops everything staged: leaves and removes are forgotten,
// staged joiners stay off the ring (ring join ID stages one again).
func (s Stager) ClearRing(by string) (api.RingPlan, error) {
	snap, ch, p, err := s.staged()
	switch {
	case errors.Is(err, httpapi.ErrNothingStaged):
		return p, err
	case err != nil:
		// A staged change that no longer fits (a member staged to leave
		// was removed meanwhile) is cleared all the same.
		p = api.RingPlan{Node: snap.Self}
	}
	s.H.MergeStage(entries(snap, ch, ownership.StateCleared, by))
	p.Status = fmt.Sprintf("cleared %s: nothing is staged now", summary(ch))
	return p, nil
}

// entries returns the stage entries that move the changes of ch to state
// (committed or cleared), by admin by.
func entries(snap Snapshot, ch ring.Change, state uint8, by string) ownership.Stage {
	out := ownership.Stage{}
	put := func(id ring.NodeID, kind uint8, inc uint64) {
		e := snap.Stage.Put(string(id), kind, inc, by)
		e.State = state
		out[string(id)] = e
	}
	for _, id := range ch.Removes {
		put(id, ownership.StageRemove, 0)
	}
	for _, id := range ch.Leaves {
		put(id, ownership.StageLeave, 0)
	}
	for _, m := range ch.Joins {
		put(m.ID, ownership.StageJoin, snap.Records[string(m.ID)].Incarnation)
	}
	return out
}

func summary(ch ring.Change) string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{len(ch.Joins), "join"}, {len(ch.Leaves), "leave"}, {len(ch.Removes), "remove"}} {
		switch {
		case p.n == 1:
			parts = append(parts, "1 "+p.what)
		case p.n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}

// Action is what a member must do about its own staged changes.
type Action int

// Actions of SelfAction.
const (
	// Nothing to do.
	Nothing Action = iota
	// Unstage: this staged joiner was admitted: clear its Staged flag
	// (re-sign its record), so that later staged changes of its id do
	// not take it off the ring.
	Unstage
	// Leave: a leave of this member was committed: leave the ring.
	Leave
)

// SelfAction tells what member snap.Self must do about its own staged
// changes, from the ring state.
func SelfAction(snap Snapshot) Action {
	rec, ok := snap.Records[snap.Self]
	if !ok || rec.Left {
		return Nothing
	}
	if rec.Staged {
		if Admitted(snap.Stage, snap.Self, rec) {
			return Unstage
		}
		return Nothing
	}
	if e, ok := snap.Stage[snap.Self]; ok && e.Kind == ownership.StageLeave && e.State == ownership.StateCommitted {
		return Leave
	}
	return Nothing
}

// FromState is the staging snapshot of ring state st as member self sees
// it; cfg is the config of the state's claim ring, live the members up.
func FromState(self string, st ringstate.State, cfg ring.Config, live []string) Snapshot {
	snap := Snapshot{Self: self, Claim: st.Claim(), Config: cfg, Members: st.RingMembers(), Live: live,
		Records: make(map[string]Record, len(st.Members)), Stage: st.Stage.Clone()}
	if len(st.Assign) > 0 {
		snap.Committed, _ = ring.DecodeAssignment(st.Assign) // checked when it was merged
	}
	for id, r := range st.Members {
		snap.Records[id] = Record{Zone: r.Zone, Incarnation: r.Incarnation, Left: r.Left, Staged: r.Staged}
	}
	return snap
}

// Self carries out what a member must do about its own staged changes
// (SelfAction), one action at a time. The zero value is ready.
type Self struct{ busy atomic.Bool }

// SelfHost is what Self acts through: the node.
type SelfHost interface {
	// Unstage re-signs this member's record without the Staged flag.
	Unstage()
	// LeaveRing makes this member leave the ring, handing its partitions
	// over; it returns when done or the node closes.
	LeaveRing() error
}

// Check starts, with run (a goroutine the node waits for when it closes),
// what SelfAction asks of member self in ring state st, unless an action
// is running; a failed leave is logged to log. It is cheap (it reads
// self's record and entry only), so the node calls it, holding its lock,
// after every change of its ring state.
func (s *Self) Check(self string, st ringstate.State, h SelfHost, run func(func()), log *slog.Logger) {
	snap := Snapshot{Self: self, Records: map[string]Record{}, Stage: ownership.Stage{}}
	if r, ok := st.Members[self]; ok {
		snap.Records[self] = Record{Incarnation: r.Incarnation, Left: r.Left, Staged: r.Staged}
	}
	if e, ok := st.Stage[self]; ok {
		snap.Stage[self] = e
	}
	a := SelfAction(snap)
	if a == Nothing || !s.busy.CompareAndSwap(false, true) {
		return
	}
	run(func() {
		defer s.busy.Store(false)
		if a == Unstage {
			h.Unstage()
		} else if err := h.LeaveRing(); err != nil {
			log.Error("leave committed by ring commit", "err", err)
		}
	})
}

// Scanner is what EstimateBytes reads of a store.
type Scanner interface {
	Partitions() ([]uint32, error)
	Scan(p uint32, fromHash, toHash uint64, fn func(k ring.Key, val []byte) error) error
}

// samplePartitions bounds how many partitions EstimateBytes reads.
const samplePartitions = 16

// EstimateBytes estimates one replica's bytes per partition (keys and
// encoded values) from up to samplePartitions of the partitions node self
// holds, spread over them: keys hash uniformly, so every partition gets
// their mean. It reads those partitions whole, so it costs about
// samplePartitions/Q of the node's data. The string says how it was
// estimated.
func EstimateBytes(ctx context.Context, st Scanner, q int, self string) ([]int64, string) {
	held, err := st.Partitions()
	if err != nil {
		return nil, fmt.Sprintf("unknown: %v", err)
	}
	if len(held) == 0 {
		return make([]int64, q), self + " holds no data: assumed empty"
	}
	step := max(1, len(held)/samplePartitions)
	var total int64
	n := 0
	for i := 0; i < len(held) && n < samplePartitions; i += step {
		if ctx.Err() != nil {
			break
		}
		err := st.Scan(held[i], 0, ^uint64(0), func(k ring.Key, val []byte) error {
			total += int64(len(k.Key) + len(val))
			return ctx.Err()
		})
		if err != nil {
			return nil, fmt.Sprintf("unknown: %v", err)
		}
		n++
	}
	mean := total / int64(max(n, 1))
	out := make([]int64, q)
	for p := range out {
		out[p] = mean
	}
	return out, fmt.Sprintf("mean of %d of the %d partitions %s holds: %d bytes per replica", n, len(held), self, mean)
}
