package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/listing"
	"github.com/quorumkv/quorumkv/quorum"
)

// fullFake is a fake with the optional Lister and Creator parts.
type fullFake struct {
	*fake
	gotFrom   listing.Cursor
	gotPrefix string
	gotCount  int
	done      bool
	exists    bool
}

func (f *fullFake) Scan(_ context.Context, from listing.Cursor, prefix []byte, _ func([]byte) bool, count int) (listing.Result, error) {
	f.gotFrom, f.gotPrefix, f.gotCount = from, string(prefix), count
	return listing.Result{Keys: [][]byte{[]byte("a"), []byte("b")}, Next: 42, Done: f.done}, nil
}

func (f *fullFake) Create(ctx context.Context, req quorum.PutRequest) (*quorum.WriteResult, []string, bool, error) {
	if f.exists {
		return nil, nil, false, nil
	}
	res, warnings, err := f.Write(ctx, req, false)
	return res, warnings, true, err
}

func TestList(t *testing.T) {
	f := &fullFake{fake: &fake{}}
	h := New(f, f, newHandler(f.fake).cfg)
	w := do(h, "GET", "/kv?prefix=user%2F&after=7&limit=20", "")
	var body api.KeyList
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 || len(body.Keys) != 2 || body.Next != "42" {
		t.Fatalf("GET /kv: %d %q", w.Code, w.Body)
	}
	if f.gotFrom != 7 || f.gotPrefix != "user/" || f.gotCount != 20 {
		t.Fatalf("scan asked from %d prefix %q count %d", f.gotFrom, f.gotPrefix, f.gotCount)
	}
	f.done = true
	w = do(h, "GET", "/kv", "")
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Next != "" || f.gotCount != defaultListLimit || f.gotFrom != 0 {
		t.Fatalf("last page: %q, count %d", w.Body, f.gotCount)
	}
	for _, target := range []string{"/kv?limit=0", "/kv?limit=10001", "/kv?limit=x", "/kv?after=-1", "/kv?after=x", "/kv?n=3", "/kv?limit=1&limit=2", "/kv?prefix=01234567890123456"} {
		apiError(t, do(h, "GET", target, ""), 400, api.CodeBadParameter)
	}
	// A backend without a Lister cannot list.
	if w := do(newHandler(&fake{}), "GET", "/kv", ""); w.Code != 501 {
		t.Fatalf("without a Lister: %d", w.Code)
	}
}

func TestCreateOnly(t *testing.T) {
	f := &fullFake{fake: &fake{}}
	h := New(f, f, newHandler(f.fake).cfg)
	if w := do(h, "PUT", "/kv/k?r=3", "v", "If-None-Match", "*"); w.Code != 204 {
		t.Fatalf("create: %d %q", w.Code, w.Body)
	}
	if f.gotReq.Params.R != 3 || string(f.gotReq.Value.Data) != "v" {
		t.Fatalf("create wrote %+v", f.gotReq)
	}
	f.exists = true
	apiError(t, do(h, "PUT", "/kv/k", "v", "If-None-Match", "*"), 412, api.CodeExists)
	for _, hdr := range [][]string{{"If-None-Match", `"etag"`}, {"If-None-Match", "*", "X-Quorumkv-Overwrite", "true"}, {"If-None-Match", "*", "If-None-Match", "*"}} {
		apiError(t, do(h, "PUT", "/kv/k", "v", hdr...), 400, api.CodeBadParameter)
	}
	// A DELETE cannot be create-only: refused, not done unconditionally.
	f.gotReq = quorum.PutRequest{}
	apiError(t, do(h, "DELETE", "/kv/k", "", "If-None-Match", "*"), 400, api.CodeBadParameter)
	if f.gotReq.Key != nil {
		t.Fatalf("a DELETE with If-None-Match wrote %+v", f.gotReq)
	}
	// Preconditions keys cannot honour are refused, not ignored, on
	// writes and deletes alike; nothing is written.
	for _, method := range []string{"PUT", "DELETE"} {
		for _, hdr := range [][]string{{"If-Match", `"x"`}, {"If-Match", "*"}, {"If-Unmodified-Since", "Sat, 05 Dec 2026 10:00:00 GMT"}} {
			f.gotReq = quorum.PutRequest{}
			w := do(h, method, "/kv/k", "v", hdr...)
			apiError(t, w, 400, api.CodeBadParameter)
			if !strings.Contains(w.Body.String(), "X-Quorumkv-Context") || f.gotReq.Key != nil {
				t.Fatalf("%s with %s: %q, wrote %+v", method, hdr[0], w.Body, f.gotReq)
			}
		}
	}
	if w := do(newHandler(&fake{}), "PUT", "/kv/k", "v", "If-None-Match", "*"); w.Code != 501 {
		t.Fatalf("without a Creator: %d", w.Code)
	}
}

// emptyLister answers every page with no keys and the next cursor (as
// listing.Scan does over a sparse ring), advancing the handler's clock by
// step per page, and fails the page from failAt when set.
type emptyLister struct {
	*fake
	now      time.Time
	step     time.Duration
	failAt   listing.Cursor
	from     []listing.Cursor
	deadline time.Duration
}

func (f *emptyLister) Scan(ctx context.Context, from listing.Cursor, _ []byte, _ func([]byte) bool, _ int) (listing.Result, error) {
	f.from = append(f.from, from)
	if d, ok := ctx.Deadline(); ok && f.deadline == 0 {
		f.deadline = time.Until(d)
	}
	f.now = f.now.Add(f.step)
	if f.failAt != 0 && from == f.failAt {
		return listing.Result{}, &quorum.QuorumError{Op: "scan", Required: 2, Acks: 1, Targets: 3}
	}
	return listing.Result{Next: from + 1}, nil
}

// TestListEmptyPageOnlyWhenOutOfTime: a GET /kv page reads on past empty
// scan results, and answers an empty page before the last only once half
// its timeout has passed, or when a read after the first fails; its
// cursor is then where it stopped. A failing first read is the page's
// error.
func TestListEmptyPageOnlyWhenOutOfTime(t *testing.T) {
	f := &emptyLister{fake: &fake{}, now: time.Unix(1000, 0), step: 100 * time.Millisecond}
	cfg := newHandler(f.fake).cfg // Defaults.Timeout: 1s
	cfg.Now = func() time.Time { return f.now }
	h := New(f, f, cfg)
	page := func(target string) api.KeyList {
		t.Helper()
		w := do(h, "GET", target, "")
		var body api.KeyList
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 {
			t.Fatalf("GET %s: %d %q", target, w.Code, w.Body)
		}
		return body
	}
	// Half of the default timeout (1s) at 100ms a read: 5 reads.
	if body := page("/kv?after=10"); len(body.Keys) != 0 || body.Next != "15" || len(f.from) != 5 || f.deadline <= 0 || f.deadline > time.Second {
		t.Fatalf("default timeout: %q next %q after reads from %v, deadline %s", body.Keys, body.Next, f.from, f.deadline)
	}
	f.from, f.deadline = nil, 0
	if body := page("/kv?after=10&timeout=3s"); body.Next != "25" || len(f.from) != 15 || f.deadline <= time.Second {
		t.Fatalf("timeout=3s: next %q after reads from %v, deadline %s", body.Next, f.from, f.deadline)
	}
	// A later read fails: the page keeps what the earlier ones covered.
	f.from, f.failAt = nil, 12
	if body := page("/kv?after=10"); body.Next != "12" || len(f.from) != 3 {
		t.Fatalf("failed third read: next %q after reads from %v", body.Next, f.from)
	}
	// The next page starts at the failed read, and fails if it does.
	f.from = nil
	apiError(t, do(h, "GET", "/kv?after=12", ""), 503, api.CodeQuorumNotMet)
	if len(f.from) != 1 {
		t.Fatalf("a failing first read read on: %v", f.from)
	}
}
