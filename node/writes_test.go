package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   string
}

func httpDo(t *testing.T, method, url, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

// warnings is the answer's X-Quorumkv-Warning headers, joined.
func (a answer) warnings() string { return strings.Join(a.header.Values(api.HeaderWarning), " | ") }

func errorCode(t *testing.T, a answer) string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e.Code
}

// Issue 19, item 3: what a write without a context means. Two blind PUTs
// through two nodes are siblings, and the second answer says so; a blind
// DELETE deletes what a read at R sees (it used to add one more sibling,
// and the key still read 300); PUT with overwrite (query or header)
// supersedes what a read at R sees.
func TestHTTPBlindWritesAndOverwrite(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	u := func(i int, path string) string { return c.URL(i) + path }

	if a := httpDo(t, "PUT", u(0, "/kv/k?w=3"), "one", nil); a.status != 204 || a.warnings() != "" {
		t.Fatalf("first put: %d, warnings %q", a.status, a.warnings())
	}
	a := httpDo(t, "PUT", u(1, "/kv/k?w=3"), "two", nil)
	if a.status != 204 || a.header.Get(api.HeaderSiblings) != "2" || !strings.HasPrefix(a.warnings(), "siblings: the key now holds 2 siblings") {
		t.Fatalf("second blind put: %d siblings %s, warnings %q", a.status, a.header.Get(api.HeaderSiblings), a.warnings())
	}
	if a := httpDo(t, "GET", u(2, "/kv/k?r=3"), "", nil); a.status != 300 {
		t.Fatalf("get after two blind puts: %d", a.status)
	}
	if a := httpDo(t, "DELETE", u(2, "/kv/k?r=3&w=3"), "", nil); a.status != 204 {
		t.Fatalf("blind delete: %d %s", a.status, a.body)
	}
	if a := httpDo(t, "GET", u(0, "/kv/k?r=3"), "", nil); a.status != 404 {
		t.Fatalf("get after a blind delete: %d %s, want 404", a.status, a.body)
	}
	if a := httpDo(t, "DELETE", u(0, "/kv/k"), "", nil); a.status != 404 || errorCode(t, a) != api.CodeNotFound {
		t.Fatalf("blind delete of a deleted key: %d %s, want 404", a.status, a.body)
	}

	for i, how := range []struct {
		query  string
		header map[string]string
	}{{"?overwrite=true&r=3&w=3", nil}, {"?w=3", map[string]string{api.HeaderOverwrite: "true"}}} {
		key := fmt.Sprintf("/kv/o%d", i)
		httpDo(t, "PUT", u(0, key+"?w=3"), "a", nil)
		httpDo(t, "PUT", u(1, key+"?w=3"), "b", nil)
		a := httpDo(t, "PUT", u(2, key+how.query), "set", how.header)
		if a.status != 204 || a.header.Get(api.HeaderSiblings) != "1" || a.warnings() != "" {
			t.Fatalf("overwrite %d: %d, %s siblings, warnings %q", i, a.status, a.header.Get(api.HeaderSiblings), a.warnings())
		}
		if a := httpDo(t, "GET", u(0, key+"?r=3"), "", nil); a.status != 200 || a.body != "set" {
			t.Fatalf("get after overwrite %d: %d %q", i, a.status, a.body)
		}
	}
	for _, bad := range []string{"/kv/x?r=2", "/kv/x?overwrite=maybe"} {
		if a := httpDo(t, "PUT", u(0, bad), "v", nil); a.status != 400 {
			t.Errorf("PUT %s: %d, want 400", bad, a.status)
		}
	}
}

// Issue 19, item 3: a per-key warning threshold (answer header, log line,
// metric) and a sibling count cap answered with 413 naming the cap; an
// overwrite resolves a key at the cap.
func TestHTTPSiblingThresholdAndCap(t *testing.T) {
	var logged atomic.Int64
	c := nodetest.NewCluster(t, 1, nodetest.Options{InMemory: true, Logger: slog.New(countHandler{prefix: "key has many siblings", n: &logged}),
		Config: func(_ int, cfg *node.Config) {
			cfg.Defaults.N, cfg.Defaults.R, cfg.Defaults.W = 1, 1, 1
			cfg.SiblingWarning, cfg.MaxSiblings = 3, 5
		}})
	url := c.URL(0) + "/kv/hot"
	for i := 1; i <= 5; i++ {
		a := httpDo(t, "PUT", url, fmt.Sprint(i), nil)
		if a.status != 204 {
			t.Fatalf("blind put %d: %d %s", i, a.status, a.body)
		}
		want := fmt.Sprintf("sibling threshold: %d siblings is at or over the warning threshold of 3", i)
		if got := strings.Contains(a.warnings(), want); got != (i >= 3) {
			t.Fatalf("put %d: warnings %q; threshold warning expected: %v", i, a.warnings(), i >= 3)
		}
	}
	if logged.Load() != 1 { // three writes over the threshold within siblingLogEvery
		t.Fatalf("%d log lines for a key over the threshold, want 1 (rate-limited)", logged.Load())
	}
	m := httpDo(t, "GET", c.URL(0)+"/metrics", "", nil)
	if !strings.Contains(m.body, "quorumkv_sibling_warnings_total 3") || !strings.Contains(m.body, "quorumkv_sibling_writes_total 4") {
		t.Fatalf("metrics lack the sibling counters:\n%s", grepLines(m.body, "sibling"))
	}
	a := httpDo(t, "PUT", url, "6", nil)
	if a.status != 413 || errorCode(t, a) != api.CodeTooManySiblings || !strings.Contains(a.body, "over the cap of 5 siblings per key") {
		t.Fatalf("sixth blind put: %d %s, want 413 naming the cap", a.status, a.body)
	}
	if a := httpDo(t, "PUT", url+"?overwrite=true", "one", nil); a.status != 204 || a.header.Get(api.HeaderSiblings) != "1" {
		t.Fatalf("overwrite at the cap: %d %s", a.status, a.body)
	}
}

// countHandler counts the log records whose message starts with prefix.
type countHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h countHandler) WithGroup(string) slog.Handler            { return h }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Issue 19, item 5: on a ring smaller than the default N (3), requests that
// give no n run with the ring's size, say so in a header and /status; an
// explicit n larger than the ring is still refused.
func TestHTTPSmallRing(t *testing.T) {
	c := nodetest.NewCluster(t, 2, nodetest.Options{InMemory: true})
	put := httpDo(t, "PUT", c.URL(0)+"/kv/k", "v", nil)
	if put.status != 204 || !strings.Contains(put.warnings(), "durability reduced: the ring has 2 member(s), fewer than the default n=3") {
		t.Fatalf("put on a ring of 2: %d %s, warnings %q", put.status, put.body, put.warnings())
	}
	get := httpDo(t, "GET", c.URL(1)+"/kv/k", "", nil)
	if get.status != 200 || get.body != "v" || !strings.Contains(get.warnings(), "durability reduced") || get.header.Get(api.HeaderAcksPrimary) != "2" {
		t.Fatalf("get on a ring of 2: %d %q, acks %s, warnings %q", get.status, get.body, get.header.Get(api.HeaderAcksPrimary), get.warnings())
	}
	if a := httpDo(t, "GET", c.URL(0)+"/kv/k?r=quorum", "", nil); a.status != 200 {
		t.Fatalf("r=quorum on a ring of 2: %d %s", a.status, a.body)
	}
	if a := httpDo(t, "GET", c.URL(0)+"/kv/k?n=3", "", nil); a.status != 400 || !strings.Contains(a.body, "the ring has only 2 member(s)") {
		t.Fatalf("explicit n=3 on a ring of 2: %d %s, want 400", a.status, a.body)
	}
	if a := httpDo(t, "GET", c.URL(0)+"/kv/k?n=2", "", nil); a.status != 200 || a.warnings() != "" {
		t.Fatalf("explicit n=2: %d, warnings %q (an n given is not reduced)", a.status, a.warnings())
	}
	st := httpDo(t, "GET", c.URL(0)+"/status", "", nil)
	if !strings.Contains(st.body, "durability reduced") {
		t.Fatalf("/status lacks the warning:\n%s", st.body)
	}
}
