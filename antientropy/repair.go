package antientropy

import "github.com/quorumkv/quorumkv/vclock"

// keyAction is what an exchange does with one key whose digests differ
// between this node and the peer.
type keyAction int

const (
	// actNone: neither side holds the key any more (both reaped or handed
	// it off meanwhile); there is nothing to repair.
	actNone keyAction = iota + 1
	// actPull: only the peer holds a set; merge it into this node's copy.
	actPull
	// actPush: only this node holds a set; send it to the peer.
	actPush
	// actSync: both hold sets; merge them and write the merge where a
	// side is behind (syncSides says which).
	actSync
	// actLeaveToReaper: one side holds a tombstone set that every primary
	// was known to hold (confirmed) and the other side holds nothing. The
	// empty side most likely reaped it already; copying it back would
	// restart its grace period, so the holder's reaper deletes it instead.
	actLeaveToReaper
)

func (a keyAction) String() string {
	switch a {
	case actNone:
		return "none"
	case actPull:
		return "pull"
	case actPush:
		return "push"
	case actSync:
		return "sync"
	case actLeaveToReaper:
		return "leave to reaper"
	}
	return "unknown"
}

// keyCopy is one side's copy of a key, as the repair decision sees it.
type keyCopy struct {
	// Found is true when the side holds a record of the key.
	Found bool
	// Confirmed is true when that record is all tombstones that every
	// primary was known to hold (replica.Record.Confirmed).
	Confirmed bool
}

// decideRepair is the decision table of a repair: found and confirmed on
// each side give the action. An unconfirmed tombstone is copied like any
// sibling; a confirmed one is never copied to a side that lacks the key.
func decideRepair(local, remote keyCopy) keyAction {
	switch {
	case !local.Found && !remote.Found:
		return actNone
	case !local.Found && remote.Confirmed:
		return actLeaveToReaper
	case !local.Found:
		return actPull
	case !remote.Found && local.Confirmed:
		return actLeaveToReaper
	case !remote.Found:
		return actPush
	}
	return actSync
}

// syncSides is actSync's decision: the merge of both sides' sets, whether
// the peer is behind it (push: send merged) and whether this node is
// (pull: merge the peer's set here).
func syncSides(local, remote vclock.Set) (merged vclock.Set, push, pull bool) {
	merged = vclock.Sync(local, remote)
	return merged, !merged.Equal(remote), !merged.Equal(local)
}
