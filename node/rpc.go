package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// errPeerUnknown means the ring names a node whose address we do not know.
var errPeerUnknown = errors.New("peer address unknown")

// replicas implements quorum.Replicas for a node: the local replica
// directly, others through the transport.
type replicas struct{ n *Node }

var _ quorum.Replicas = replicas{}

// request and response are messages of package wire.
type (
	request interface {
		Append(b []byte) ([]byte, error)
	}
	response interface{ Decode(b []byte) error }
)

// reqBufs recycles request bodies: Transport.Call does not retain them.
var reqBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (r replicas) call(ctx context.Context, id ring.NodeID, m transport.Method, req request, resp response) error {
	if err := r.n.ae.CheckPeer(string(id)); err != nil {
		return err // its answers may carry values deleted and reaped meanwhile
	}
	addr, ok := r.n.rpcAddr(string(id))
	if !ok {
		return fmt.Errorf("%s: %w", id, errPeerUnknown)
	}
	bp := reqBufs.Get().(*[]byte)
	defer func() { *bp = (*bp)[:0]; reqBufs.Put(bp) }()
	body, err := req.Append((*bp)[:0])
	if err != nil {
		return err
	}
	*bp = body
	out, err := r.n.tr.Call(ctx, addr, m, body)
	if err != nil {
		r.n.ae.NoteRemoteError(string(id), err)
		return err
	}
	if err := resp.Decode(out); err != nil {
		return fmt.Errorf("decode reply from %s: %w", id, err)
	}
	return nil
}

func (r replicas) Mint(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.n.rep.Mint(ctx, t, k, vctx, v, durable)
}

// MintSupersedingLocal implements quorum.LocalSuperseder.
func (r replicas) MintSupersedingLocal(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.n.rep.MintSupersedingLocal(ctx, t, k, vctx, v, durable)
}

func (r replicas) Merge(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool) (bool, error) {
	if string(t.Node) == r.n.cfg.NodeID {
		s, err := vclock.DecodeSet(set)
		if err != nil {
			return false, err
		}
		if _, err := r.n.rep.MergeSet(ctx, string(t.HintFor), k, s, durable); err != nil {
			return false, err
		}
		return durable || r.n.cfg.Sync, nil
	}
	var resp wire.MergeResponse
	err := r.call(ctx, t.Node, wire.MethodMerge, &wire.MergeRequest{Partition: k.Partition, Hash: k.Hash, Key: k.Key, HintFor: string(t.HintFor), Set: set, Durable: durable}, &resp)
	return resp.Durable, err
}

func (r replicas) Read(ctx context.Context, t ring.Target, k ring.Key) (vclock.Set, error) {
	if string(t.Node) == r.n.cfg.NodeID {
		s, _, err := r.n.rep.ReadLocal(string(t.HintFor), k)
		return s, err
	}
	var resp wire.ReadResponse
	if err := r.call(ctx, t.Node, wire.MethodRead, &wire.ReadRequest{Partition: k.Partition, Hash: k.Hash, Key: k.Key, HintFor: string(t.HintFor)}, &resp); err != nil {
		return vclock.Set{}, err
	}
	if !resp.Found {
		return vclock.Set{}, nil
	}
	return vclock.DecodeSet(resp.Set)
}

func (r replicas) Forward(ctx context.Context, id ring.NodeID, req quorum.PutRequest) (*quorum.WriteResult, error) {
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
	var resp wire.ForwardResponse
	if err := r.call(ctx, id, transport.Method(fr.Method()), &fr, &resp); err != nil {
		return nil, err
	}
	if e := resp.Err; e != nil {
		return nil, fromWireError(id, e)
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

// serveRPC answers other nodes (the transport's Handler).
func (n *Node) serveRPC(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
	if n.closing.Load() {
		return nil, &transport.RemoteError{Code: wire.CodeClosed, Msg: "node is shutting down"}
	}
	if m != wire.MethodPeerStatus {
		if err := n.ae.Refusal(from); err != nil {
			return nil, err
		}
	}
	var (
		out []byte
		err error
	)
	switch m {
	case wire.MethodMerge:
		out, err = n.serveMerge(ctx, body)
	case wire.MethodRead:
		out, err = n.serveRead(body)
	case wire.MethodForward, wire.MethodForwardExpiring, wire.MethodForwardZones:
		out, err = n.serveForward(ctx, body)
	case wire.MethodListOrdered:
		out, err = n.serveList(body)
	case wire.MethodHashes, wire.MethodKeys, wire.MethodReadMany, wire.MethodTombstoneAck, wire.MethodMergeMany, wire.MethodPeerStatus:
		return n.ae.Serve(ctx, from, m, body)
	default:
		return nil, &transport.RemoteError{Code: wire.CodeInvalid, Msg: wire.UnknownMethodMsg(uint8(m))}
	}
	if err != nil {
		var re *transport.RemoteError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, &transport.RemoteError{Code: wire.CodeInternal, Msg: err.Error()}
	}
	return out, nil
}

func invalid(format string, args ...any) error {
	return &transport.RemoteError{Code: wire.CodeInvalid, Msg: fmt.Sprintf(format, args...)}
}

// checkKey verifies that a peer's key address is consistent with our ring
// settings, so a bad frame cannot file a key under the wrong partition,
// and that hintFor, when set, is a node id.
func (n *Node) checkKey(p uint32, h uint64, key []byte, hintFor string) (ring.Key, error) {
	k, err := n.Ring().CheckKey(p, h, key, n.cfg.MaxKeySize)
	if err != nil {
		return ring.Key{}, invalid("%v", err)
	}
	if hintFor != "" && !ringstate.ValidID(hintFor) {
		return ring.Key{}, invalid("bad hint target %q", hintFor)
	}
	return k, nil
}

func (n *Node) serveMerge(ctx context.Context, body []byte) ([]byte, error) {
	var req wire.MergeRequest
	if err := req.Decode(body); err != nil {
		return nil, invalid("merge: %v", err)
	}
	k, err := n.checkKey(req.Partition, req.Hash, req.Key, req.HintFor)
	if err != nil {
		return nil, err
	}
	s, err := vclock.DecodeSet(req.Set)
	if err != nil {
		return nil, invalid("merge: %v", err)
	}
	if req.HintFor == n.cfg.NodeID {
		req.HintFor = "" // a hint for ourselves is a plain write
	}
	if _, err := n.rep.MergeSet(ctx, req.HintFor, k, s, req.Durable); err != nil {
		return nil, err
	}
	return (&wire.MergeResponse{Durable: req.Durable || n.cfg.Sync}).Append(nil)
}

func (n *Node) serveRead(body []byte) ([]byte, error) {
	var req wire.ReadRequest
	if err := req.Decode(body); err != nil {
		return nil, invalid("read: %v", err)
	}
	k, err := n.checkKey(req.Partition, req.Hash, req.Key, req.HintFor)
	if err != nil {
		return nil, err
	}
	if req.HintFor == "" {
		// The stored set goes out as stored: the coordinator decodes (and
		// so checks) it anyway, so decoding and re-encoding it here would
		// be the same work twice. The reply is encoded straight from the
		// store's slice, which is valid only inside viewRaw.
		var reply []byte
		found, err := n.rep.ViewRaw(k, func(set []byte) error {
			reply, _ = (&wire.ReadResponse{Found: true, Set: set}).Append(nil)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !found {
			return (&wire.ReadResponse{}).Append(nil)
		}
		return reply, nil
	}
	s, found, err := n.rep.ReadLocal(req.HintFor, k)
	if err != nil {
		return nil, err
	}
	if !found {
		return (&wire.ReadResponse{}).Append(nil)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return (&wire.ReadResponse{Found: true, Set: b}).Append(nil)
}

func (n *Node) serveForward(ctx context.Context, body []byte) ([]byte, error) {
	var fr wire.ForwardRequest
	if err := fr.Decode(body); err != nil {
		return nil, invalid("forward: %v", err)
	}
	vctx, err := vclock.DecodeContext(fr.Context)
	if err == nil {
		// The first node verified the signature; an RPC peer still may
		// not skip the counter bound.
		err = ctxauth.CheckCounters(vctx)
	}
	if err != nil {
		return nil, invalid("forward: context: %v", err)
	}
	if len(fr.Key) == 0 || len(fr.Key) > n.cfg.MaxKeySize || len(fr.Data) > n.cfg.MaxValueSize {
		return nil, invalid("forward: key or value size out of range")
	}
	p := quorum.Params{N: fr.N, R: fr.R, W: fr.W, PR: fr.PR, PW: fr.PW, DW: fr.DW, PZ: fr.PZ}
	if fr.TimeoutMS > 0 {
		p.Timeout = time.Duration(fr.TimeoutMS) * time.Millisecond
	}
	res, err := n.coord.Put(ctx, quorum.PutRequest{
		Key:     fr.Key,
		Value:   vclock.Value{Data: fr.Data, ContentType: fr.ContentType, Deleted: fr.Deleted, Expires: fr.Expires},
		Context: vctx, Params: p, Hops: fr.Hops, SupersedeLocal: fr.SupersedeLocal,
	})
	if err != nil {
		return (&wire.ForwardResponse{Err: toWireError(err)}).Append(nil)
	}
	n.metrics.observeWriteResult(res)
	set, err := res.Set.MarshalBinary()
	if err != nil {
		return nil, err
	}
	resp := wire.ForwardResponse{Set: set, Dot: vclock.EncodeDot(res.Dot), Primary: res.Acks.Primary,
		Fallback: res.Acks.Fallback, Durable: res.Acks.Durable, Coordinator: string(res.Coordinator)}
	if fr.PZ != 0 {
		resp.Zones = res.Acks.Zones // only a caller that asked for zones decodes them
	}
	return resp.Append(nil)
}

// toWireError carries a coordinator's failure back through a forward;
// fromWireError turns it into the caller's error again.
func toWireError(err error) *wire.Error {
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

func fromWireError(coord ring.NodeID, e *wire.Error) error {
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
