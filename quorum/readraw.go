package quorum

import (
	"bytes"
	"context"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// RawReader is implemented by Replicas that can answer a read with the
// replica's set as encoded (vclock.Set.MarshalBinary), undecoded. Get then
// decodes one answer and takes an answer whose bytes equal it as that set
// without decoding it: replicas that agree hold the same bytes (the
// encoding is canonical), so the common read decodes one set, not N.
type RawReader interface {
	// ReadRawAsync is ReadAsync with the set's encoding: nil when the
	// replica holds nothing for k (ReadAsync's empty set), given to
	// done.RawRead with t. done owns set: the RawReader neither keeps nor
	// reuses it. done.RawRead runs exactly once, possibly before
	// ReadRawAsync returns, and must not block.
	ReadRawAsync(ctx context.Context, t ring.Target, k ring.Key, done RawReadDone)
}

// RawReadDone takes the answers to raw reads (RawReader). An interface
// rather than a func, so that Get passes its read itself, pointer-shaped,
// and allocates no closure per replica call: the call's target comes back
// with its answer.
type RawReadDone interface {
	RawRead(t ring.Target, set []byte, err error)
}

// goReadRaw is goRead through rr: the reply, which comes to rd.RawRead,
// carries the set's bytes, which readSet.decode turns into its set.
func (c *Coordinator) goReadRaw(ctx context.Context, rr RawReader, t ring.Target, k ring.Key, rd *read) {
	c.wg.Add(1)
	rr.ReadRawAsync(ctx, t, k, rd)
}

// RawRead implements RawReadDone: it hands t's answer to deliver.
func (rd *read) RawRead(t ring.Target, b []byte, err error) {
	rd.deliver(readReply{t: t, raw: b, isRaw: err == nil, err: err})
	rd.c.wg.Done()
}

// decode gives a raw reply (goReadRaw) its set: none for nil bytes, the
// set already decoded from the same bytes, or else the decoded bytes,
// which become the ones later replies are compared with if none were yet.
// A reply whose bytes do not decode fails, as ReadAsync's would.
func (s *readSet) decode(rep *readReply) {
	if !rep.isRaw {
		return
	}
	rep.isRaw = false
	switch {
	case rep.raw == nil:
		rep.set = vclock.Set{}
	case s.raw != nil && bytes.Equal(rep.raw, s.raw):
		rep.set = s.rawSet
	default:
		// The bytes are the read's (RawReader: done owns them), so the
		// set may alias them: no copy of the values.
		set, err := vclock.DecodeSetOwned(rep.raw)
		if err != nil {
			rep.err = err
			return
		}
		rep.set = set
		if s.raw == nil {
			s.raw, s.rawSet = rep.raw, set
		}
	}
	rep.raw = nil
}
