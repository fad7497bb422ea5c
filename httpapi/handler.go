// Package httpapi is the HTTP front of a quorumkv node, the server side of
// the contract in package api: /kv/{key} reads, writes and deletes over the
// coordinator (through a Backend that package node implements), and the
// cluster views /cluster/members, /cluster/ring and /status. The node adds
// the routes that are about its own life (health, readiness, metrics,
// admin) with HandleFunc, and owns the listener and the http.Server.
package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/multikey"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/vclock"
)

// Backend is what the client fronts (this one and package resp) need of
// the node for quorum reads and writes; node implements it with one
// unexported adapter for both.
type Backend interface {
	// Read runs a quorum read of key with p.
	Read(ctx context.Context, key []byte, p quorum.Params) (*quorum.ReadResult, error)
	// Write runs a quorum write of req: with exactly req.Context, or with
	// overwrite, over what a read at p's R sees (a delete of a key the
	// read found no live value of then writes nothing: nil result, nil
	// error). warnings are sentences about the result (siblings).
	Write(ctx context.Context, req quorum.PutRequest, overwrite bool) (res *quorum.WriteResult, warnings []string, err error)
	// Fit gives p that names no N the ring's size when the ring is
	// smaller than the default N, with a warning that says so.
	Fit(p quorum.Params) (fitted quorum.Params, warning string, err error)
	// DefaultN is the N a request that gives none runs with.
	DefaultN() int
}

// Cluster is the node's own view, which *node.Node provides.
type Cluster interface {
	Members() []api.Member
	Ring() *ring.Ring
	Status() api.Status
	// ReadLocal returns the node's own copy of key, no quorum (?local=true).
	ReadLocal(key []byte) (vclock.Set, bool, error)
}

// Contexts encodes and decodes the causal context tokens clients carry
// (the node signs them).
type Contexts interface {
	EncodeContext(v vclock.Vector) string
	DecodeContext(s string) (vclock.Vector, error)
}

// Config is what a Handler is built with; every field but Now is required.
type Config struct {
	NodeID string
	// MaxKeySize and MaxValueSize bound keys and values (400, 413).
	MaxKeySize, MaxValueSize int
	// Defaults are the node's quorum parameters.
	Defaults quorum.Params
	Contexts Contexts
	Log      *slog.Logger
	// Requests (by op and status) and Latency (by op) count the /kv
	// requests; QuorumFailures (by op) and SiblingsPerRead are the
	// node-wide metrics both fronts feed.
	Requests        *prometheus.CounterVec
	Latency         *prometheus.HistogramVec
	QuorumFailures  *prometheus.CounterVec
	SiblingsPerRead prometheus.Observer
	// BodyPace is the minimum rate a request body must arrive at
	// (connlimit); a slower one is answered 408 too_slow and its
	// connection closed. Zero: connlimit.BodyPace.
	BodyPace connlimit.Pace
	// Budget is charged for request bodies while they are read and
	// written (nil: unaccounted): a body that finds no room in time is
	// answered 503 busy with Retry-After.
	Budget *membudget.Budget
	// ReplyPace is the minimum rate a GET's reply must be read at; a
	// client that reads slower is cut, freeing the value it pinned.
	// Zero: connlimit.ReplyPace.
	ReplyPace connlimit.Pace
	// Now is the clock that local reads expire values by and
	// X-Quorumkv-Expires counts from; nil means time.Now.
	Now func() time.Time
}

// Handler serves the client API.
type Handler struct {
	b   Backend
	c   Cluster
	cfg Config
	mux *http.ServeMux
	kv  kvFunc
	// sizes remembers the large sets GETs read and PUTs left, so that the
	// next GET of such a key reserves its size before reading
	// (multikey.Sizes).
	sizes multikey.Sizes
}

// New returns the handler of b's keys and c's views.
//
// /kv/{key} is dispatched before http.ServeMux, which cleans paths and
// redirects /kv/. to /kv/ and /kv/a//b to /kv/a/b: a key is bytes, and
// ".", ".." or "a//b" are keys like any other. The key is the rest of the
// path after /kv/, percent-decoded.
func New(b Backend, c Cluster, cfg Config) *Handler {
	if cfg.BodyPace == (connlimit.Pace{}) {
		cfg.BodyPace = connlimit.BodyPace
	}
	if cfg.ReplyPace == (connlimit.Pace{}) {
		cfg.ReplyPace = connlimit.ReplyPace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{b: b, c: c, cfg: cfg, mux: http.NewServeMux()}
	get, put, del := h.instrument("get", h.handleGet), h.instrument("put", h.handlePut), h.instrument("delete", h.handleDelete)
	h.kv = func(w http.ResponseWriter, r *http.Request, key string) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			get(w, r, key)
		case http.MethodPut, http.MethodPost:
			put(w, r, key)
		case http.MethodDelete:
			del(w, r, key)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
			writeError(w, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, fmt.Sprintf("method %s not allowed on /kv/", r.Method))
		}
	}
	list := h.instrument("list", func(w http.ResponseWriter, r *http.Request, _ string) { h.handleList(w, r) })
	h.mux.HandleFunc("GET /kv", func(w http.ResponseWriter, r *http.Request) { list(w, r, "") })
	h.mux.HandleFunc("GET /cluster/members", h.handleMembers)
	h.mux.HandleFunc("GET /cluster/ring", h.handleRing)
	h.mux.HandleFunc("GET /status", h.handleStatus)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := h.allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
			return
		}
		writeError(w, http.StatusNotFound, api.CodeUnknownPath, fmt.Sprintf("no such endpoint: %s %s (see /kv/{key}, /kv?prefix=, /cluster/members, /cluster/ring, /status, /metrics, /healthz)", r.Method, r.URL.Path))
	})
	return h
}

// allowed lists the methods that have a route for r's path (as an Allow
// header), "" if none has: the catch-all route "/" matches every method,
// so without it a wrong method on a known path would get 404, not 405.
func (h *Handler) allowed(r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
		other := r.Clone(r.Context())
		other.Method = m
		if _, pattern := h.mux.Handler(other); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

// HandleFunc adds a route (an http.ServeMux pattern) before the handler
// serves.
func (h *Handler) HandleFunc(pattern string, f http.HandlerFunc) { h.mux.HandleFunc(pattern, f) }

// Handle adds a route (an http.ServeMux pattern) before the handler serves.
func (h *Handler) Handle(pattern string, f http.Handler) { h.mux.Handle(pattern, f) }

// kvFunc serves /kv/{key}: key is the path after /kv/, percent-decoded.
// It is passed along, not set with Request.SetPathValue, which makes a
// map per request outside a ServeMux route.
type kvFunc func(w http.ResponseWriter, r *http.Request, key string)

// ServeHTTP serves /kv/{key} itself (see New) and the rest through the
// routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if key, ok := strings.CutPrefix(r.URL.Path, "/kv/"); ok {
		h.kv(w, r, key)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// WriteJSON answers status with v as indented JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// WriteError answers status with an api.Error of code and msg.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, status, code, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	encodeJSON(w, v)
}

func encodeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// notFound is the body of a GET's 404, encoded once: reads of absent
// keys are common, and encoding it each time was a tenth of the handler's
// CPU under such reads (docs/bench/writepath-store.md).
var notFound = func() []byte {
	var b bytes.Buffer
	encodeJSON(&b, api.Error{Error: "not found", Code: api.CodeNotFound})
	return b.Bytes()
}()

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Error: msg, Code: code})
}

// writeErr maps an error from the coordinator or the request's parsing to
// its status code and JSON body.
func (h *Handler) writeErr(w http.ResponseWriter, op string, err error) {
	var (
		qe *quorum.QuorumError
		pe *quorum.ParamError
	)
	var busy *membudget.BusyError
	switch {
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", strconv.Itoa(busy.RetryAfterSeconds()))
		writeError(w, http.StatusServiceUnavailable, api.CodeBusy, err.Error())
	case errors.Is(err, membudget.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeValueTooLarge, err.Error())
	case errors.As(err, &qe):
		h.cfg.QuorumFailures.WithLabelValues(op).Inc()
		ip := func(v int) *int { return &v }
		body := api.Error{Error: err.Error(), Code: api.CodeQuorumNotMet,
			Acks: ip(qe.Acks), Required: ip(qe.Required), FallbackAcks: ip(qe.FallbackAcks), Targets: ip(qe.Targets)}
		if qe.RequiredPrimary > 0 {
			body.PrimaryAcks, body.RequiredPrimary = ip(qe.PrimaryAcks), ip(qe.RequiredPrimary)
		} else {
			body.PrimaryAcks = ip(qe.PrimaryAcks)
		}
		if qe.RequiredDurable > 0 {
			body.DurableAcks, body.RequiredDurable = ip(qe.DurableAcks), ip(qe.RequiredDurable)
		}
		if qe.RequiredZones > 0 {
			body.ZoneAcks, body.RequiredZones = ip(qe.ZoneAcks), ip(qe.RequiredZones)
		}
		writeJSON(w, http.StatusServiceUnavailable, body)
	case errors.As(err, &pe):
		writeJSON(w, http.StatusBadRequest, api.Error{Error: pe.Msg, Code: api.CodeBadParameter, Param: pe.Param})
	case errors.Is(err, replica.ErrSetTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeSiblingsTooLarge, err.Error())
	case errors.Is(err, replica.ErrTooManySiblings):
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeTooManySiblings, err.Error())
	case errors.Is(err, store.ErrDiskFull):
		// After the quorum case: a quorum failure only names a full
		// replica among its causes (a failed ack, never an ack).
		writeError(w, http.StatusInsufficientStorage, api.CodeDiskFull, err.Error())
	case errors.Is(err, quorum.ErrNoCoordinator):
		writeError(w, http.StatusServiceUnavailable, api.CodeNoCoordinator, err.Error())
	case errors.Is(err, replica.ErrQuarantined), errors.Is(err, quorum.ErrNotJoined):
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
	case errors.Is(err, quorum.ErrClosed), errors.Is(err, store.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, api.CodeShuttingDown, "node is shutting down")
	case errors.Is(err, context.Canceled):
		writeError(w, 499, api.CodeCanceled, "request canceled by the client")
	default:
		h.cfg.Log.Error("request failed", "op", op, "err", err)
		writeError(w, http.StatusInternalServerError, api.CodeInternal, err.Error())
	}
}

// readDeadline and writeDeadline set the deadlines of w's connection. A
// writer that cannot (httptest's recorder: no connection) goes unpaced.
// Each costs two allocations (the controller and the closure), where a
// method value wrapped in a second closure cost three.
func readDeadline(w http.ResponseWriter) func(time.Time) error {
	rc := http.NewResponseController(w)
	return func(t time.Time) error { return unlessUnsupported(rc.SetReadDeadline(t)) }
}

func writeDeadline(w http.ResponseWriter) func(time.Time) error {
	rc := http.NewResponseController(w)
	return func(t time.Time) error { return unlessUnsupported(rc.SetWriteDeadline(t)) }
}

func unlessUnsupported(err error) error {
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// statusRecorder remembers the status for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the paced
// body reader sets its read deadline).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (h *Handler) instrument(op string, next kvFunc) kvFunc {
	latency := h.cfg.Latency.WithLabelValues(op) // one lookup, not one per request
	var common [len(commonStatuses)]atomic.Pointer[prometheus.Counter]
	return func(w http.ResponseWriter, r *http.Request, key string) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next(rec, r, key)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		requestsCounter(h.cfg.Requests, &common, op, status).Inc()
		latency.Observe(time.Since(start).Seconds())
	}
}

// commonStatuses are the statuses /kv answers most.
var commonStatuses = [...]int{http.StatusOK, http.StatusNoContent, http.StatusMultipleChoices, http.StatusNotFound}

// requestsCounter is vec's counter of op and status, kept in common for
// the common statuses once a request has had one: WithLabelValues hashes
// its labels and looks them up under a lock on every call. A series still
// appears only once a request has counted in it.
func requestsCounter(vec *prometheus.CounterVec, common *[len(commonStatuses)]atomic.Pointer[prometheus.Counter], op string, status int) prometheus.Counter {
	for i, s := range commonStatuses {
		if s != status {
			continue
		}
		if c := common[i].Load(); c != nil {
			return *c
		}
		c := vec.WithLabelValues(op, strconv.Itoa(status))
		common[i].Store(&c)
		return c
	}
	return vec.WithLabelValues(op, strconv.Itoa(status))
}

// setHeaders sets the headers of kv (name, value, name, value...) on hd,
// with one allocation for all their values where Header.Set makes one per
// header. The names must be in canonical form (the api.Header* constants
// are; TestHeaderNamesCanonical checks).
func setHeaders(hd http.Header, kv ...string) {
	vals := make([]string, len(kv)/2)
	for i := range vals {
		vals[i] = kv[2*i+1]
		hd[kv[2*i]] = vals[i : i+1 : i+1]
	}
}

// The query parameters each operation accepts; anything else is a 400 so a
// typo (rr=3) is not silently ignored.
//
// r and pr on a PUT or DELETE are those of the read that an overwrite, or a
// delete without a context, makes first (writes.go).
var (
	getParams    = map[string]bool{"n": true, "r": true, "pr": true, "timeout": true, "local": true}
	putParams    = map[string]bool{"n": true, "r": true, "pr": true, "w": true, "pw": true, "dw": true, "pz": true, "timeout": true, "returnbody": true, "overwrite": true, "ttl": true}
	deleteParams = map[string]bool{"n": true, "r": true, "pr": true, "w": true, "pw": true, "dw": true, "pz": true, "timeout": true}
)

// parseParams reads quorum parameters (quorum.ParseParams) after refusing
// parameters the request does not take and repeated ones. An empty value
// counts as not given.
func (h *Handler) parseParams(q url.Values, allowed map[string]bool) (quorum.Params, error) {
	var p quorum.Params
	for k, v := range q {
		if !allowed[k] {
			return p, &quorum.ParamError{Param: k, Msg: fmt.Sprintf("unknown parameter %q", k)}
		}
		if len(v) > 1 {
			return p, &quorum.ParamError{Param: k, Msg: fmt.Sprintf("parameter %q given %d times", k, len(v))}
		}
	}
	return quorum.ParseParams(func(name string) (string, bool) {
		s := q.Get(name)
		return s, s != ""
	}, h.b.DefaultN())
}

func parseBool(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &quorum.ParamError{Param: name, Msg: fmt.Sprintf("%s=%q: want true or false", name, s)}
	}
	return b, nil
}

// request reads what every /kv request starts with: the key (k, from the
// path) and the query with its quorum parameters, of which allowed lists
// those op takes.
func (h *Handler) request(r *http.Request, k string, allowed map[string]bool) (key []byte, q url.Values, p quorum.Params, err error) {
	if key, err = h.keyOf(k); err != nil {
		return nil, nil, p, err
	}
	if r.URL.RawQuery != "" { // an empty query needs no map
		q = r.URL.Query()
	}
	p, err = h.parseParams(q, allowed)
	return key, q, p, err
}

// keyOf checks the key of the path.
func (h *Handler) keyOf(k string) ([]byte, error) {
	if k == "" {
		return nil, &quorum.ParamError{Param: "key", Msg: "empty key: use /kv/{key}"}
	}
	if len(k) > h.cfg.MaxKeySize {
		return nil, &quorum.ParamError{Param: "key", Msg: fmt.Sprintf("key of %d bytes exceeds the limit of %d", len(k), h.cfg.MaxKeySize)}
	}
	return []byte(k), nil
}

func (h *Handler) contextOf(r *http.Request) (vclock.Vector, error) {
	vals := r.Header.Values(api.HeaderContext)
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > 1 {
		return nil, &quorum.ParamError{Param: "context", Msg: "more than one " + api.HeaderContext + " header"}
	}
	v, err := h.cfg.Contexts.DecodeContext(strings.TrimSpace(vals[0]))
	if err != nil {
		return nil, &quorum.ParamError{Param: "context", Msg: fmt.Sprintf("malformed %s header: %v (send back exactly what a read returned)", api.HeaderContext, err)}
	}
	return v, nil
}

func setAcks(w http.ResponseWriter, a quorum.Acks) {
	h := w.Header()
	setHeaders(h, api.HeaderAcksPrimary, strconv.Itoa(a.Primary),
		api.HeaderAcksFallback, strconv.Itoa(a.Fallback), api.HeaderAcksDurable, strconv.Itoa(a.Durable))
	if a.Zones > 0 {
		h.Set(api.HeaderAcksZones, strconv.Itoa(a.Zones))
	}
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request, k string) {
	key, q, p, err := h.request(r, k, getParams)
	if err != nil {
		h.writeErr(w, "get", err)
		return
	}
	local, err := parseBool(q, "local")
	if err != nil {
		h.writeErr(w, "get", err)
		return
	}
	var set vclock.Set
	if local {
		// This node's own copy, no quorum: for operators and tests.
		set, _, err = h.c.ReadLocal(key)
		if err != nil {
			h.writeErr(w, "get", err)
			return
		}
		set, _ = vclock.Expire(set, h.cfg.Now().UnixNano()) // as a quorum read answers
		w.Header().Set(api.HeaderLocal, h.cfg.NodeID)
	} else {
		if p, err = h.fit(w, p); err != nil {
			h.writeErr(w, "get", err)
			return
		}
		// The set read is charged from before the read until its reply
		// is written, at a pace that cuts a client that does not read
		// it. Before the read its size is unknown: a key a GET found
		// large reserves that cost (so many GETs of a huge key wait for
		// the budget before reading, not after), others
		// multikey.ReadReserve. After it, the set's size, then the
		// reply's copies before they are made (replyBytes).
		hold := h.cfg.Budget.NewHold()
		defer hold.Release()
		rd, err := h.sizes.Reserve(r.Context(), &hold, key)
		defer rd.End()
		if err != nil {
			h.writeErr(w, "get", err)
			return
		}
		res, err := h.b.Read(r.Context(), key, p)
		if err != nil {
			h.writeErr(w, "get", err)
			return
		}
		set = res.Set
		size := siblings.Bytes(set)
		if err := rd.Charge(r.Context(), &hold, key, size, replyBytes(set, size)); err != nil {
			h.writeErr(w, "get", err)
			return
		}
		setAcks(w, res.Acks)
		pw := &pacedReply{ResponseWriter: w, pace: h.cfg.ReplyPace}
		defer pw.close()
		w = pw
	}
	h.cfg.SiblingsPerRead.Observe(float64(liveCount(set)))
	h.writeSet(w, r, set)
}

// liveCount is len(set.Live()) without building the slice.
func liveCount(set vclock.Set) int {
	n := 0
	for _, sb := range set.Siblings {
		if !sb.Value.Deleted {
			n++
		}
	}
	return n
}

// replyBytes is the peak memory of answering a GET with set (of size
// bytes): the set, and for several siblings the JSON reply's three copies
// of their values in base64 (the strings, the encoder's buffer and its
// indented copy), 4/3 of the data each. One sibling is written from the
// set as it is.
func replyBytes(set vclock.Set, size int64) int64 {
	if len(set.Siblings) <= 1 {
		return size
	}
	return size + 4*size
}

// pacedReply writes a reply's body through a paced writer, whose pace
// starts at the first write: encoding the reply is the server's time,
// not the client's. A reply whose body fits in net/http's response
// buffer (unpacedReply) goes around it: such writes only copy into
// memory, and the buffer is sent after the handler returns, under the
// server's WriteTimeout, so arming and clearing the connection's write
// deadline for them was two deadline changes and four allocations per
// GET that guarded nothing.
type pacedReply struct {
	http.ResponseWriter
	pace     connlimit.Pace
	pw       *connlimit.Writer
	buffered int // bytes written around pw, all within unpacedReply
}

// unpacedReply is net/http's bufferBeforeChunkingSize: a handler's first
// 2 KiB of body stay in the response's buffer, and a reply no longer is
// flushed only once the handler is done (and then sized with
// Content-Length by net/http).
const unpacedReply = 2 << 10

func (p *pacedReply) Write(b []byte) (int, error) {
	if p.pw == nil {
		if p.buffered+len(b) <= unpacedReply {
			n, err := p.ResponseWriter.Write(b)
			p.buffered += n
			return n, err
		}
		p.pw = connlimit.NewWriter(p.ResponseWriter, writeDeadline(p.ResponseWriter), p.pace, time.Time{})
	}
	return p.pw.Write(b)
}

func (p *pacedReply) close() {
	if p.pw != nil {
		_ = p.pw.Close()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (p *pacedReply) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// writeSet answers with a set: 404 when nothing is live, 200 with the raw
// value for one sibling, 300 with every sibling (tombstones included, marked)
// when there are several.
func (h *Handler) writeSet(w http.ResponseWriter, r *http.Request, set vclock.Set) {
	hd := w.Header()
	live := liveCount(set)
	if at, ok := set.DeadAt(); ok && live > 0 {
		hd.Set(api.HeaderExpires, api.FormatRemaining(time.Duration(at-h.cfg.Now().UnixNano())))
	}
	switch {
	case live == 0:
		setHeaders(hd, api.HeaderContext, h.cfg.Contexts.EncodeContext(set.Context),
			api.HeaderSiblings, strconv.Itoa(len(set.Siblings)))
		hd["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(notFound)
	case len(set.Siblings) == 1:
		v := set.Siblings[0].Value
		ct := v.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		setHeaders(hd, api.HeaderContext, h.cfg.Contexts.EncodeContext(set.Context),
			api.HeaderSiblings, "1",
			"Content-Type", ct,
			"Last-Modified", time.Unix(0, v.Timestamp).UTC().Format(http.TimeFormat),
			api.HeaderDot, vclock.EncodeDot(set.Siblings[0].Dot))
		if len(v.Data) > unpacedReply || r.Method == http.MethodHead {
			// A small body is still in net/http's buffer when the
			// handler returns, and net/http sizes it itself: one
			// header fewer in the map (past 8 it grows) and no Itoa.
			// HEAD writes no body for it to size.
			hd["Content-Length"] = []string{strconv.Itoa(len(v.Data))}
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(v.Data)
		}
	default:
		body := api.Siblings{Context: h.cfg.Contexts.EncodeContext(set.Context)}
		setHeaders(hd, api.HeaderContext, body.Context, api.HeaderSiblings, strconv.Itoa(len(set.Siblings)))
		for _, s := range set.Siblings {
			sib := api.Sibling{
				Value:       base64.StdEncoding.EncodeToString(s.Value.Data),
				ContentType: s.Value.ContentType,
				Timestamp:   time.Unix(0, s.Value.Timestamp).UTC(),
				Deleted:     s.Value.Deleted,
				Dot:         vclock.EncodeDot(s.Dot),
			}
			if s.Value.Expires != 0 {
				at := time.Unix(0, s.Value.Expires).UTC()
				sib.Expires = &at
			}
			body.Siblings = append(body.Siblings, sib)
		}
		writeJSON(w, http.StatusMultipleChoices, body)
	}
}

func (h *Handler) handlePut(w http.ResponseWriter, r *http.Request, k string) {
	key, q, p, err := h.request(r, k, putParams)
	if err != nil {
		h.writeErr(w, "put", err)
		return
	}
	o, err := h.putOptionsOf(r, q)
	if err != nil {
		h.writeErr(w, "put", err)
		return
	}
	if r.ContentLength > int64(h.cfg.MaxValueSize) {
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeValueTooLarge,
			fmt.Sprintf("value of %d bytes exceeds the limit of %d", r.ContentLength, h.cfg.MaxValueSize))
		return
	}
	// The body is charged before it is read, at its declared length (or
	// the largest value when chunked), and until the write is answered.
	hold := h.cfg.Budget.NewHold()
	defer hold.Release()
	need := r.ContentLength
	if need < 0 {
		need = int64(h.cfg.MaxValueSize) + 1
	}
	if err := hold.Resize(r.Context(), need); err != nil {
		h.writeErr(w, "put", err)
		return
	}
	body := connlimit.NewReader(r.Body, readDeadline(w), h.cfg.BodyPace, time.Time{})
	data, err := readBody(body, r.ContentLength, h.cfg.MaxValueSize)
	_ = body.Close()
	if err != nil {
		if errors.Is(err, connlimit.ErrTooSlow) || errors.Is(err, connlimit.ErrDeadline) {
			// The passed deadline stays on the connection, so net/http
			// closes it after this answer instead of reading on.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, api.CodeTooSlow, err.Error())
			return
		}
		writeError(w, http.StatusBadRequest, api.CodeBadBody, fmt.Sprintf("read body: %v", err))
		return
	}
	if len(data) > h.cfg.MaxValueSize {
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeValueTooLarge,
			fmt.Sprintf("value exceeds the limit of %d bytes", h.cfg.MaxValueSize))
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 256 {
			h.writeErr(w, "put", &quorum.ParamError{Param: "content-type", Msg: fmt.Sprintf("bad Content-Type %q", ct)})
			return
		}
	}
	if p, err = h.fit(w, p); err != nil {
		h.writeErr(w, "put", err)
		return
	}
	req := quorum.PutRequest{Key: key, Value: vclock.Value{Data: data, ContentType: ct}, Context: o.context, Params: p}
	if q.Has("ttl") {
		if req.TTL, err = api.ParseTTL(q.Get("ttl")); err != nil {
			h.writeErr(w, "put", &quorum.ParamError{Param: "ttl", Msg: "ttl: " + err.Error()})
			return
		}
	}
	if o.createOnly {
		h.create(w, r, req, o.returnBody)
		return
	}
	res, warnings, err := h.b.Write(r.Context(), req, o.overwrite)
	if err == nil && res != nil {
		h.sizes.Observe(req.Key, replyBytes(res.Set, siblings.Bytes(res.Set))) // what a GET of it will reserve
	}
	h.answerWrite(w, r, "put", res, warnings, err, o.returnBody)
}

// putOptions are what a PUT asks for beyond its key and quorum
// parameters.
type putOptions struct {
	returnBody bool
	overwrite  bool
	createOnly bool          // If-None-Match: *
	context    vclock.Vector // nil: none sent
}

// putOptionsOf reads a PUT's options from its query q and headers, and
// refuses those that do not apply to it or to each other.
func (h *Handler) putOptionsOf(r *http.Request, q url.Values) (o putOptions, err error) {
	if o.returnBody, err = parseBool(q, "returnbody"); err != nil {
		return o, err
	}
	if o.overwrite, err = overwriteOf(r, q); err != nil {
		return o, err
	}
	if err := refuseOtherPreconditions(r); err != nil {
		return o, err
	}
	if o.createOnly, err = createOnlyOf(r); err != nil {
		return o, err
	}
	if !o.overwrite && !o.createOnly && (q.Has("r") || q.Has("pr")) {
		return o, &quorum.ParamError{Param: "r", Msg: "r and pr apply to a PUT only with overwrite=true or If-None-Match: * (the read it makes first)"}
	}
	if o.context, err = h.contextOf(r); err != nil {
		return o, err
	}
	if o.createOnly && (o.overwrite || o.context != nil) {
		return o, &quorum.ParamError{Param: "if-none-match", Msg: "If-None-Match: * (create only) does not combine with overwrite or a context"}
	}
	return o, nil
}

// readBody reads a request body of declared length n (-1: unknown, as
// chunked) of at most max bytes: a longer one is returned cut at max+1 for
// the caller to refuse. A declared length (checked against max before)
// reads into one buffer of that size, where io.ReadAll starts at 512
// bytes and grows; net/http's body reader ends at the declared length.
func readBody(body io.Reader, n int64, max int) ([]byte, error) {
	if n < 0 || n > int64(max) {
		return io.ReadAll(io.LimitReader(body, int64(max)+1))
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(body, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // shorter than declared: net/http says so too
		}
		return nil, err
	}
	return data, nil
}

// overwriteOf reads ?overwrite= and the X-Quorumkv-Overwrite header; either
// set to true asks for an overwrite.
func overwriteOf(r *http.Request, q url.Values) (bool, error) {
	o, err := parseBool(q, "overwrite")
	if err != nil || o {
		return o, err
	}
	h := r.Header.Values(api.HeaderOverwrite)
	if len(h) == 0 {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(h[0]))
	if err != nil || len(h) > 1 {
		return false, &quorum.ParamError{Param: "overwrite", Msg: fmt.Sprintf("%s: want one header, true or false", api.HeaderOverwrite)}
	}
	return b, nil
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request, k string) {
	key, q, p, err := h.request(r, k, deleteParams)
	if err != nil {
		h.writeErr(w, "delete", err)
		return
	}
	if len(r.Header.Values("If-None-Match")) > 0 {
		// A precondition the delete would otherwise ignore: refuse it,
		// so that no caller believes its delete was conditional.
		h.writeErr(w, "delete", &quorum.ParamError{Param: "if-none-match", Msg: "If-None-Match applies to PUT only (a create-only write)"})
		return
	}
	if err := refuseOtherPreconditions(r); err != nil {
		h.writeErr(w, "delete", err)
		return
	}
	vctx, err := h.contextOf(r)
	if err != nil {
		h.writeErr(w, "delete", err)
		return
	}
	if p, err = h.fit(w, p); err != nil {
		h.writeErr(w, "delete", err)
		return
	}
	req := quorum.PutRequest{Key: key, Value: vclock.Value{Deleted: true}, Context: vctx, Params: p}
	if vctx != nil {
		if q.Has("r") || q.Has("pr") {
			h.writeErr(w, "delete", &quorum.ParamError{Param: "r", Msg: "r and pr apply to a DELETE only without a context (the read it makes first)"})
			return
		}
		res, warnings, err := h.b.Write(r.Context(), req, false)
		h.answerWrite(w, r, "delete", res, warnings, err, false)
		return
	}
	// No context: delete what a read at R sees (as Riak does); a read
	// that found no live value writes nothing (no result).
	res, warnings, err := h.b.Write(r.Context(), req, true)
	if err == nil && res == nil {
		writeError(w, http.StatusNotFound, api.CodeNotFound, "not found: a read found no live value to delete")
		return
	}
	h.answerWrite(w, r, "delete", res, warnings, err, false)
}

// fit is Backend.Fit, with the answer's warning when the N was reduced.
func (h *Handler) fit(w http.ResponseWriter, p quorum.Params) (quorum.Params, error) {
	p, warning, err := h.b.Fit(p)
	if warning != "" {
		w.Header().Add(api.HeaderWarning, warning)
	}
	return p, err
}

// answerWrite answers a write: its error, or 204 (the set with
// returnbody) with the acks, dot, coordinator, context and sibling count,
// and a warning header when the key holds siblings.
func (h *Handler) answerWrite(w http.ResponseWriter, r *http.Request, op string, res *quorum.WriteResult, warnings []string, err error, returnBody bool) {
	if err != nil {
		h.writeErr(w, op, err)
		return
	}
	hd := w.Header()
	for _, warn := range warnings {
		hd.Add(api.HeaderWarning, warn)
	}
	if returnBody {
		setAcks(w, res.Acks)
		setHeaders(hd, api.HeaderDot, vclock.EncodeDot(res.Dot), api.HeaderCoordinator, string(res.Coordinator))
		h.writeSet(w, r, res.Set)
		return
	}
	setHeaders(hd, api.HeaderAcksPrimary, strconv.Itoa(res.Acks.Primary),
		api.HeaderAcksFallback, strconv.Itoa(res.Acks.Fallback), api.HeaderAcksDurable, strconv.Itoa(res.Acks.Durable),
		api.HeaderDot, vclock.EncodeDot(res.Dot), api.HeaderCoordinator, string(res.Coordinator),
		api.HeaderContext, h.cfg.Contexts.EncodeContext(res.Set.Context),
		api.HeaderSiblings, strconv.Itoa(len(res.Set.Siblings)))
	if res.Acks.Zones > 0 {
		hd.Set(api.HeaderAcksZones, strconv.Itoa(res.Acks.Zones))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) handleMembers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Members{Node: h.cfg.NodeID, Members: h.c.Members()})
}

func (h *Handler) handleRing(w http.ResponseWriter, r *http.Request) {
	rg := h.c.Ring()
	nv := h.cfg.Defaults.N
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > max(rg.Len(), 1) {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("n=%q: want 1 to %d", s, rg.Len()), Code: api.CodeBadParameter, Param: "n"})
			return
		}
		nv = v
	}
	out := api.Ring{Node: h.cfg.NodeID, Partitions: rg.Partitions(), Tokens: rg.Config().Tokens, N: nv}
	for _, m := range rg.Members() {
		out.Members = append(out.Members, string(m))
	}
	for p := 0; p < rg.Partitions(); p++ {
		pj := api.Partition{Partition: uint32(p)}
		for _, id := range rg.Primaries(uint32(p), nv) {
			pj.Primaries = append(pj.Primaries, string(id))
		}
		out.Owners = append(out.Owners, pj)
	}
	if d, ok := h.c.(RingDescriber); ok {
		d.DescribeRing(&out, rg)
	}
	writeJSON(w, http.StatusOK, out)
}

// RingDescriber is a Cluster that adds to /cluster/ring what it knows
// beyond the ring: placement mode, zones, the change in course.
type RingDescriber interface {
	DescribeRing(out *api.Ring, r *ring.Ring)
}

func (h *Handler) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.c.Status())
}
