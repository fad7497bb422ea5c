package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/quorumkv/quorumkv/internal/forwardmsg"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/node/internal/readcall"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// errPeerUnknown means the ring names a node whose address we do not know.
var errPeerUnknown = errors.New("peer address unknown")

// replicas implements quorum.Replicas for a node: the local replica
// directly, others through the transport.
type replicas struct{ n *Node }

var _ quorum.RawReader = replicas{}

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
	addr, bp, err := r.encode(id, req)
	if err != nil {
		return err
	}
	out, err := r.n.tr.Call(ctx, addr, m, *bp)
	putReq(bp)
	if err != nil {
		r.n.ae.NoteRemoteError(string(id), err)
		return err
	}
	return decodeReply(id, resp, out)
}

// start is call without waiting (transport.Go): c.finish gets the error
// once c has decoded the reply, on the connection's reader. A failed
// call's NoteRemoteError (which may close the records, waiting for
// writes) runs, then c.finish, in a goroutine of its own.
func (r replicas) start(ctx context.Context, id ring.NodeID, m transport.Method, req request, c asyncCall) {
	addr, bp, err := r.encode(id, req)
	if err != nil {
		c.finish(err)
		return
	}
	transport.Go(ctx, r.n.tr, addr, m, *bp, func(out []byte, err error) {
		if err != nil {
			go func() { r.n.ae.NoteRemoteError(string(id), err); c.finish(err) }()
			return
		}
		c.finish(decodeReply(id, c, out))
	})
	putReq(bp)
}

// asyncCall is the state of a call start makes, in one allocation: the
// request, its response and what to do once it is decoded (or the call
// failed); mergeCheckCall and a raw readCall the target done is told of.
type (
	asyncCall interface {
		response
		finish(err error)
	}
	mergeCall struct {
		req  wire.MergeRequest
		resp wire.MergeResponse
		done func(bool, error)
	}
	mergeCheckCall struct {
		req  wire.MergeRequest
		resp wire.MergeCheckResponse
		t    ring.Target
		done quorum.MergeCheckDone
	}
	readCall struct{ readcall.Call }
)

func (c *mergeCall) Decode(b []byte) error      { return c.resp.Decode(b) }
func (c *mergeCall) finish(err error)           { c.done(c.resp.Durable, err) }
func (c *mergeCheckCall) Decode(b []byte) error { return c.resp.Decode(b) }
func (c *mergeCheckCall) finish(err error) {
	c.done.MergeChecked(c.t, quorum.MergeCheck{Synced: c.resp.Durable, Clean: c.resp.Clean, Prior: c.resp.Prior}, err)
}
func (c *readCall) finish(err error) { c.Finish(err) }

// encode returns id's address and req's encoding in a pooled buffer, for
// putReq once the transport has it.
func (r replicas) encode(id ring.NodeID, req request) (string, *[]byte, error) {
	if err := r.n.ae.CheckPeer(string(id)); err != nil {
		return "", nil, err // its answers may carry values deleted and reaped meanwhile
	}
	addr, ok := r.n.rpcAddr(string(id))
	if !ok {
		return "", nil, fmt.Errorf("%s: %w", id, errPeerUnknown)
	}
	bp := reqBufs.Get().(*[]byte)
	body, err := req.Append((*bp)[:0])
	if *bp = body; err != nil {
		putReq(bp)
		return "", nil, err
	}
	return addr, bp, nil
}

func putReq(bp *[]byte) { *bp = (*bp)[:0]; reqBufs.Put(bp) }

func decodeReply(id ring.NodeID, resp response, out []byte) error {
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

func (r replicas) MintQueued(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable, supersede bool) (quorum.Minted, func() error, error) {
	return r.n.rep.MintQueued(ctx, t, k, vctx, v, durable, supersede)
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

// MergeCheckAsync implements quorum.MergeChecker (PeerTooOld below).
func (r replicas) MergeCheckAsync(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, done quorum.MergeCheckDone) {
	c := &mergeCheckCall{req: wire.MergeRequest{Partition: k.Partition, Hash: k.Hash, Key: k.Key, HintFor: string(t.HintFor), Set: set, Durable: durable}, t: t, done: done}
	r.start(ctx, t.Node, wire.MethodMergeCheck, &c.req, c)
}

// MergeAsync implements quorum.AsyncReplicas.
func (r replicas) MergeAsync(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, done func(bool, error)) {
	if string(t.Node) == r.n.cfg.NodeID {
		go func() { done(r.Merge(ctx, t, k, set, durable)) }()
		return
	}
	c := &mergeCall{req: wire.MergeRequest{Partition: k.Partition, Hash: k.Hash, Key: k.Key, HintFor: string(t.HintFor), Set: set, Durable: durable}, done: done}
	r.start(ctx, t.Node, wire.MethodMerge, &c.req, c)
}

func (r replicas) Read(ctx context.Context, t ring.Target, k ring.Key) (s vclock.Set, err error) {
	got := make(chan struct{})
	r.ReadAsync(ctx, t, k, func(rs vclock.Set, e error) { s, err = rs, e; close(got) })
	<-got
	return s, err
}

// ReadAsync implements quorum.AsyncReplicas.
func (r replicas) ReadAsync(ctx context.Context, t ring.Target, k ring.Key, done func(vclock.Set, error)) {
	r.read(ctx, t, k, wire.MethodRead, done, nil)
}

// ReadRawAsync implements quorum.RawReader: the local set is copied out
// of the store, a peer's is its reply's.
func (r replicas) ReadRawAsync(ctx context.Context, t ring.Target, k ring.Key, done quorum.RawReadDone) {
	r.read(ctx, t, k, wire.MethodRead, nil, done)
}

// ReadContextAsync and PeerTooOld implement quorum.ContextReader.
func (r replicas) ReadContextAsync(ctx context.Context, t ring.Target, k ring.Key, done func(vclock.Set, error)) {
	r.read(ctx, t, k, wire.MethodReadContext, done, nil)
}
func (replicas) PeerTooOld(err error) bool { return transport.PeerTooOld(err) }

// read answers done, or raw (ReadRawAsync) when done is nil.
func (r replicas) read(ctx context.Context, t ring.Target, k ring.Key, m transport.Method, done func(vclock.Set, error), raw quorum.RawReadDone) {
	switch {
	case string(t.Node) != r.n.cfg.NodeID:
		c := &readCall{readcall.Call{Req: wire.ReadRequest{Partition: k.Partition, Hash: k.Hash, Key: k.Key, HintFor: string(t.HintFor)}, Done: done, Raw: raw, T: t}}
		r.start(ctx, t.Node, m, &c.Req, c)
	case raw != nil:
		b, err := r.n.rep.ReadLocalRaw(string(t.HintFor), k)
		raw.RawRead(t, b, err)
	default:
		s, _, err := r.n.rep.ReadLocal(string(t.HintFor), k)
		done(s, err)
	}
}

func (r replicas) Forward(ctx context.Context, id ring.NodeID, req quorum.PutRequest) (*quorum.WriteResult, error) {
	fr := forwardmsg.Request(ctx, req)
	var resp wire.ForwardResponse
	if err := r.call(ctx, id, transport.Method(fr.Method()), &fr, &resp); err != nil {
		return nil, err
	}
	return forwardmsg.Result(id, &resp)
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
	case wire.MethodMerge, wire.MethodMergeCheck:
		out, err = n.serveMerge(ctx, body, m == wire.MethodMergeCheck)
	case wire.MethodRead, wire.MethodReadContext:
		out, err = n.serveRead(body, m == wire.MethodReadContext)
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

func (n *Node) serveMerge(ctx context.Context, body []byte, check bool) ([]byte, error) {
	var req wire.MergeRequest
	if err := req.Decode(body); err != nil {
		return nil, invalid("merge: %v", err)
	}
	k, err := n.checkKey(req.Partition, req.Hash, req.Key, req.HintFor)
	if err != nil {
		return nil, err
	}
	e, err := vclock.CheckSet(req.Set)
	if err != nil {
		return nil, invalid("merge: %v", err)
	}
	if req.HintFor == n.cfg.NodeID {
		req.HintFor = "" // a hint for ourselves is a plain write
	}
	// e aliases body: the replica copies what it keeps before returning.
	clean, prior, err := n.rep.MergeEncoded(ctx, req.HintFor, k, e, req.Durable, check)
	if err != nil {
		return nil, err
	}
	// Either reply goes over the request, read by now (ServeRPC's reply may alias body); prior is a copy.
	if check {
		return (&wire.MergeCheckResponse{Durable: req.Durable || n.cfg.Sync, Clean: clean, Prior: prior}).Append(body[:0])
	}
	return (&wire.MergeResponse{Durable: req.Durable || n.cfg.Sync}).Append(body[:0])
}

func (n *Node) serveRead(body []byte, ctxOnly bool) ([]byte, error) {
	var req wire.ReadRequest
	if err := req.Decode(body); err != nil {
		return nil, invalid("read: %v", err)
	}
	k, err := n.checkKey(req.Partition, req.Hash, req.Key, req.HintFor)
	if err != nil {
		return nil, err
	}
	// The reply is encoded from the store's slice, valid only inside fn.
	var reply []byte
	found, err := n.rep.ViewSet(req.HintFor, k, ctxOnly, func(set []byte) error {
		reply, _ = (&wire.ReadResponse{Found: true, Set: set}).Append(nil)
		return nil
	})
	if err != nil || found {
		return reply, err
	}
	return (&wire.ReadResponse{}).Append(nil)
}

func (n *Node) serveForward(ctx context.Context, body []byte) ([]byte, error) {
	var fr wire.ForwardRequest
	if err := fr.Decode(body); err != nil {
		return nil, invalid("forward: %v", err)
	}
	req, err := forwardmsg.PutRequest(&fr)
	if err != nil {
		return nil, invalid("forward: %v", err)
	}
	if len(fr.Key) == 0 || len(fr.Key) > n.cfg.MaxKeySize || len(fr.Data) > n.cfg.MaxValueSize {
		return nil, invalid("forward: key or value size out of range")
	}
	res, err := n.coord.Put(ctx, req)
	if err != nil {
		return (&wire.ForwardResponse{Err: forwardmsg.ToWire(err)}).Append(nil)
	}
	n.metrics.observeWriteResult(res)
	return forwardmsg.Response(res, fr.PZ != 0)
}
