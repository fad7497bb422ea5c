package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/vclock"
)

func (n *Node) startHTTP() error {
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return startErr("http", n.cfg.HTTPAddr, err)
	}
	n.httpLn = ln
	n.httpSrv = &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	return nil
}

// serveFronts starts serving the client ports bound by startHTTP and
// startRESP. New calls it last: a request must never see a node whose
// wiring (membership, loops) is still being written.
func (n *Node) serveFronts() {
	ln := n.httpLn
	n.goFunc(func() {
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "err", err)
		}
	})
	if s := n.resp; s != nil {
		s.Serve()
	}
}

// Handler returns the client API.
//
// /kv/{key} is dispatched before http.ServeMux, which cleans paths and
// redirects /kv/. to /kv/ and /kv/a//b to /kv/a/b: a key is bytes, and
// ".", ".." or "a//b" are keys like any other. The key is the rest of the
// path after /kv/, percent-decoded.
func (n *Node) Handler() http.Handler {
	get, put, del := n.instrument("get", n.handleGet), n.instrument("put", n.handlePut), n.instrument("delete", n.handleDelete)
	kv := func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			get(w, r)
		case http.MethodPut, http.MethodPost:
			put(w, r)
		case http.MethodDelete:
			del(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
			writeError(w, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, fmt.Sprintf("method %s not allowed on /kv/", r.Method))
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster/members", n.handleMembers)
	mux.HandleFunc("GET /cluster/ring", n.handleRing)
	mux.HandleFunc("GET /status", n.handleStatus)
	mux.HandleFunc("GET /healthz", n.handleHealth)
	mux.HandleFunc("GET /readyz", n.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /admin/repair", n.handleRepair)
	mux.HandleFunc("POST /admin/leave", n.handleLeave)
	mux.HandleFunc("POST /admin/remove", n.handleRemove)
	mux.HandleFunc("GET /cluster/transfers", n.handleTransfers)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, api.CodeUnknownPath, fmt.Sprintf("no such endpoint: %s %s (see /kv/{key}, /cluster/members, /cluster/ring, /status, /metrics, /healthz)", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key, ok := strings.CutPrefix(r.URL.Path, "/kv/"); ok {
			r.SetPathValue("key", key)
			kv(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Error: msg, Code: code})
}

// writeErr maps an error from the coordinator or the request's parsing to
// its status code and JSON body.
func (n *Node) writeErr(w http.ResponseWriter, op string, err error) {
	var (
		qe *quorum.QuorumError
		pe *quorum.ParamError
	)
	switch {
	case errors.As(err, &qe):
		n.metrics.quorumFailures.WithLabelValues(op).Inc()
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
		writeJSON(w, http.StatusServiceUnavailable, body)
	case errors.As(err, &pe):
		writeJSON(w, http.StatusBadRequest, api.Error{Error: pe.Msg, Code: api.CodeBadParameter, Param: pe.Param})
	case errors.Is(err, ErrSetTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeSiblingsTooLarge, err.Error())
	case errors.Is(err, ErrTooManySiblings):
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeTooManySiblings, err.Error())
	case errors.Is(err, quorum.ErrNoCoordinator):
		writeError(w, http.StatusServiceUnavailable, api.CodeNoCoordinator, err.Error())
	case errors.Is(err, ErrQuarantined), errors.Is(err, ErrNotJoined):
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
	case errors.Is(err, quorum.ErrClosed), errors.Is(err, store.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, api.CodeShuttingDown, "node is shutting down")
	case errors.Is(err, context.Canceled):
		writeError(w, 499, api.CodeCanceled, "request canceled by the client")
	default:
		n.log.Error("request failed", "op", op, "err", err)
		writeError(w, http.StatusInternalServerError, api.CodeInternal, err.Error())
	}
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

func (n *Node) instrument(op string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r)
		n.metrics.observeRequest(op, rec.status, time.Since(start))
	}
}

// The query parameters each operation accepts; anything else is a 400 so a
// typo (rr=3) is not silently ignored.
//
// r and pr on a PUT or DELETE are those of the read that an overwrite, or a
// delete without a context, makes first (writes.go).
var (
	getParams    = map[string]bool{"n": true, "r": true, "pr": true, "timeout": true, "local": true}
	putParams    = map[string]bool{"n": true, "r": true, "pr": true, "w": true, "pw": true, "dw": true, "timeout": true, "returnbody": true, "overwrite": true}
	deleteParams = map[string]bool{"n": true, "r": true, "pr": true, "w": true, "pw": true, "dw": true, "timeout": true}
)

// parseParams reads quorum parameters (quorum.ParseParams) after refusing
// parameters the request does not take and repeated ones. An empty value
// counts as not given.
func (n *Node) parseParams(q url.Values, allowed map[string]bool) (quorum.Params, error) {
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
	}, n.defaultN())
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

// keyOf extracts and checks the key from the path.
func (n *Node) keyOf(r *http.Request) ([]byte, error) {
	k := r.PathValue("key")
	if k == "" {
		return nil, &quorum.ParamError{Param: "key", Msg: "empty key: use /kv/{key}"}
	}
	if len(k) > n.cfg.MaxKeySize {
		return nil, &quorum.ParamError{Param: "key", Msg: fmt.Sprintf("key of %d bytes exceeds the limit of %d", len(k), n.cfg.MaxKeySize)}
	}
	return []byte(k), nil
}

func (n *Node) contextOf(r *http.Request) (vclock.Vector, error) {
	h := r.Header.Values(api.HeaderContext)
	if len(h) == 0 {
		return nil, nil
	}
	if len(h) > 1 {
		return nil, &quorum.ParamError{Param: "context", Msg: "more than one " + api.HeaderContext + " header"}
	}
	v, err := n.DecodeContext(strings.TrimSpace(h[0]))
	if err != nil {
		return nil, &quorum.ParamError{Param: "context", Msg: fmt.Sprintf("malformed %s header: %v (send back exactly what a read returned)", api.HeaderContext, err)}
	}
	return v, nil
}

func setAcks(w http.ResponseWriter, a quorum.Acks) {
	h := w.Header()
	h.Set(api.HeaderAcksPrimary, strconv.Itoa(a.Primary))
	h.Set(api.HeaderAcksFallback, strconv.Itoa(a.Fallback))
	h.Set(api.HeaderAcksDurable, strconv.Itoa(a.Durable))
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	key, err := n.keyOf(r)
	if err != nil {
		n.writeErr(w, "get", err)
		return
	}
	q := r.URL.Query()
	p, err := n.parseParams(q, getParams)
	if err != nil {
		n.writeErr(w, "get", err)
		return
	}
	local, err := parseBool(q, "local")
	if err != nil {
		n.writeErr(w, "get", err)
		return
	}
	var set vclock.Set
	if local {
		// This node's own copy, no quorum: for operators and tests.
		k := n.Ring().KeyOf(key)
		set, _, err = n.rep.ReadLocal("", k)
		if err != nil {
			n.writeErr(w, "get", err)
			return
		}
		w.Header().Set(api.HeaderLocal, n.cfg.NodeID)
	} else {
		if p, err = n.fitHTTP(w, p); err != nil {
			n.writeErr(w, "get", err)
			return
		}
		res, err := n.coord.Get(r.Context(), quorum.GetRequest{Key: key, Params: p})
		if err != nil {
			n.writeErr(w, "get", err)
			return
		}
		set = res.Set
		setAcks(w, res.Acks)
	}
	n.metrics.siblingsPerRead.Observe(float64(len(set.Live())))
	n.writeSet(w, r, set)
}

// writeSet answers with a set: 404 when nothing is live, 200 with the raw
// value for one sibling, 300 with every sibling (tombstones included, marked)
// when there are several.
func (n *Node) writeSet(w http.ResponseWriter, r *http.Request, set vclock.Set) {
	h := w.Header()
	h.Set(api.HeaderContext, n.EncodeContext(set.Context))
	h.Set(api.HeaderSiblings, strconv.Itoa(len(set.Siblings)))
	live := set.Live()
	switch {
	case len(live) == 0:
		writeError(w, http.StatusNotFound, api.CodeNotFound, "not found")
	case len(set.Siblings) == 1:
		v := set.Siblings[0].Value
		ct := v.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(v.Data)))
		h.Set("Last-Modified", time.Unix(0, v.Timestamp).UTC().Format(http.TimeFormat))
		h.Set(api.HeaderDot, vclock.EncodeDot(set.Siblings[0].Dot))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(v.Data)
		}
	default:
		body := api.Siblings{Context: n.EncodeContext(set.Context)}
		for _, s := range set.Siblings {
			body.Siblings = append(body.Siblings, api.Sibling{
				Value:       base64.StdEncoding.EncodeToString(s.Value.Data),
				ContentType: s.Value.ContentType,
				Timestamp:   time.Unix(0, s.Value.Timestamp).UTC(),
				Deleted:     s.Value.Deleted,
				Dot:         vclock.EncodeDot(s.Dot),
			})
		}
		writeJSON(w, http.StatusMultipleChoices, body)
	}
}

func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) {
	key, err := n.keyOf(r)
	if err != nil {
		n.writeErr(w, "put", err)
		return
	}
	q := r.URL.Query()
	p, err := n.parseParams(q, putParams)
	if err != nil {
		n.writeErr(w, "put", err)
		return
	}
	returnBody, err := parseBool(q, "returnbody")
	if err != nil {
		n.writeErr(w, "put", err)
		return
	}
	overwrite, err := overwriteOf(r, q)
	if err != nil {
		n.writeErr(w, "put", err)
		return
	}
	if !overwrite && (q.Has("r") || q.Has("pr")) {
		n.writeErr(w, "put", &quorum.ParamError{Param: "r", Msg: "r and pr apply to a PUT only with overwrite=true (the read it makes first)"})
		return
	}
	vctx, err := n.contextOf(r)
	if err != nil {
		n.writeErr(w, "put", err)
		return
	}
	if r.ContentLength > int64(n.cfg.MaxValueSize) {
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeValueTooLarge,
			fmt.Sprintf("value of %d bytes exceeds the limit of %d", r.ContentLength, n.cfg.MaxValueSize))
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, int64(n.cfg.MaxValueSize)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadBody, fmt.Sprintf("read body: %v", err))
		return
	}
	if len(data) > n.cfg.MaxValueSize {
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeValueTooLarge,
			fmt.Sprintf("value exceeds the limit of %d bytes", n.cfg.MaxValueSize))
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 256 {
			n.writeErr(w, "put", &quorum.ParamError{Param: "content-type", Msg: fmt.Sprintf("bad Content-Type %q", ct)})
			return
		}
	}
	if p, err = n.fitHTTP(w, p); err != nil {
		n.writeErr(w, "put", err)
		return
	}
	req := quorum.PutRequest{Key: key, Value: vclock.Value{Data: data, ContentType: ct}, Context: vctx, Params: p}
	if overwrite {
		res, _, err := n.supersedingWrite(r.Context(), req)
		n.answerWrite(w, r, "put", key, res, err, returnBody)
		return
	}
	res, err := n.coord.Put(r.Context(), req)
	n.answerWrite(w, r, "put", key, res, err, returnBody)
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

func (n *Node) handleDelete(w http.ResponseWriter, r *http.Request) {
	key, err := n.keyOf(r)
	if err != nil {
		n.writeErr(w, "delete", err)
		return
	}
	q := r.URL.Query()
	p, err := n.parseParams(q, deleteParams)
	if err != nil {
		n.writeErr(w, "delete", err)
		return
	}
	vctx, err := n.contextOf(r)
	if err != nil {
		n.writeErr(w, "delete", err)
		return
	}
	if p, err = n.fitHTTP(w, p); err != nil {
		n.writeErr(w, "delete", err)
		return
	}
	req := quorum.PutRequest{Key: key, Value: vclock.Value{Deleted: true}, Context: vctx, Params: p}
	if vctx != nil {
		if q.Has("r") || q.Has("pr") {
			n.writeErr(w, "delete", &quorum.ParamError{Param: "r", Msg: "r and pr apply to a DELETE only without a context (the read it makes first)"})
			return
		}
		res, err := n.coord.Put(r.Context(), req)
		n.answerWrite(w, r, "delete", key, res, err, false)
		return
	}
	// No context: delete what a read at R sees (as Riak does).
	res, found, err := n.supersedingWrite(r.Context(), req)
	if err == nil && !found {
		writeError(w, http.StatusNotFound, api.CodeNotFound, "not found: a read found no live value to delete")
		return
	}
	n.answerWrite(w, r, "delete", key, res, err, false)
}

// fitHTTP is fit, with the answer's warning when the N was reduced.
func (n *Node) fitHTTP(w http.ResponseWriter, p quorum.Params) (quorum.Params, error) {
	p, reduced, err := n.fit(p)
	if reduced {
		w.Header().Add(api.HeaderWarning, n.reducedWarning(p.N))
	}
	return p, err
}

// answerWrite answers a write: its error, or 204 (the set with
// returnbody) with the acks, dot, coordinator, context and sibling count,
// and a warning header when the key holds siblings.
func (n *Node) answerWrite(w http.ResponseWriter, r *http.Request, op string, key []byte, res *quorum.WriteResult, err error, returnBody bool) {
	if err != nil {
		n.writeErr(w, op, err)
		return
	}
	n.metrics.observeWriteResult(res)
	h := w.Header()
	for _, warn := range n.noteWrite(key, res) {
		h.Add(api.HeaderWarning, warn)
	}
	setAcks(w, res.Acks)
	h.Set(api.HeaderDot, vclock.EncodeDot(res.Dot))
	h.Set(api.HeaderCoordinator, string(res.Coordinator))
	if returnBody {
		n.writeSet(w, r, res.Set)
		return
	}
	h.Set(api.HeaderContext, n.EncodeContext(res.Set.Context))
	h.Set(api.HeaderSiblings, strconv.Itoa(len(res.Set.Siblings)))
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleMembers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Members{Node: n.cfg.NodeID, Members: n.Members()})
}

func (n *Node) handleRing(w http.ResponseWriter, r *http.Request) {
	rg := n.Ring()
	nv := n.cfg.Defaults.N
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > max(rg.Len(), 1) {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("n=%q: want 1 to %d", s, rg.Len()), Code: api.CodeBadParameter, Param: "n"})
			return
		}
		nv = v
	}
	out := api.Ring{Node: n.cfg.NodeID, Partitions: rg.Partitions(), Tokens: rg.Config().Tokens, N: nv}
	n.describeRing(&out, rg)
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
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	if n.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, api.CodeShuttingDown, "node is shutting down")
		return
	}
	if st, ok := n.secretStatus(); ok && st.JoinFailing && n.liveOthers() == 0 {
		// Alone because every seed refused our secret: not a working
		// member of the cluster it was told to join.
		writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "unhealthy", Node: n.cfg.NodeID, PID: os.Getpid(),
			Code: api.CodeSecretMismatch, Error: fmt.Sprintf("cluster secret mismatch: the seeds %s use another secret (or none), so this node joined no cluster; give every node the same --secret or QUORUMKV_SECRET", st.Peer)})
		return
	}
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", Node: n.cfg.NodeID, PID: os.Getpid()})
}

// secretStatus is what gossip saw of peers with another cluster secret;
// ok is false with a membership that cannot tell (nodetest's).
func (n *Node) secretStatus() (secretStatus, bool) {
	sw, ok := n.ml.(interface{ secretStatus() secretStatus })
	if !ok {
		return secretStatus{}, false
	}
	return sw.secretStatus(), true
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}

// keep ring imported for handlers that grow to need it.
var _ = ring.NodeID("")
