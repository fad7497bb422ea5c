package vclock

import (
	"cmp"
	"strconv"
	"strings"
)

// Actor is one incarnation of a node: the node id plus an epoch. Dots are minted
// by actors, not by bare node ids, so that a node which lost its data can never
// mint a dot that another replica already counts as seen (Riak's KV679): it
// comes back under a new epoch, whose counters start afresh.
//
// A valid Actor has a Node of 1 to MaxNodeLen bytes. Any Epoch is valid; a
// node should start at 1 and keep 0 for "no epoch persisted yet".
type Actor struct {
	// Node is the stable node id (1 to MaxNodeLen bytes, any bytes).
	Node string
	// Epoch is the node's incarnation number. The node persists it before
	// first use and moves to NextEpoch whenever its local data may have been
	// lost: a new or wiped data directory, a restore from backup, detected
	// corruption, an unclean restart that may have lost acknowledged state.
	Epoch uint64
}

// NextEpoch returns the actor for the node's next incarnation. It is the whole
// of the epoch rule on this side: the node must persist the result before it
// mints any dot with it.
func (a Actor) NextEpoch() Actor { return Actor{Node: a.Node, Epoch: a.Epoch + 1} }

// String formats the actor for display as "node#epoch", e.g. "n1#7". It is not
// a parseable form (node ids may contain '#'); use EncodeDot for the wire.
func (a Actor) String() string {
	return a.Node + "#" + strconv.FormatUint(a.Epoch, 10)
}

// valid reports whether a may appear in a vector or a dot.
func (a Actor) valid() bool { return len(a.Node) >= 1 && len(a.Node) <= MaxNodeLen }

// compareActors orders actors by Node (bytewise), then Epoch. Every canonical
// form in this package uses this order.
func compareActors(a, b Actor) int {
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Compare(a.Epoch, b.Epoch)
}

// Dot names one write: the Counter-th event of Actor for one key. Counter is
// always >= 1 in a valid dot.
type Dot struct {
	Actor   Actor
	Counter uint64
}

// String formats the dot for display as "node#epoch:counter", e.g. "n1#7:42".
func (d Dot) String() string {
	return d.Actor.String() + ":" + strconv.FormatUint(d.Counter, 10)
}

func (d Dot) valid() bool { return d.Actor.valid() && d.Counter >= 1 && d.Counter <= MaxCounter }

// compareDots orders dots by actor, then counter: the sibling order of a Set.
func compareDots(a, b Dot) int {
	if c := compareActors(a.Actor, b.Actor); c != 0 {
		return c
	}
	return cmp.Compare(a.Counter, b.Counter)
}
