package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// TestListPageHoldsKeysWhenAnyRemain: over a sparse ring (1024
// partitions, keys only far from the cursor) a GET /kv page holds keys
// whenever any remain, and a prefix that matches nothing ends the listing
// in one page: the client need not loop over empty pages.
func TestListPageHoldsKeysWhenAnyRemain(t *testing.T) {
	c := nodetest.NewCluster(t, 1, nodetest.Options{InMemory: true, Config: func(_ int, cfg *node.Config) {
		cfg.Ring.Partitions = 1024
		cfg.Join = nil // a cluster of one: it need not wait for a seed
	}})
	nd := c.Node(0)
	rg := nd.Ring()
	// Two keys of partitions past the first few hundred: a scan from the
	// start visits hundreds of empty partitions before it reaches them.
	var keys []string
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Sprintf("k%d", i)
		if p := rg.PartitionOf([]byte(k)); (len(keys) == 0 && p >= 600 && p < 700) || (len(keys) == 1 && p >= 900) {
			keys = append(keys, k)
		}
	}
	h := nd.Handler()
	for _, k := range keys {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodPut, "/kv/"+k, strings.NewReader("v")))
		if w.Code != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %q", k, w.Code, w.Body)
		}
	}
	list := func(target string) api.KeyList {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil))
		var body api.KeyList
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %q", target, w.Code, w.Body)
		}
		return body
	}
	var got []string
	after := ""
	for pages := 1; ; pages++ {
		body := list("/kv?limit=1&after=" + after)
		if len(body.Keys) == 0 && body.Next != "" {
			t.Fatalf("page %d from %q: no keys, next %q, with %d keys left", pages, after, body.Next, len(keys)-len(got))
		}
		got = append(got, body.Keys...)
		if body.Next == "" {
			break
		}
		if pages > len(keys)+1 {
			t.Fatalf("%d pages for %d keys", pages, len(keys))
		}
		after = body.Next
	}
	if fmt.Sprint(got) != fmt.Sprint(keys) {
		t.Fatalf("listed %q, want %q", got, keys)
	}
	if body := list("/kv?prefix=nothing"); len(body.Keys) != 0 || body.Next != "" {
		t.Fatalf("a prefix of no key: %q, next %q; want the end of the listing", body.Keys, body.Next)
	}
}
