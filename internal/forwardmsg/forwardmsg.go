// Package forwardmsg turns a forwarded write (a node that is not a replica
// hands the write to one that is) into package wire's messages and back:
// the request, the coordinator's result, and its failure (quorum not met,
// a bad parameter, a sibling cap) as the same error types at the node that
// forwarded it.
package forwardmsg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

// Request is the message that forwards req; the time left before ctx's
// deadline travels with it.
func Request(ctx context.Context, req quorum.PutRequest) wire.ForwardRequest {
	p := req.Params
	fr := wire.ForwardRequest{
		Key: req.Key, Data: req.Value.Data, ContentType: req.Value.ContentType, Deleted: req.Value.Deleted,
		Context: vclock.EncodeContext(req.Context),
		N:       p.N, R: p.R, W: p.W, PR: p.PR, PW: p.PW, DW: p.DW,
		Hops: req.Hops, SupersedeLocal: req.SupersedeLocal, Expires: req.Value.Expires, PZ: p.PZ,
	}
	if dl, ok := ctx.Deadline(); ok {
		fr.TimeoutMS = max(1, time.Until(dl).Milliseconds())
	}
	return fr
}

// PutRequest is the write fr forwards, as its coordinator runs it: its
// context decoded and its counters bounded (the first node verified the
// signature; an RPC peer still may not skip the bound), its timeout in
// Params. An error says what in fr is malformed.
func PutRequest(fr *wire.ForwardRequest) (quorum.PutRequest, error) {
	vctx, err := vclock.DecodeContext(fr.Context)
	if err == nil {
		err = ctxauth.CheckCounters(vctx)
	}
	if err != nil {
		return quorum.PutRequest{}, fmt.Errorf("context: %w", err)
	}
	p := quorum.Params{N: fr.N, R: fr.R, W: fr.W, PR: fr.PR, PW: fr.PW, DW: fr.DW, PZ: fr.PZ}
	if fr.TimeoutMS > 0 {
		p.Timeout = time.Duration(fr.TimeoutMS) * time.Millisecond
	}
	return quorum.PutRequest{
		Key:     fr.Key,
		Value:   vclock.Value{Data: fr.Data, ContentType: fr.ContentType, Deleted: fr.Deleted, Expires: fr.Expires},
		Context: vctx, Params: p, Hops: fr.Hops, SupersedeLocal: fr.SupersedeLocal,
	}, nil
}

// Response encodes the coordinator's result res; zones only when the
// caller asked for them (only such a caller decodes them).
func Response(res *quorum.WriteResult, zones bool) ([]byte, error) {
	set, err := res.Set.MarshalBinary()
	if err != nil {
		return nil, err
	}
	resp := wire.ForwardResponse{Set: set, Dot: vclock.EncodeDot(res.Dot), Primary: res.Acks.Primary,
		Fallback: res.Acks.Fallback, Durable: res.Acks.Durable, Coordinator: string(res.Coordinator)}
	if zones {
		resp.Zones = res.Acks.Zones
	}
	return resp.Append(nil)
}

// Result is the write's result, or its coordinator's error, from the
// reply resp of coordinator id.
func Result(id ring.NodeID, resp *wire.ForwardResponse) (*quorum.WriteResult, error) {
	if e := resp.Err; e != nil {
		return nil, FromWire(id, e)
	}
	set, err := vclock.DecodeSet(resp.Set)
	if err != nil {
		return nil, fmt.Errorf("forward reply from %s: %w", id, err)
	}
	dot, err := vclock.DecodeDot(resp.Dot)
	if err != nil {
		return nil, fmt.Errorf("forward reply from %s: %w", id, err)
	}
	return &quorum.WriteResult{Set: set, Dot: dot, Coordinator: ring.NodeID(resp.Coordinator),
		Acks: quorum.Acks{Primary: resp.Primary, Fallback: resp.Fallback, Durable: resp.Durable, Zones: resp.Zones}}, nil
}

// ToWire carries a coordinator's failure back through a forward; FromWire
// turns it into the caller's error again.
func ToWire(err error) *wire.Error {
	var qe *quorum.QuorumError
	var pe *quorum.ParamError
	var ce *siblings.CapError
	switch {
	case errors.As(err, &qe):
		return &wire.Error{Kind: wire.KindQuorum, Msg: err.Error(), Op: qe.Op, Required: qe.Required, Acks: qe.Acks,
			ReqPrim: qe.RequiredPrimary, Prim: qe.PrimaryAcks, ReqDur: qe.RequiredDurable, Durable: qe.DurableAcks,
			Fallback: qe.FallbackAcks, Targets: qe.Targets}
	case errors.As(err, &pe):
		return &wire.Error{Kind: wire.KindParam, Msg: pe.Msg, Param: pe.Param}
	case errors.As(err, &ce):
		// A 413 at the caller too, not an internal error.
		return &wire.Error{Kind: wire.KindSiblingCap, Msg: err.Error(), Required: ce.MaxCount, Acks: ce.Siblings,
			ReqPrim: int(ce.MaxBytes), Prim: int(ce.Bytes)}
	}
	return &wire.Error{Kind: wire.KindOther, Msg: err.Error()}
}

// FromWire is the error of coordinator coord that e carries (see ToWire).
func FromWire(coord ring.NodeID, e *wire.Error) error {
	switch e.Kind {
	case wire.KindQuorum:
		return &quorum.QuorumError{Op: e.Op, Required: e.Required, Acks: e.Acks,
			RequiredPrimary: e.ReqPrim, PrimaryAcks: e.Prim, RequiredDurable: e.ReqDur, DurableAcks: e.Durable,
			FallbackAcks: e.Fallback, Targets: e.Targets, Errs: []error{fmt.Errorf("coordinator %s: %s", coord, e.Msg)}}
	case wire.KindParam:
		return &quorum.ParamError{Param: e.Param, Msg: e.Msg}
	case wire.KindSiblingCap:
		return &siblings.CapError{Siblings: e.Acks, Bytes: int64(e.Prim), MaxCount: e.Required, MaxBytes: int64(e.ReqPrim)}
	}
	return fmt.Errorf("coordinator %s: %s", coord, e.Msg)
}
