package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/listing"
	"github.com/quorumkv/quorumkv/quorum"
)

// Lister and Creator are optional parts of a Backend, found by type
// assertion, for both fronts: GET /kv and RESP SCAN list keys with a
// Lister, If-None-Match: * and RESP SET ... NX write with a Creator. A
// Backend without them answers those requests with an error.
type (
	// Lister lists keys (package listing).
	Lister interface {
		// Scan reads one page of a key listing from cursor from: keys that
		// start with prefix and that match (when set) accepts, about count
		// of them (1 to MaxListLimit).
		Scan(ctx context.Context, from listing.Cursor, prefix []byte, match func(key []byte) bool, count int) (listing.Result, error)
	}
	// Creator makes create-only writes.
	Creator interface {
		// Create writes req only if a read at its R finds no live value;
		// created is false, and nothing is written, when it found one.
		// warnings are as Backend.Write's.
		Create(ctx context.Context, req quorum.PutRequest) (res *quorum.WriteResult, warnings []string, created bool, err error)
	}
)

// GET /kv page sizes: the default, and the most a page may ask for.
const (
	defaultListLimit = 1000
	// MaxListLimit caps the keys one page asks for (HTTP limit=, RESP
	// COUNT).
	MaxListLimit = 10000
)

// listParams are the parameters of GET /kv.
var listParams = map[string]bool{"prefix": true, "after": true, "limit": true, "timeout": true}

// handleList answers GET /kv?prefix=P&after=CURSOR&limit=N with an
// api.KeyList.
func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) {
	l, ok := h.b.(Lister)
	if !ok {
		writeError(w, http.StatusNotImplemented, api.CodeInternal, "this node cannot list keys")
		return
	}
	q := r.URL.Query()
	p, err := h.parseParams(q, listParams)
	if err != nil {
		h.writeErr(w, "list", err)
		return
	}
	from, err := listing.ParseCursor(q.Get("after"))
	if err != nil {
		h.writeErr(w, "list", &quorum.ParamError{Param: "after", Msg: err.Error()})
		return
	}
	limit := defaultListLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxListLimit {
			h.writeErr(w, "list", &quorum.ParamError{Param: "limit", Msg: fmt.Sprintf("limit=%q: want 1 to %d", s, MaxListLimit)})
			return
		}
	}
	prefix := q.Get("prefix")
	if len(prefix) > h.cfg.MaxKeySize {
		h.writeErr(w, "list", &quorum.ParamError{Param: "prefix", Msg: fmt.Sprintf("prefix of %d bytes exceeds the key limit of %d", len(prefix), h.cfg.MaxKeySize)})
		return
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = h.cfg.Defaults.Timeout
	}
	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := h.fillPage(ctx, l, from, []byte(prefix), limit, timeout/2)
	if err != nil {
		h.writeErr(w, "list", err)
		return
	}
	body := api.KeyList{Keys: make([]string, len(res.Keys))}
	for i, k := range res.Keys {
		body.Keys[i] = string(k)
	}
	if !res.Done {
		body.Next = res.Next.String()
	}
	writeJSON(w, http.StatusOK, body)
}

// fillPage reads a GET /kv page that holds keys whenever any remain.
// listing.Scan may end a page with none before the last: it bounds the
// partitions and records one call reads, so that RESP SCAN (where Redis
// allows empty pages) answers quickly over a sparse ring or a selective
// prefix. HTTP clients should not have to loop over empty pages, so the
// page reads on from each empty result's cursor until keys come, the
// listing ends, or fill (half the page's timeout) has passed, keeping the
// rest of the timeout for the read under way. An empty page before the
// last therefore means the page ran out of time, or a read after the
// first failed: its cursor is where it stopped, so the work done is kept
// (retrying the original cursor could time out again at the same place)
// and the next page retries the failed read.
func (h *Handler) fillPage(ctx context.Context, l Lister, from listing.Cursor, prefix []byte, limit int, fill time.Duration) (listing.Result, error) {
	until := h.cfg.Now().Add(fill)
	for first := true; ; first = false {
		res, err := l.Scan(ctx, from, prefix, nil, limit)
		switch {
		case err != nil && first:
			return listing.Result{}, err
		case err != nil:
			return listing.Result{Next: from}, nil
		case len(res.Keys) > 0 || res.Done || ctx.Err() != nil || !h.cfg.Now().Before(until):
			return res, nil
		}
		from = res.Next
	}
}

// refuseOtherPreconditions refuses If-Match and If-Unmodified-Since on a
// write or delete: keys carry no entity tags or modification times, so
// they cannot be honoured, and a client sending one believes its write is
// conditional, so they are refused rather than ignored.
func refuseOtherPreconditions(r *http.Request) error {
	for _, h := range []string{"If-Match", "If-Unmodified-Since"} {
		if len(r.Header.Values(h)) > 0 {
			return &quorum.ParamError{Param: strings.ToLower(h), Msg: h + " is not supported: for a write that supersedes what you read, send the read's " + api.HeaderContext + "; for a create-only write, If-None-Match: *"}
		}
	}
	return nil
}

// createOnlyOf reads If-None-Match: "*" asks for a create-only write; an
// entity tag is refused, as keys have none.
func createOnlyOf(r *http.Request) (bool, error) {
	v := r.Header.Values("If-None-Match")
	if len(v) == 0 {
		return false, nil
	}
	if len(v) > 1 || strings.TrimSpace(v[0]) != "*" {
		return false, &quorum.ParamError{Param: "if-none-match", Msg: "If-None-Match: only * (create only) is supported"}
	}
	return true, nil
}

// create answers a create-only PUT: the write, or 412 when a read found a
// live value.
func (h *Handler) create(w http.ResponseWriter, r *http.Request, req quorum.PutRequest, returnBody bool) {
	cr, ok := h.b.(Creator)
	if !ok {
		writeError(w, http.StatusNotImplemented, api.CodeInternal, "this node cannot make create-only writes")
		return
	}
	res, warnings, created, err := cr.Create(r.Context(), req)
	if err == nil && !created {
		writeError(w, http.StatusPreconditionFailed, api.CodeExists, "the key has a live value: create-only write refused")
		return
	}
	h.answerWrite(w, r, "put", res, warnings, err, returnBody)
}
