package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
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
	methodTombstoneAck transport.Method = 7 // tombAckRequest -> tombAckResponse (ae_wire.go)
	methodMergeMany    transport.Method = 8 // mergeManyRequest -> mergeManyResponse (anti-entropy)
	methodPeerStatus   transport.Method = 9 // peerStatusRequest -> peerStatusResponse (ae_stale.go)
)

// Remote error codes carried in transport.RemoteError.Code.
const (
	codeInternal uint16 = 1
	codeInvalid  uint16 = 2
	codeClosed   uint16 = 3
	// codeExcluded refuses a peer this node reaped tombstones without
	// (ae_stale.go): the peer must drop its data before it is heard again.
	codeExcluded uint16 = 4
	// codeQuarantined: this node's records may be stale and are closed.
	codeQuarantined uint16 = 5
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
	// SupersedeLocal is quorum.PutRequest.SupersedeLocal (appended field:
	// the array has 14 elements).
	SupersedeLocal bool
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
	if err := r.n.ae.checkPeer(string(id)); err != nil {
		return err // its answers may carry values deleted and reaped meanwhile
	}
	addr, ok := r.n.rpcAddr(string(id))
	if !ok {
		return fmt.Errorf("%s: %w", id, errPeerUnknown)
	}
	var body []byte
	if a, ok := req.(wireAppender); ok {
		bp := wireBufs.Get().(*[]byte)
		defer func() { *bp = (*bp)[:0]; wireBufs.Put(bp) }()
		body = a.appendWire((*bp)[:0])
		*bp = body
	} else {
		var err error
		if body, err = msgpack.Marshal(req); err != nil {
			return err
		}
	}
	out, err := r.n.tr.Call(ctx, addr, m, body)
	if err != nil {
		r.n.ae.noteRemoteError(string(id), err)
		return err
	}
	if d, ok := resp.(wireDecoder); ok {
		err = d.decodeWire(out)
	} else {
		err = msgpack.Unmarshal(out, resp)
	}
	if err != nil {
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
	var resp mergeResponse
	err := r.call(ctx, t.Node, methodMerge, &mergeRequest{P: k.Partition, H: k.Hash, K: k.Key, HintFor: string(t.HintFor), Set: set, Durable: durable}, &resp)
	return resp.Durable, err
}

func (r replicas) Read(ctx context.Context, t ring.Target, k ring.Key) (vclock.Set, error) {
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
		Hops: req.Hops, SupersedeLocal: req.SupersedeLocal,
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
	if m != methodPeerStatus && n.ae.refuses(from) {
		return nil, errRefused()
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
	case methodHashes, methodKeys, methodReadMany, methodTombstoneAck, methodMergeMany, methodPeerStatus:
		return n.serveAntiEntropy(ctx, from, m, body)
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
	switch r := resp.(type) {
	case wireBytes:
		return r, nil
	case wireAppender:
		return r.appendWire(nil), nil
	}
	return msgpack.Marshal(resp)
}

// wireBytes is a reply a handler encoded already.
type wireBytes []byte

func invalid(format string, args ...any) error {
	return &transport.RemoteError{Code: codeInvalid, Msg: fmt.Sprintf(format, args...)}
}

// checkKey verifies that a peer's key address is consistent with our ring
// settings, so a bad frame cannot file a key under the wrong partition.
func (n *Node) checkKey(p uint32, h uint64, key []byte) (ring.Key, error) {
	if len(key) == 0 || len(key) > n.cfg.MaxKeySize {
		return ring.Key{}, invalid("key of %d bytes", len(key))
	}
	k := n.Ring().KeyOf(key)
	if k.Hash != h || k.Partition != p {
		return ring.Key{}, invalid("key address mismatch: partition %d hash %x, want %d %x", p, h, k.Partition, k.Hash)
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
	if err := req.decodeWire(body); err != nil {
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
	if err := req.decodeWire(body); err != nil {
		return nil, invalid("read: %v", err)
	}
	k, err := n.checkKey(req.P, req.H, req.K)
	if err != nil {
		return nil, err
	}
	if err := n.checkHintFor(req.HintFor); err != nil {
		return nil, err
	}
	if req.HintFor == "" {
		// The stored set goes out as stored: the coordinator decodes (and
		// so checks) it anyway, so decoding and re-encoding it here would
		// be the same work twice. The reply is encoded straight from the
		// store's slice, which is valid only inside viewRaw.
		var reply wireBytes
		found, err := n.rep.viewRaw(k, func(set []byte) error {
			reply = (&readResponse{Found: true, Set: set}).appendWire(nil)
			return nil
		})
		if err != nil || !found {
			return &readResponse{}, err
		}
		return reply, nil
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
		Context: vctx, Params: p, Hops: fr.Hops, SupersedeLocal: fr.SupersedeLocal,
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

// The hot messages (merge and read, both ways) have hand-written codecs:
// msgpack's reflection cost about 6% of a node's CPU under a write load.
// They produce and accept exactly the msgpack arrays of the struct tags
// above (vmihailenco/msgpack's as_array encoding), so the wire format is
// unchanged, and they accept any msgpack integer width and str for bin, as
// that library's decoder does. Decoded byte fields alias the input.

// wireAppender appends its msgpack encoding to b.
type wireAppender interface{ appendWire(b []byte) []byte }

// wireDecoder decodes its msgpack encoding; byte fields alias b.
type wireDecoder interface{ decodeWire(b []byte) error }

var (
	_ wireAppender = (*mergeRequest)(nil)
	_ wireDecoder  = (*mergeRequest)(nil)
	_ wireAppender = (*mergeResponse)(nil)
	_ wireDecoder  = (*mergeResponse)(nil)
	_ wireAppender = (*readRequest)(nil)
	_ wireDecoder  = (*readRequest)(nil)
	_ wireAppender = (*readResponse)(nil)
	_ wireDecoder  = (*readResponse)(nil)
)

// wireBufs recycles request bodies: Transport.Call does not retain them.
var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (m *mergeRequest) appendWire(b []byte) []byte {
	b = wireArray(b, 6)
	b = wireUint32(b, m.P)
	b = wireUint64(b, m.H)
	b = wireBin(b, m.K)
	b = wireStr(b, m.HintFor)
	b = wireBin(b, m.Set)
	return wireBool(b, m.Durable)
}

// decodeWire decodes a merge request. Set aliases b (valid while the
// transport's body is); K is copied, as it becomes the key the replica
// layers hold on to.
func (m *mergeRequest) decodeWire(b []byte) error {
	r := wireReader{b: b}
	r.array(6)
	m.P = uint32(r.uint(1<<32 - 1))
	m.H = r.uint(1<<64 - 1)
	m.K = append([]byte(nil), r.bytes()...)
	m.HintFor = string(r.bytes())
	m.Set = r.bytes()
	m.Durable = r.bool()
	return r.end()
}

func (m *mergeResponse) appendWire(b []byte) []byte {
	return wireBool(wireArray(b, 1), m.Durable)
}

func (m *mergeResponse) decodeWire(b []byte) error {
	r := wireReader{b: b}
	r.array(1)
	m.Durable = r.bool()
	return r.end()
}

func (m *readRequest) appendWire(b []byte) []byte {
	b = wireArray(b, 4)
	b = wireUint32(b, m.P)
	b = wireUint64(b, m.H)
	b = wireBin(b, m.K)
	return wireStr(b, m.HintFor)
}

func (m *readRequest) decodeWire(b []byte) error {
	r := wireReader{b: b}
	r.array(4)
	m.P = uint32(r.uint(1<<32 - 1))
	m.H = r.uint(1<<64 - 1)
	m.K = append([]byte(nil), r.bytes()...)
	m.HintFor = string(r.bytes())
	return r.end()
}

func (m *readResponse) appendWire(b []byte) []byte {
	b = wireArray(b, 2)
	b = wireBool(b, m.Found)
	return wireBin(b, m.Set)
}

func (m *readResponse) decodeWire(b []byte) error {
	r := wireReader{b: b}
	r.array(2)
	m.Found = r.bool()
	m.Set = r.bytes()
	return r.end()
}

func wireArray(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// wireUint32 and wireUint64 use the fixed widths the msgpack library
// gives uint32 and uint64 fields.
func wireUint32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0xce), v)
}

func wireUint64(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// wireBin appends p as msgpack bin; nil as nil, as the msgpack library does.
func wireBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case p == nil:
		return append(b, 0xc0)
	case n <= 0xff:
		b = append(b, 0xc4, byte(n))
	case n <= 0xffff:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

func wireStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func wireBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// errWire is a malformed node-to-node message.
var errWire = errors.New("malformed message")

// wireReader decodes msgpack from untrusted bytes. The first error sticks:
// later reads return zero values, and end reports it, so decoders read
// field after field and check once.
type wireReader struct {
	b   []byte
	off int
	err error
}

func (r *wireReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", errWire, fmt.Sprintf(format, args...), r.off)
	}
}

// take returns the next n bytes, which must be there.
func (r *wireReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("truncated")
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

func (r *wireReader) code() byte {
	p := r.take(1)
	if p == nil {
		return 0xc1 // never used by msgpack: fails every switch below
	}
	return p[0]
}

func (r *wireReader) be(n int) uint64 {
	var v uint64
	for _, c := range r.take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

// array reads an array header of exactly n elements, as the msgpack
// library's as_array decoding requires.
func (r *wireReader) array(n int) {
	c := r.code()
	var got uint64
	switch {
	case c >= 0x90 && c <= 0x9f:
		got = uint64(c & 0x0f)
	case c == 0xdc:
		got = r.be(2)
	case c == 0xdd:
		got = r.be(4)
	default:
		r.fail("want an array, got 0x%02x", c)
		return
	}
	if r.err == nil && got != uint64(n) {
		r.fail("array of %d elements, want %d", got, n)
	}
}

// uint reads a non-negative integer of any msgpack width, at most max.
func (r *wireReader) uint(max uint64) uint64 {
	c := r.code()
	var v uint64
	switch {
	case c <= 0x7f:
		v = uint64(c)
	case c >= 0xcc && c <= 0xcf:
		v = r.be(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3:
		n := 1 << (c - 0xd0)
		v = r.be(n)
		if v>>(8*n-1)&1 == 1 {
			r.fail("negative integer")
			return 0
		}
	default:
		r.fail("want an integer, got 0x%02x", c)
		return 0
	}
	if v > max {
		r.fail("integer %d above %d", v, max)
		return 0
	}
	return v
}

// bytes reads a bin or str (nil as nil) and returns it, aliasing the input.
func (r *wireReader) bytes() []byte {
	c := r.code()
	var n uint64
	switch {
	case c == 0xc0:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n = r.be(1)
	case c == 0xc5 || c == 0xda:
		n = r.be(2)
	case c == 0xc6 || c == 0xdb:
		n = r.be(4)
	default:
		r.fail("want bytes, got 0x%02x", c)
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	return r.take(int(n))
}

func (r *wireReader) bool() bool {
	switch c := r.code(); c {
	case 0xc2:
		return false
	case 0xc3:
		return true
	default:
		r.fail("want a bool, got 0x%02x", c)
		return false
	}
}

// end returns the first error, or one for trailing bytes.
func (r *wireReader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}
