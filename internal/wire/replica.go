package wire

import (
	"bytes"
	"fmt"
	"math"
)

// Messages of the replica path (methods 1-3). They keep the msgpack arrays
// the msgpack library once produced for them (as_array structs: uint32 and
// uint64 fields at full width, int fields in their shortest form, int64
// and uint8 at full width, nil byte slices as nil), so nodes of every
// version understand each other; the golden and library tests pin that.
// Decoders accept any integer width and str for bin, as the library does.

// appendAddr appends the address of a key at a replica: partition and
// hash at full width, key, and the hint target ("" for the record).
func appendAddr(b []byte, p uint32, h uint64, key []byte, hintFor string) []byte {
	b = AppendUint32Fixed(b, p)
	b = AppendUint64Fixed(b, h)
	b = AppendBin(b, key)
	return AppendStr(b, hintFor)
}

// readAddr reads what appendAddr wrote; the key is copied, as the replica
// holds on to it.
func readAddr(r *Reader) (p uint32, h uint64, key []byte, hintFor string) {
	p = uint32(r.Uint(math.MaxUint32))
	h = r.Uint(math.MaxUint64)
	key = bytes.Clone(r.Bytes(MaxKey))
	hintFor = string(r.Bytes(MaxNodeID))
	return p, h, key, hintFor
}

// MergeRequest asks a replica to merge Set into its copy of a key (its
// hint for HintFor when set).
//
//	[partition uint32, hash uint64, key bin, hintFor str, set bin, durable bool]
type MergeRequest struct {
	Partition uint32
	Hash      uint64
	Key       []byte
	HintFor   string
	Set       []byte
	Durable   bool
}

// Append appends m's encoding to b. It never fails.
func (m *MergeRequest) Append(b []byte) ([]byte, error) {
	b = appendAddr(AppendArrayLen(b, 6), m.Partition, m.Hash, m.Key, m.HintFor)
	b = AppendBin(b, m.Set)
	return AppendBool(b, m.Durable), nil
}

// Decode decodes a merge request. Set aliases b (valid while the
// transport's body is); Key is copied, as the replica holds on to it.
func (m *MergeRequest) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(6)
	m.Partition, m.Hash, m.Key, m.HintFor = readAddr(&r)
	m.Set = r.Bytes(MaxSet)
	m.Durable = r.Bool()
	return r.End()
}

// MergeResponse says whether the merge was fsynced.
//
//	[durable bool]
type MergeResponse struct {
	Durable bool
}

// Append appends m's encoding to b. It never fails.
func (m *MergeResponse) Append(b []byte) ([]byte, error) {
	return AppendBool(AppendArrayLen(b, 1), m.Durable), nil
}

// Decode decodes a merge response.
func (m *MergeResponse) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(1)
	m.Durable = r.Bool()
	return r.End()
}

// MergeCheckResponse answers a checked merge (MethodMergeCheck, whose
// request is a MergeRequest): whether the merge was fsynced, whether the
// replica's context before the merge was covered by the set's context,
// and when not, that context, encoded as a set without siblings
// (vclock.Set{Context: prior}).
//
//	[durable bool, clean bool, prior bin or nil]
type MergeCheckResponse struct {
	Durable bool
	Clean   bool
	Prior   []byte
}

// Append appends m's encoding to b. It never fails.
func (m *MergeCheckResponse) Append(b []byte) ([]byte, error) {
	return AppendBin(AppendBool(AppendBool(AppendArrayLen(b, 3), m.Durable), m.Clean), m.Prior), nil
}

// Decode decodes a checked merge's response; Prior aliases b.
func (m *MergeCheckResponse) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(3)
	m.Durable = r.Bool()
	m.Clean = r.Bool()
	m.Prior = r.Bytes(MaxSet)
	return r.End()
}

// ReadRequest asks a replica for its copy of a key (synced with its hint
// for HintFor when set).
//
//	[partition uint32, hash uint64, key bin, hintFor str]
type ReadRequest struct {
	Partition uint32
	Hash      uint64
	Key       []byte
	HintFor   string
}

// Append appends m's encoding to b. It never fails.
func (m *ReadRequest) Append(b []byte) ([]byte, error) {
	return appendAddr(AppendArrayLen(b, 4), m.Partition, m.Hash, m.Key, m.HintFor), nil
}

// Decode decodes a read request; Key is copied.
func (m *ReadRequest) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(4)
	m.Partition, m.Hash, m.Key, m.HintFor = readAddr(&r)
	return r.End()
}

// ReadResponse is a replica's copy: Set is its encoding when Found.
//
//	[found bool, set bin or nil]
type ReadResponse struct {
	Found bool
	Set   []byte
}

// Append appends m's encoding to b. It never fails.
func (m *ReadResponse) Append(b []byte) ([]byte, error) {
	return AppendBin(AppendBool(AppendArrayLen(b, 2), m.Found), m.Set), nil
}

// Decode decodes a read response; Set aliases b.
func (m *ReadResponse) Decode(b []byte) error {
	r := NewReader(b)
	r.Array(2)
	m.Found = r.Bool()
	m.Set = r.Bytes(MaxSet)
	return r.End()
}

// ForwardRequest asks a replica to coordinate a write (quorum.PutRequest)
// that reached a node that is not one.
//
//	[key bin, data bin, contentType str, deleted bool, context str,
//	 n, r, w, pr, pw, dw int, timeoutMS int64, hops int, supersedeLocal bool]
type ForwardRequest struct {
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
	// Expires is the value's deadline in Unix nanoseconds, stamped by the
	// node that took the request. Only set, it makes a fifteenth element,
	// sent under MethodForwardExpiring; without it the encoding is the
	// 14-element one of MethodForward, byte for byte.
	Expires int64
	// PZ is quorum.Params.PZ. Only set, it makes a sixteenth element
	// (after Expires, then possibly 0), sent under MethodForwardZones.
	PZ int
}

const (
	forwardFields        = 14
	forwardFieldsExpires = 15
	forwardFieldsZones   = 16
)

// fields is the length of m's array: forwardFields, and one more for each
// trailing field up to the last one set.
func (m *ForwardRequest) fields() int {
	switch {
	case m.PZ != 0:
		return forwardFieldsZones
	case m.Expires != 0:
		return forwardFieldsExpires
	}
	return forwardFields
}

// Method is the RPC method m goes under: MethodForwardZones when it asks
// for zones, else MethodForwardExpiring when it carries a deadline.
func (m *ForwardRequest) Method() uint8 {
	switch m.fields() {
	case forwardFieldsZones:
		return MethodForwardZones
	case forwardFieldsExpires:
		return MethodForwardExpiring
	}
	return MethodForward
}

// Append appends m's encoding to b. It never fails.
func (m *ForwardRequest) Append(b []byte) ([]byte, error) {
	fields := m.fields()
	b = AppendArrayLen(b, fields)
	b = AppendBin(b, m.Key)
	b = AppendBin(b, m.Data)
	b = AppendStr(b, m.ContentType)
	b = AppendBool(b, m.Deleted)
	b = AppendStr(b, m.Context)
	for _, v := range [...]int{m.N, m.R, m.W, m.PR, m.PW, m.DW} {
		b = AppendInt(b, int64(v))
	}
	b = AppendInt64Fixed(b, m.TimeoutMS)
	b = AppendInt(b, int64(m.Hops))
	b = AppendBool(b, m.SupersedeLocal)
	if fields >= forwardFieldsExpires {
		b = AppendInt(b, m.Expires)
	}
	if fields == forwardFieldsZones {
		b = AppendInt(b, int64(m.PZ))
	}
	return b, nil
}

// Decode decodes a forward request. Key and Data are copied: the write
// they start outlives the transport's body.
func (m *ForwardRequest) Decode(b []byte) error {
	r := NewReader(b)
	fields := r.ArrayIn(forwardFields, forwardFieldsZones)
	m.Key = bytes.Clone(r.Bytes(MaxKey))
	m.Data = bytes.Clone(r.Bytes(MaxValue))
	m.ContentType = string(r.Bytes(MaxValue))
	m.Deleted = r.Bool()
	m.Context = string(r.Bytes(MaxValue))
	for _, p := range [...]*int{&m.N, &m.R, &m.W, &m.PR, &m.PW, &m.DW} {
		*p = int(r.Int())
	}
	m.TimeoutMS = r.Int()
	m.Hops = int(r.Int())
	m.SupersedeLocal = r.Bool()
	m.Expires, m.PZ = 0, 0
	switch fields {
	case forwardFieldsExpires:
		m.Expires = r.SetInt()
	case forwardFieldsZones:
		m.Expires = r.Int()
		if m.PZ = int(r.Int()); m.PZ <= 0 && r.Err() == nil {
			r.Fail(fmt.Errorf("%w: forward request with pz %d", ErrMalformed, m.PZ))
		}
	}
	return r.End()
}

// Error carries a coordinator's failure back through a Forward, with the
// counts of a quorum failure.
//
//	[kind uint8, msg str, param str, op str, required, acks, reqPrim, prim,
//	 reqDur, durable, fallback, targets int]
type Error struct {
	Kind            ErrorKind
	Msg             string
	Param           string
	Op              string
	Required, Acks  int
	ReqPrim, Prim   int
	ReqDur, Durable int
	Fallback        int
	Targets         int
}

const errorFields = 12

func (e *Error) append(b []byte) []byte {
	b = AppendArrayLen(b, errorFields)
	b = AppendUint8Fixed(b, uint8(e.Kind))
	b = AppendStr(b, e.Msg)
	b = AppendStr(b, e.Param)
	b = AppendStr(b, e.Op)
	for _, v := range [...]int{e.Required, e.Acks, e.ReqPrim, e.Prim, e.ReqDur, e.Durable, e.Fallback, e.Targets} {
		b = AppendInt(b, int64(v))
	}
	return b
}

func (e *Error) decode(r *Reader) {
	r.Array(errorFields)
	e.Kind = ErrorKind(r.Uint(math.MaxUint8))
	e.Msg = string(r.Bytes(MaxValue))
	e.Param = string(r.Bytes(MaxValue))
	e.Op = string(r.Bytes(MaxValue))
	for _, p := range [...]*int{&e.Required, &e.Acks, &e.ReqPrim, &e.Prim, &e.ReqDur, &e.Durable, &e.Fallback, &e.Targets} {
		*p = int(r.Int())
	}
}

// ForwardResponse is the outcome of a forwarded write: Err, or the
// coordinator's set, the write's dot and the acknowledgements.
//
//	[err Error or nil, set bin, dot str, primary, fallback, durable int,
//	 coordinator str]
type ForwardResponse struct {
	Err         *Error
	Set         []byte
	Dot         string // vclock.EncodeDot
	Primary     int
	Fallback    int
	Durable     int
	Coordinator string
	// Zones is the distinct zones the write's acks came from
	// (quorum.Acks.Zones). Only set, it makes an eighth element: the
	// answer to MethodForwardZones sets it, so that a release that
	// predates it never receives one.
	Zones int
}

const (
	forwardResponseFields      = 7
	forwardResponseFieldsZones = 8
)

// Append appends m's encoding to b. It never fails.
func (m *ForwardResponse) Append(b []byte) ([]byte, error) {
	if m.Zones != 0 {
		b = AppendArrayLen(b, forwardResponseFieldsZones)
	} else {
		b = AppendArrayLen(b, forwardResponseFields)
	}
	if m.Err == nil {
		b = AppendNil(b)
	} else {
		b = m.Err.append(b)
	}
	b = AppendBin(b, m.Set)
	b = AppendStr(b, m.Dot)
	b = AppendInt(b, int64(m.Primary))
	b = AppendInt(b, int64(m.Fallback))
	b = AppendInt(b, int64(m.Durable))
	b = AppendStr(b, m.Coordinator)
	if m.Zones != 0 {
		b = AppendInt(b, int64(m.Zones))
	}
	return b, nil
}

// Decode decodes a forward response; Set aliases b.
func (m *ForwardResponse) Decode(b []byte) error {
	r := NewReader(b)
	fields := r.ArrayIn(forwardResponseFields, forwardResponseFieldsZones)
	m.Err = nil
	if !r.IsNil() {
		m.Err = &Error{}
		m.Err.decode(&r)
	}
	m.Set = r.Bytes(MaxSet)
	m.Dot = string(r.Bytes(MaxValue))
	m.Primary = int(r.Int())
	m.Fallback = int(r.Int())
	m.Durable = int(r.Int())
	m.Coordinator = string(r.Bytes(MaxValue))
	m.Zones = 0
	if fields == forwardResponseFieldsZones {
		m.Zones = int(r.SetInt())
	}
	return r.End()
}
