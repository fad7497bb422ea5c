// Package readcall is a replica read as its coordinator's node sends it
// over the transport: the request, the reply, and what the caller is
// given once the reply is in.
package readcall

import (
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Call is one read of a peer's replica, in one allocation.
type Call struct {
	Req  wire.ReadRequest
	Resp wire.ReadResponse
	// Done gets the replica's set, decoded (quorum.AsyncReplicas); Raw,
	// set instead, its encoding as the reply holds it (quorum.RawReader),
	// with T, the target read: nil when the replica holds nothing.
	Done func(vclock.Set, error)
	Raw  quorum.RawReadDone
	T    ring.Target
}

// Decode decodes the reply into c.Resp, whose set aliases b.
func (c *Call) Decode(b []byte) error { return c.Resp.Decode(b) }

// Finish gives the caller the reply decoded (err nil) or the call's
// failure. The raw set is the reply's own: the transport does not reuse
// a reply's body. A reply found but with a nil set gives Raw an empty
// one, not nil, so that it fails to decode as it does for Done.
func (c *Call) Finish(err error) {
	set := c.Resp.Set
	if err != nil || !c.Resp.Found {
		set = nil
	} else if set == nil {
		set = []byte{}
	}
	switch {
	case c.Raw != nil:
		c.Raw.RawRead(c.T, set, err)
	case set == nil:
		c.Done(vclock.Set{}, err)
	default:
		c.Done(vclock.DecodeSet(set))
	}
}
