package client

import (
	"net/url"
	"strconv"
	"time"
)

// RequestOption sets one parameter of one request. Options that do not
// apply to a call (R on a Put, Context on a Get) make it fail with
// ErrBadRequest before anything is sent, so a mistake is not silently
// ignored.
type RequestOption func(*request)

// Which calls an option applies to.
type opMask uint8

const (
	opGet opMask = 1 << iota
	opPut
	opDelete
	opRing
	opInfo // members, status, health
	opList // Keys, Scan

	opKV  = opGet | opPut | opDelete
	opAny = opKV | opRing | opInfo | opList
)

func (m opMask) String() string {
	switch m {
	case opGet:
		return "get"
	case opPut:
		return "put"
	case opDelete:
		return "delete"
	case opRing:
		return "ring"
	case opList:
		return "keys"
	}
	return "this call"
}

// request collects the options of one call.
type request struct {
	query       url.Values
	timeout     time.Duration
	context     *string
	contentType string
	returnBody  bool
	createOnly  bool
	node        int  // with pinned: index into the client's addresses
	pinned      bool // Node was given
	used        []usedOption
}

type usedOption struct {
	name string
	ops  opMask
}

func (r *request) use(name string, ops opMask) { r.used = append(r.used, usedOption{name, ops}) }

func (r *request) setInt(name string, v int, ops opMask) {
	r.use(name, ops)
	r.query.Set(name, strconv.Itoa(v))
}

// N sets how many replicas take part in the request (the key's first N
// preference-list members). Default: the node's configured N.
func N(n int) RequestOption { return func(r *request) { r.setInt("n", n, opKV|opRing) } }

// R sets how many replicas must answer a read: a Get, or the read that a
// Put with Overwrite and a Delete without Context make first. Default: the
// node's R.
func R(v int) RequestOption { return func(r *request) { r.setInt("r", v, opKV) } }

// W sets how many replicas must acknowledge a write or delete. Default: the
// node's W.
func W(v int) RequestOption { return func(r *request) { r.setInt("w", v, opPut|opDelete) } }

// PR sets how many of a read's R answers must come from primaries rather
// than fallbacks (for the reads R applies to). Default 0 (sloppy).
func PR(v int) RequestOption { return func(r *request) { r.setInt("pr", v, opKV) } }

// PW sets how many of a write's W acks must come from primaries. Default 0.
func PW(v int) RequestOption { return func(r *request) { r.setInt("pw", v, opPut|opDelete) } }

// DW sets how many replicas must have made a write durable (fsync) before
// it is acknowledged. Default 0: the nodes' own durability setting decides.
func DW(v int) RequestOption { return func(r *request) { r.setInt("dw", v, opPut|opDelete) } }

// Timeout bounds the request at the coordinating node, which answers with a
// quorum error (and the counts) when it expires. The client waits a little
// longer than d for that answer. Default: the node's timeout, and the
// Client's WithRequestTimeout on the client side.
func Timeout(d time.Duration) RequestOption {
	return func(r *request) {
		r.use("timeout", opAny)
		r.timeout = d
		switch {
		case d <= 0:
		case d%time.Millisecond == 0:
			r.query.Set("timeout", strconv.FormatInt(d.Milliseconds(), 10)+"ms")
		default:
			r.query.Set("timeout", strconv.FormatInt(max(d.Microseconds(), 1), 10)+"us")
		}
	}
}

// Context sends the causal context of an earlier read or write with a Put or
// Delete: the write then supersedes exactly the siblings that context
// covers. Without it a write is concurrent with everything stored and
// becomes a sibling. "" sends no context.
func Context(ctx string) RequestOption {
	return func(r *request) {
		r.use("context", opPut|opDelete)
		if ctx != "" {
			r.context = &ctx
		}
	}
}

// Overwrite makes a Put supersede what a read at R sees (and what the
// coordinating replica holds when it writes), instead of becoming a
// sibling of it: "set this value". With R+W>N it replaces every
// acknowledged earlier write; writes racing it still become siblings. It
// costs a quorum read before the write. It is what RESP SET does.
func Overwrite() RequestOption {
	return func(r *request) {
		r.use("overwrite", opPut)
		r.query.Set("overwrite", "true")
	}
}

// CreateOnly makes a Put write only if a read at R finds no live value
// (If-None-Match: *); otherwise it fails with ErrExists. In a leaderless
// store this is not a lock: two creates racing through different nodes can
// both succeed and leave siblings (see the README).
func CreateOnly() RequestOption {
	return func(r *request) {
		r.use("create only", opPut)
		r.createOnly = true
	}
}

// ContentType sets the value's MIME type, returned with it on reads.
// Default: none (read back as application/octet-stream).
func ContentType(ct string) RequestOption {
	return func(r *request) {
		r.use("content type", opPut)
		r.contentType = ct
	}
}

// ReturnBody makes a Put answer with the key's sibling set after the write
// (WriteResult.Object), saving a read.
func ReturnBody() RequestOption {
	return func(r *request) {
		r.use("returnbody", opPut)
		r.returnBody = true
		r.query.Set("returnbody", "true")
	}
}

// Local makes a Get return the answering node's own copy without a quorum
// (for operators and tests). Combine it with Node to choose the node.
func Local() RequestOption {
	return func(r *request) {
		r.use("local", opGet)
		r.query.Set("local", "true")
	}
}

// Node sends the request to the i-th address given to New (0-based) instead
// of the next one in round robin, and disables failing over to another
// address.
func Node(i int) RequestOption {
	return func(r *request) {
		r.use("node", opAny)
		r.node, r.pinned = i, true
	}
}

// Param sets a raw query parameter, sent as given and checked only by the
// node: for parameters this package has no option for, and for counts given
// as words ("one", "quorum", "all").
func Param(name, value string) RequestOption {
	return func(r *request) { r.query.Set(name, value) }
}

// readParams reports R or PR given: a write then reads first.
func (r *request) readParams() bool { return r.query.Has("r") || r.query.Has("pr") }

func newRequest(op opMask, opts []RequestOption) (*request, error) {
	r := &request{query: url.Values{}}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	for _, u := range r.used {
		if u.ops&op == 0 {
			return nil, badRequest("option %s does not apply to %s", u.name, op)
		}
	}
	return r, nil
}
