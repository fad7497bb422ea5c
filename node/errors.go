package node

import (
	"errors"

	"github.com/quorumkv/quorumkv/replica"
)

// Errors of a node: ring membership changes, and those of its local replica
// (package replica's own sentinels, so errors.Is works with either name).
var (
	// ErrAlive refuses to remove a member gossip sees alive: ask it to
	// leave instead, so it hands its data over first.
	ErrAlive = errors.New("member is alive: run leave on it instead")
	// ErrUnknownMember names a member the ring state does not hold.
	ErrUnknownMember = errors.New("no such member")
	// ErrRemoveSelf refuses removing the node that received the request.
	ErrRemoveSelf = errors.New("a node cannot remove itself: use leave")
	// ErrSetTooLarge refuses a write whose key would hold more than
	// replica.MaxSetBytes of siblings.
	ErrSetTooLarge = replica.ErrSetTooLarge
	// ErrQuarantined refuses a read or write of this node's records while
	// they may be stale (after a long downtime, until the peers answered)
	// or are being dropped.
	ErrQuarantined = replica.ErrQuarantined
)
