package wire

// This file is the node-to-node protocol in one place: every RPC method
// with its number, request and response types and limits, the error codes
// a refusal carries, and the caps every decoder checks. Each message is one
// msgpack value in one transport frame (transport.Config.MaxFrame, 16 MiB
// by default, bounds it first).
//
//	#  method       request → response                        limits
//	1  Merge        MergeRequest → MergeResponse                key MaxKey, set MaxSet
//	2  Read         ReadRequest → ReadResponse                  key MaxKey, set MaxSet
//	3  Forward      ForwardRequest → ForwardResponse            key MaxKey, value MaxValue, set MaxSet
//	4  Hashes       antientropy.HashesRequest → HashesResponse  MaxTreeNodes nodes or hashes
//	5  Keys         antientropy.KeysRequest → KeysResponse      MaxTreeNodes buckets, MaxTreeKeys keys of MaxTreeKeyLen
//	6  ReadMany     ReadManyRequest → ReadManyResponse          MaxBatch keys, sets MaxSet each, BatchBytes answered
//	7  TombstoneAck TombAckRequest → TombAckResponse            MaxBatch keys
//	8  MergeMany    MergeManyRequest → MergeManyResponse        MaxBatch keys, BatchBytes of sets sent
//	9  PeerStatus   PeerStatusRequest → PeerStatusResponse      -
//	10 List         retired: ring-order pages of the first listing release, answered as unknown
//	11 ForwardExpiring ForwardRequest (15 fields) → ForwardResponse  as Forward
//	12 ListOrdered  ListRequest → ListResponse                  prefix, keys MaxKey, MaxBatch entries, BatchBytes answered
//	13 ForwardZones ForwardRequest (16 fields) → ForwardResponse (8 fields)  as Forward
//	14 ReadContext  ReadRequest → ReadResponse                  as Read; the set may come without its siblings
//	15 MergeCheck   MergeRequest → MergeCheckResponse           as Merge; prior context MaxSet
//
// Methods 1-3 are the replica and coordinator path (package node serves
// them with package replica; 11 is Forward of a write with a deadline,
// whose request has a fifteenth field: a release that predates deadlines
// answers it as an unknown method; 13 is Forward of a write that asks for
// zones, pz, whose request has a sixteenth field and whose answer an
// eighth, the zones reached: a release that predates pz answers it as an
// unknown method); 4-9 are anti-entropy (package antientropy
// serves them), 9 the only one a quarantined or excluded node answers.

// RPC methods (values of transport.Method). ONLY APPEND: the numbers are on
// the wire, and a node answers a number it does not know with CodeInvalid.
const (
	MethodMerge        = 1
	MethodRead         = 2
	MethodForward      = 3
	MethodHashes       = 4
	MethodKeys         = 5
	MethodReadMany     = 6
	MethodTombstoneAck = 7
	MethodMergeMany    = 8
	MethodPeerStatus   = 9
	// MethodList is retired (ring-order listing pages); its number stays
	// taken.
	MethodList = 10
	// MethodForwardExpiring is MethodForward for a write whose value has
	// a deadline (ForwardRequest.Expires set).
	MethodForwardExpiring = 11
	// MethodListOrdered asks a replica for a listing page in byte order
	// of keys (ListRequest).
	MethodListOrdered = 12
	// MethodForwardZones is MethodForward for a write that asks for
	// zones (ForwardRequest.PZ set); its answer carries the zones reached
	// (ForwardResponse.Zones).
	MethodForwardZones = 13
	// MethodReadContext is MethodRead for a caller that needs only the
	// key's context (an overwrite's read): the answer's set may leave
	// the siblings out (vclock.AppendContextOnly), its context is whole.
	// A release that predates it answers it as an unknown method; the
	// caller then reads with MethodRead.
	MethodReadContext = 14
	// MethodMergeCheck is MethodMerge for an overwrite's checked write:
	// the replica merges as for MethodMerge and answers whether its
	// context before the merge was covered by the set's
	// (MergeCheckResponse). A release that predates it answers it as an
	// unknown method, without merging; the caller then merges with
	// MethodMerge.
	MethodMergeCheck = 15
)

// Error codes of transport.RemoteError, the refusals a handler answers
// with. ONLY APPEND.
const (
	// CodeInternal: the handler failed (a store error, say); the caller
	// may try again or elsewhere.
	CodeInternal = 1
	// CodeInvalid: the request is malformed or inconsistent with the
	// serving node's ring (a key filed under another partition). Sending
	// it again cannot succeed; hinted handoff skips such a hint.
	CodeInvalid = 2
	// CodeClosed: the serving node is shutting down.
	CodeClosed = 3
	// CodeExcluded: the serving node reaped tombstones without the caller
	// (package antientropy): the caller must drop its data before it is
	// heard again.
	CodeExcluded = 4
	// CodeQuarantined: the serving node's records may be stale and are
	// closed until its peers answered (package antientropy).
	CodeQuarantined = 5
)

// ErrorKind says what a coordinator's failure carried back through a
// Forward was. ONLY APPEND.
type ErrorKind uint8

// Error kinds of ForwardResponse.Err.
const (
	// KindQuorum is a quorum.QuorumError; the counts are in the Error.
	KindQuorum ErrorKind = 1
	// KindParam is a quorum.ParamError: Param names the bad parameter.
	KindParam ErrorKind = 2
	// KindOther is any other failure; Msg says what.
	KindOther ErrorKind = 3
	// KindSiblingCap is a client write refused past a key's sibling caps
	// (siblings.CapError, HTTP 413): Required is the count cap, Acks the
	// siblings the key would hold, ReqPrim the byte cap and Prim the
	// bytes. A node that predates it reads it as KindOther.
	KindSiblingCap ErrorKind = 4
)

// Caps that decoders check before they size anything by a claimed count or
// length. Encoders refuse to exceed the batch caps.
const (
	// MaxKey is the longest key a message may carry (the node's own
	// MaxKeySize, at most MaxTreeKeyLen, is checked by the handler).
	MaxKey = 64 << 10
	// MaxSet is the longest set encoding a message may carry: a record's
	// set holds at most replica.MaxSetBytes of data, plus its sibling and
	// context overhead (a test in package replica checks the margin).
	MaxSet = 13 << 20
	// MaxValue is the longest value a Forward may carry (the upper bound of
	// node.Config.MaxValueSize, which the handler checks).
	MaxValue = 64 << 20
	// MaxNodeID is the longest node id (a hint target) in bytes.
	MaxNodeID = 255
	// MaxBatch caps the keys of one ReadMany, MergeMany or TombstoneAck.
	MaxBatch = 1024
	// BatchBytes is the budget of set bytes in one ReadMany answer or
	// MergeMany request: a message stays well inside a transport frame
	// unless a single set is larger, which then goes alone.
	BatchBytes = 4 << 20
	// MaxTreeNodes caps the nodes of a HashesRequest, the hashes of a
	// HashesResponse and the buckets of a KeysRequest: a full response is
	// at most ~147 KiB.
	MaxTreeNodes = 1 << 14
	// MaxTreeKeys caps the keys of a KeysResponse: at most ~8.6 MiB with
	// keys of MaxTreeKeyLen bytes, ~330 KiB with 16-byte keys.
	MaxTreeKeys = 1 << 13
	// MaxTreeKeyLen is the longest key anti-entropy can list, and so the
	// largest key a node may accept (node.Config.MaxKeySize).
	MaxTreeKeyLen = 1024
)
