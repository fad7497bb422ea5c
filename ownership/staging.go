package ownership

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/quorumkv/quorumkv/ring"
)

// Staging: `quorumkv ring plan` shows what the staged joins, leaves and
// removes would do, `ring commit` applies them at once and `ring clear`
// drops them. The staged changes are part of the gossiped ring state, so
// every node plans the same change and any node can commit it: a Stage maps
// each member id to its latest StageEntry, a last-writer-wins register per
// id ordered by Seq (then by the other fields, so that merges converge).
// Two admins staging on two nodes at once each win per member, never half.
//
// A member started with --join-mode staged flags its own record as a
// staged join and stays off the ring until a commit admits it (a committed
// join entry for its data directory's incarnation); it then clears the
// flag. One started in auto mode (the default) is admitted at once. A committed leave is carried out by the
// leaving member itself (it signs its own leave); a committed remove by the
// node that commits it (it signs the removal).

// Join modes of an agent (--join-mode): how a member new to the ring
// enters it.
const (
	// JoinAuto admits it at once (the default).
	JoinAuto = "auto"
	// JoinStaged stages its join: it waits in the plan until a commit.
	JoinStaged = "staged"
)

// CheckJoinMode reports whether mode is a join mode ("" means JoinAuto).
func CheckJoinMode(mode string) error {
	switch mode {
	case "", JoinAuto, JoinStaged:
		return nil
	}
	return fmt.Errorf("join mode %q: want %s (admitted at once) or %s (waits in ring plan until ring commit)", mode, JoinAuto, JoinStaged)
}

// Kinds of StageEntry. A wire and disk enum: ONLY APPEND.
const (
	StageJoin   uint8 = 1
	StageLeave  uint8 = 2
	StageRemove uint8 = 3
)

// States of StageEntry. A wire and disk enum: ONLY APPEND.
const (
	// StateStaged: waiting in the plan.
	StateStaged uint8 = 1
	// StateCommitted: applied by `ring commit`.
	StateCommitted uint8 = 2
	// StateCleared: dropped by `ring clear`.
	StateCleared uint8 = 3
)

// MaxStageBy caps StageEntry.By, an admin principal's name.
const MaxStageBy = 128

// StageEntry is the latest staged change of one member.
type StageEntry struct {
	Kind  uint8 `msgpack:"k"`
	State uint8 `msgpack:"s"`
	// Inc is, for a join, the incarnation (data directory) that asks to
	// join: a new data directory under the same id is another join.
	Inc uint64 `msgpack:"i,omitempty"`
	// Seq orders the entries of one member: each change of it bumps it.
	Seq uint64 `msgpack:"q"`
	// By names who staged, committed or cleared it (the admin principal,
	// the joining member itself), for the log and `ring plan`.
	By string `msgpack:"b,omitempty"`
}

// after reports whether e should replace o: Seq, then the other fields, a
// total order so that merges are commutative and idempotent.
func (e StageEntry) after(o StageEntry) bool {
	if e.Seq != o.Seq {
		return e.Seq > o.Seq
	}
	if c := slices.Compare([]uint64{uint64(e.State), uint64(e.Kind), e.Inc}, []uint64{uint64(o.State), uint64(o.Kind), o.Inc}); c != 0 {
		return c > 0
	}
	return e.By > o.By
}

// Stage is the cluster's staged ring changes, by member id.
type Stage map[string]StageEntry

// ErrBadStage means a staged entry from gossip or disk is malformed.
var ErrBadStage = errors.New("ownership: malformed staged change")

// Check validates s as decoded from untrusted bytes: known kinds and
// states, a bounded By, at most maxEntries entries.
func (s Stage) Check(maxEntries int) error {
	if len(s) > maxEntries {
		return fmt.Errorf("%w: %d entries, limit %d", ErrBadStage, len(s), maxEntries)
	}
	for id, e := range s {
		if e.Kind < StageJoin || e.Kind > StageRemove || e.State < StateStaged || e.State > StateCleared || len(e.By) > MaxStageBy {
			return fmt.Errorf("%w: %q: kind %d state %d by %d bytes", ErrBadStage, id, e.Kind, e.State, len(e.By))
		}
	}
	return nil
}

// Merge folds o into s (allocating s when nil) and reports whether s
// changed.
func (s *Stage) Merge(o Stage) bool {
	changed := false
	for id, e := range o {
		if cur, ok := (*s)[id]; ok && !e.after(cur) {
			continue
		}
		if *s == nil {
			*s = Stage{}
		}
		(*s)[id] = e
		changed = true
	}
	return changed
}

// Clone returns a copy of s.
func (s Stage) Clone() Stage {
	if s == nil {
		return nil
	}
	c := make(Stage, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

// Joined reports whether a join of id's incarnation inc was committed.
func (s Stage) Joined(id string, inc uint64) bool {
	e, ok := s[id]
	return ok && e.Kind == StageJoin && e.Inc == inc && e.State == StateCommitted
}

// Cleared reports whether a join of id's incarnation inc was dropped by a
// clear (and not staged again since).
func (s Stage) Cleared(id string, inc uint64) bool {
	e, ok := s[id]
	return ok && e.Kind == StageJoin && e.Inc == inc && e.State == StateCleared
}

// Pending returns the staged leaves and removes, ids sorted. Staged joins
// are members' records (a joiner flags its own record; package ringstage
// reads them), their entries only what a commit or clear made of them.
func (s Stage) Pending() ring.Change {
	var ch ring.Change
	for _, id := range s.ids() {
		e := s[id]
		if e.State != StateStaged {
			continue
		}
		switch e.Kind {
		case StageLeave:
			ch.Leaves = append(ch.Leaves, ring.NodeID(id))
		case StageRemove:
			ch.Removes = append(ch.Removes, ring.NodeID(id))
		}
	}
	return ch
}

// Put returns the entry that stages kind for id (with inc for a join) by
// by: the next Seq of id's entry. StageJoin is also how an admin re-stages
// a join that `ring clear` dropped.
func (s Stage) Put(id string, kind uint8, inc uint64, by string) StageEntry {
	return StageEntry{Kind: kind, State: StateStaged, Inc: inc, Seq: s[id].Seq + 1, By: clip(by)}
}

func (s Stage) ids() []string {
	ids := make([]string, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// clip bounds a principal's name to MaxStageBy bytes.
func clip(by string) string {
	if len(by) <= MaxStageBy {
		return by
	}
	return strings.ToValidUTF8(by[:MaxStageBy], "")
}
