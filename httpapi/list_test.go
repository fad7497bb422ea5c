package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
