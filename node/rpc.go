package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// RPC methods between nodes. ONLY APPEND: the numbers are on the wire.
const (
	methodMerge        transport.Method = 1 // mergeRequest -> mergeResponse
	methodRead         transport.Method = 2 // readRequest -> readResponse
	methodForward      transport.Method = 3 // forwardRequest -> forwardResponse
	methodHashes       transport.Method = 4 // antientropy.HashesRequest -> HashesResponse
	methodKeys         transport.Method = 5 // antientropy.KeysRequest -> KeysResponse
	methodReadMany     transport.Method = 6 // readManyRequest -> readManyResponse
	methodTombstoneAck transport.Method = 7 // tombstone reaping handshake
)

// Remote error codes carried in transport.RemoteError.Code.
const (
	codeInternal uint16 = 1
	codeInvalid  uint16 = 2
	codeClosed   uint16 = 3
)

type mergeRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	P        uint32
	H        uint64
	K        []byte
	HintFor  string
	Set      []byte
	Durable  bool
}

type mergeResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Durable  bool
}

type readRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	P        uint32
	H        uint64
	K        []byte
	HintFor  string
}

type readResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Found    bool
	Set      []byte
}

type forwardRequest struct {
	_msgpack    struct{} `msgpack:",as_array"`
	Key         []byte
	Data        []byte
	ContentType string
	Deleted     bool
	Context     string // vclock.EncodeContext
	N, R, W     int
	PR, PW, DW  int
	TimeoutMS   int64
	Hops        int
}

// wireError carries a coordinator's failure back through a forward, with
// the counts of a quorum failure.
type wireError struct {
	_msgpack        struct{} `msgpack:",as_array"`
	Kind            uint8    // 1 quorum, 2 invalid, 3 other
	Msg             string
	Param           string
	Op              string
	Required, Acks  int
	ReqPrim, Prim   int
	ReqDur, Durable int
	Fallback        int
	Targets         int
}

type forwardResponse struct {
	_msgpack    struct{} `msgpack:",as_array"`
	Err         *wireError
	Set         []byte
	Dot         string
	Primary     int
	Fallback    int
	Durable     int
	Coordinator string
}

// errPeerUnknown means the ring names a node whose address we do not know.
var errPeerUnknown = errors.New("peer address unknown")

// replicas implements quorum.Replicas for a node: the local replica
// directly, others through the transport.
type replicas struct{ n *Node }

var _ quorum.Replicas = replicas{}

func (r replicas) call(ctx context.Context, id ring.NodeID, m transport.Method, req any, resp any) error {
	addr, ok := r.n.rpcAddr(string(id))
	if !ok {
		return fmt.Errorf("%s: %w", id, errPeerUnknown)
	}
	body, err := msgpack.Marshal(req)
	if err != nil {
		return err
	}
	out, err := r.n.tr.Call(ctx, addr, m, body)
	if err != nil {
		return err
	}
	if err := msgpack.Unmarshal(out, resp); err != nil {
		return fmt.Errorf("decode reply from %s: %w", id, err)
	}
	return nil
}

func (r replicas) Mint(ctx context.Context, t ring.Target, k quorum.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.n.rep.Mint(ctx, t, k, vctx, v, durable)
}

func (r replicas) Merge(ctx context.Context, t ring.Target, k quorum.Key, set []byte, durable bool) (bool, error) {
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
	var resp mergeResponse
	err := r.call(ctx, t.Node, methodMerge, &mergeRequest{P: k.Partition, H: k.Hash, K: k.Key, HintFor: string(t.HintFor), Set: set, Durable: durable}, &resp)
	return resp.Durable, err
}

func (r replicas) Read(ctx context.Context, t ring.Target, k quorum.Key) (vclock.Set, error) {
	if string(t.Node) == r.n.cfg.NodeID {
		s, _, err := r.n.rep.ReadLocal(string(t.HintFor), k)
		return s, err
	}
	var resp readResponse
	if err := r.call(ctx, t.Node, methodRead, &readRequest{P: k.Partition, H: k.Hash, K: k.Key, HintFor: string(t.HintFor)}, &resp); err != nil {
		return vclock.Set{}, err
	}
	if !resp.Found {
		return vclock.Set{}, nil
	}
	return vclock.DecodeSet(resp.Set)
}

func (r replicas) Forward(ctx context.Context, id ring.NodeID, req quorum.PutRequest) (*quorum.WriteResult, error) {
	p := req.Params
	fr := forwardRequest{
		Key: req.Key, Data: req.Value.Data, ContentType: req.Value.ContentType, Deleted: req.Value.Deleted,
		Context: vclock.EncodeContext(req.Context),
		N:       p.N, R: p.R, W: p.W, PR: p.PR, PW: p.PW, DW: p.DW,
		Hops: req.Hops,
	}
	if dl, ok := ctx.Deadline(); ok {
		fr.TimeoutMS = max(1, time.Until(dl).Milliseconds())
	}
	var resp forwardResponse
	if err := r.call(ctx, id, methodForward, &fr, &resp); err != nil {
		return nil, err
	}
	if e := resp.Err; e != nil {
		switch e.Kind {
		case 1:
			return nil, &quorum.QuorumError{Op: e.Op, Required: e.Required, Acks: e.Acks,
				RequiredPrimary: e.ReqPrim, PrimaryAcks: e.Prim, RequiredDurable: e.ReqDur, DurableAcks: e.Durable,
				FallbackAcks: e.Fallback, Targets: e.Targets, Errs: []error{fmt.Errorf("coordinator %s: %s", id, e.Msg)}}
		case 2:
			return nil, &quorum.ParamError{Param: e.Param, Msg: e.Msg}
		default:
			return nil, fmt.Errorf("coordinator %s: %s", id, e.Msg)
		}
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
		Acks: quorum.Acks{Primary: resp.Primary, Fallback: resp.Fallback, Durable: resp.Durable}}, nil
}

// ServeRPC answers other nodes (transport.Handler).
func (n *Node) ServeRPC(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
	if n.closing.Load() {
		return nil, &transport.RemoteError{Code: codeClosed, Msg: "node is shutting down"}
	}
	var (
		resp any
		err  error
	)
	switch m {
	case methodMerge:
		resp, err = n.serveMerge(ctx, body)
	case methodRead:
		resp, err = n.serveRead(body)
	case methodForward:
		resp, err = n.serveForward(ctx, body)
	case methodHashes, methodKeys, methodReadMany:
		return n.serveAntiEntropy(ctx, m, body)
	default:
		return nil, &transport.RemoteError{Code: codeInvalid, Msg: fmt.Sprintf("unknown method %d", m)}
	}
	if err != nil {
		var re *transport.RemoteError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, &transport.RemoteError{Code: codeInternal, Msg: err.Error()}
	}
	return msgpack.Marshal(resp)
}

func invalid(format string, args ...any) error {
	return &transport.RemoteError{Code: codeInvalid, Msg: fmt.Sprintf(format, args...)}
}

// checkKey verifies that a peer's key address is consistent with our ring
// settings, so a bad frame cannot file a key under the wrong partition.
func (n *Node) checkKey(p uint32, h uint64, key []byte) (quorum.Key, error) {
	if len(key) == 0 || len(key) > n.cfg.MaxKeySize {
		return quorum.Key{}, invalid("key of %d bytes", len(key))
	}
	k := n.coord.KeyOf(n.Ring(), key)
	if k.Hash != h || k.Partition != p {
		return quorum.Key{}, invalid("key address mismatch: partition %d hash %x, want %d %x", p, h, k.Partition, k.Hash)
	}
	return k, nil
}

func (n *Node) checkHintFor(id string) error {
	if id != "" && !nodeIDPattern.MatchString(id) {
		return invalid("bad hint target %q", id)
	}
	return nil
}

func (n *Node) serveMerge(ctx context.Context, body []byte) (any, error) {
	var req mergeRequest
	if err := msgpack.Unmarshal(body, &req); err != nil {
		return nil, invalid("merge: %v", err)
	}
	k, err := n.checkKey(req.P, req.H, req.K)
	if err != nil {
		return nil, err
	}
	if err := n.checkHintFor(req.HintFor); err != nil {
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
	return &mergeResponse{Durable: req.Durable || n.cfg.Sync}, nil
}

func (n *Node) serveRead(body []byte) (any, error) {
	var req readRequest
	if err := msgpack.Unmarshal(body, &req); err != nil {
		return nil, invalid("read: %v", err)
	}
	k, err := n.checkKey(req.P, req.H, req.K)
	if err != nil {
		return nil, err
	}
	if err := n.checkHintFor(req.HintFor); err != nil {
		return nil, err
	}
	s, found, err := n.rep.ReadLocal(req.HintFor, k)
	if err != nil {
		return nil, err
	}
	if !found {
		return &readResponse{}, nil
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &readResponse{Found: true, Set: b}, nil
}

func (n *Node) serveForward(ctx context.Context, body []byte) (any, error) {
	var fr forwardRequest
	if err := msgpack.Unmarshal(body, &fr); err != nil {
		return nil, invalid("forward: %v", err)
	}
	vctx, err := vclock.DecodeContext(fr.Context)
	if err != nil {
		return nil, invalid("forward: context: %v", err)
	}
	if len(fr.Key) == 0 || len(fr.Key) > n.cfg.MaxKeySize || len(fr.Data) > n.cfg.MaxValueSize {
		return nil, invalid("forward: key or value size out of range")
	}
	p := quorum.Params{N: fr.N, R: fr.R, W: fr.W, PR: fr.PR, PW: fr.PW, DW: fr.DW}
	if fr.TimeoutMS > 0 {
		p.Timeout = time.Duration(fr.TimeoutMS) * time.Millisecond
	}
	res, err := n.coord.Put(ctx, quorum.PutRequest{
		Key:     fr.Key,
		Value:   vclock.Value{Data: fr.Data, ContentType: fr.ContentType, Deleted: fr.Deleted},
		Context: vctx, Params: p, Hops: fr.Hops,
	})
	if err != nil {
		return &forwardResponse{Err: toWireError(err)}, nil
	}
	n.metrics.observeWriteResult(res)
	set, err := res.Set.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &forwardResponse{Set: set, Dot: vclock.EncodeDot(res.Dot), Primary: res.Acks.Primary,
		Fallback: res.Acks.Fallback, Durable: res.Acks.Durable, Coordinator: string(res.Coordinator)}, nil
}

func toWireError(err error) *wireError {
	var qe *quorum.QuorumError
	var pe *quorum.ParamError
	switch {
	case errors.As(err, &qe):
		return &wireError{Kind: 1, Msg: err.Error(), Op: qe.Op, Required: qe.Required, Acks: qe.Acks,
			ReqPrim: qe.RequiredPrimary, Prim: qe.PrimaryAcks, ReqDur: qe.RequiredDurable, Durable: qe.DurableAcks,
			Fallback: qe.FallbackAcks, Targets: qe.Targets}
	case errors.As(err, &pe):
		return &wireError{Kind: 2, Msg: pe.Msg, Param: pe.Param}
	}
	return &wireError{Kind: 3, Msg: err.Error()}
}
