package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
)

// fake is a scripted node: it records requests and answers with handler.
type fake struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func newFake(t *testing.T, handler http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.body = append(f.body, string(b))
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fake) last() (*http.Request, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1], f.body[len(f.body)-1]
}

func answer(status int, headers map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func mustNew(t *testing.T, addrs ...string) *Client {
	t.Helper()
	c, err := New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNewAddresses(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
		want  string // first base URL, or "" for an error
	}{
		{"host port", []string{"127.0.0.1:8080"}, "http://127.0.0.1:8080"},
		{"url", []string{"http://127.0.0.1:8080/"}, "http://127.0.0.1:8080"},
		{"https", []string{"https://db.example:443"}, "https://db.example:443"},
		{"spaces", []string{" 127.0.0.1:1 "}, "http://127.0.0.1:1"},
		{"none", nil, ""},
		{"no port", []string{"127.0.0.1"}, ""},
		{"bad scheme", []string{"ftp://127.0.0.1:21"}, ""},
		{"path", []string{"http://127.0.0.1:1/kv"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.addrs)
			if tc.want == "" {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("New(%q) = %v, want ErrBadRequest", tc.addrs, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Addrs()[0]; got != tc.want {
				t.Fatalf("base = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := New([]string{"127.0.0.1:1"}, WithMaxIdleConnsPerHost(0)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("max idle 0: %v", err)
	}
	if _, err := New([]string{"127.0.0.1:1"}, WithRequestTimeout(-1)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("negative timeout: %v", err)
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		status            int
		code              string
		notFound, quorum  bool
		unavailable, badr bool
	}{
		{404, "not_found", true, false, false, false},
		{404, "unknown_path", false, false, false, true},
		{400, "bad_parameter", false, false, false, true},
		{413, "value_too_large", false, false, false, true},
		{405, "method_not_allowed", false, false, false, true},
		{503, "quorum_not_met", false, true, true, false},
		{503, "no_coordinator", false, false, true, false},
		{503, "shutting_down", false, false, true, false},
		{499, "canceled", false, false, false, false},
		{500, "internal", false, false, false, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status, tc.code), func(t *testing.T) {
			var err error = fmt.Errorf("wrapped: %w", &Error{Status: tc.status, Code: tc.code})
			for _, c := range []struct {
				sentinel error
				want     bool
			}{{ErrNotFound, tc.notFound}, {ErrQuorum, tc.quorum}, {ErrUnavailable, tc.unavailable}, {ErrBadRequest, tc.badr}} {
				if got := errors.Is(err, c.sentinel); got != c.want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, c.sentinel, got, c.want)
				}
			}
		})
	}
}

func TestGetDecodes(t *testing.T) {
	lm := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name     string
		status   int
		headers  map[string]string
		body     string
		wantErr  error
		found    bool
		values   []string
		deleted  []bool
		context  string
		acks     Acks
		noObject bool
	}{
		{
			name:   "one value",
			status: 200,
			headers: map[string]string{"Content-Type": "text/plain", api.HeaderContext: "ctx1", api.HeaderDot: "dot1",
				api.HeaderAcksPrimary: "2", api.HeaderAcksFallback: "1", "Last-Modified": lm.Format(http.TimeFormat)},
			body: "hello", found: true, values: []string{"hello"}, deleted: []bool{false}, context: "ctx1",
			acks: Acks{Primary: 2, Fallback: 1},
		},
		{
			name:    "siblings",
			status:  300,
			headers: map[string]string{api.HeaderContext: "ctx2"},
			body: `{"siblings":[{"value":"YQ==","content_type":"","timestamp":"2024-05-06T07:08:09Z","deleted":false,"dot":"d1"},` +
				`{"value":"","deleted":true,"dot":"d2"}],"context":"ctx2"}`,
			found: true, values: []string{"a", ""}, deleted: []bool{false, true}, context: "ctx2",
		},
		{
			name:    "not found keeps context",
			status:  404,
			headers: map[string]string{api.HeaderContext: "ctx3"},
			body:    `{"error":"not found","code":"not_found"}`,
			wantErr: ErrNotFound, context: "ctx3",
		},
		{
			name: "quorum", status: 503, body: `{"error":"get: quorum not met","code":"quorum_not_met","acks":1,"required":3}`,
			wantErr: ErrQuorum, noObject: true,
		},
		{name: "bad json siblings", status: 300, body: `{"siblings":[`, wantErr: errAny, noObject: true},
		{name: "bad base64", status: 300, body: `{"siblings":[{"value":"!!"}]}`, wantErr: errAny, noObject: true},
		{name: "not json error", status: 500, body: "boom", wantErr: errAny, noObject: true},
		{name: "odd status", status: 202, wantErr: errAny, noObject: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, answer(tc.status, tc.headers, tc.body))
			obj, err := mustNew(t, f.srv.URL).Get(t.Context(), "k")
			switch {
			case tc.wantErr == errAny && err == nil, tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			case tc.noObject:
				if obj != nil {
					t.Fatalf("obj = %+v, want nil", obj)
				}
				return
			}
			if obj.Found != tc.found || obj.Context != tc.context || obj.Acks != tc.acks {
				t.Fatalf("obj = %+v", obj)
			}
			if len(obj.Siblings) != len(tc.values) {
				t.Fatalf("siblings = %+v, want values %q", obj.Siblings, tc.values)
			}
			for i, s := range obj.Siblings {
				if string(s.Value) != tc.values[i] || s.Deleted != tc.deleted[i] {
					t.Errorf("sibling %d = %+v, want %q deleted=%v", i, s, tc.values[i], tc.deleted[i])
				}
				if !s.Timestamp.Equal(lm) && !s.Deleted {
					t.Errorf("sibling %d timestamp = %v, want %v", i, s.Timestamp, lm)
				}
			}
		})
	}
}

// errAny stands for "any error" in tables.
var errAny = errors.New("any error")

func TestQuorumErrorCounts(t *testing.T) {
	f := newFake(t, answer(503, nil, `{"error":"put: quorum not met: 1 of 3 required acks","code":"quorum_not_met",`+
		`"acks":1,"required":3,"primary_acks":1,"fallback_acks":0,"targets":2}`))
	_, err := mustNew(t, f.srv.URL).Put(t.Context(), "k", []byte("v"), W(3))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if e.Status != 503 || e.Acks != 1 || e.Required != 3 || e.PrimaryAcks != 1 || e.Targets != 2 || e.Addr != f.srv.URL {
		t.Fatalf("error = %+v", e)
	}
	if !strings.Contains(err.Error(), "1 of 3 required acks") {
		t.Fatalf("message %q lacks the node's text", err)
	}
}

func TestPutSendsOptions(t *testing.T) {
	f := newFake(t, answer(204, map[string]string{api.HeaderContext: "newctx", api.HeaderDot: "dot", api.HeaderSiblings: "2",
		api.HeaderAcksPrimary: "3", api.HeaderAcksDurable: "1", api.HeaderCoordinator: "n2"}, ""))
	c := mustNew(t, f.srv.URL)
	wr, err := c.Put(t.Context(), "a/b c?d", []byte("val"), N(3), W(2), PW(1), DW(1), Timeout(1500*time.Millisecond),
		Context("oldctx"), ContentType("text/plain"), Param("w", "all"))
	if err != nil {
		t.Fatal(err)
	}
	want := WriteResult{Context: "newctx", Dot: "dot", Siblings: 2, Acks: Acks{Primary: 3, Durable: 1}, Coordinator: "n2", Addr: f.srv.URL}
	if !reflect.DeepEqual(*wr, want) {
		t.Fatalf("result = %+v, want %+v", *wr, want)
	}
	r, body := f.last()
	if r.Method != http.MethodPut || body != "val" {
		t.Fatalf("sent %s with body %q", r.Method, body)
	}
	if got := r.URL.EscapedPath(); got != "/kv/a%2Fb%20c%3Fd" {
		t.Errorf("path = %q", got)
	}
	if got, want := r.URL.Query().Encode(), "dw=1&n=3&pw=1&timeout=1500ms&w=all"; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}
	if r.Header.Get(api.HeaderContext) != "oldctx" || r.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("headers = %v", r.Header)
	}
}

func TestOptionsThatDoNotApply(t *testing.T) {
	f := newFake(t, answer(204, nil, ""))
	c := mustNew(t, f.srv.URL)
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"r on put", func() error { _, err := c.Put(ctx, "k", nil, R(1)); return err }},
		{"pr on delete with a context", func() error { _, err := c.Delete(ctx, "k", PR(1), Context("x")); return err }},
		{"overwrite on delete", func() error { _, err := c.Delete(ctx, "k", Overwrite()); return err }},
		{"w on get", func() error { _, err := c.Get(ctx, "k", W(1)); return err }},
		{"context on get", func() error { _, err := c.Get(ctx, "k", Context("x")); return err }},
		{"local on delete", func() error { _, err := c.Delete(ctx, "k", Local()); return err }},
		{"returnbody on delete", func() error { _, err := c.Delete(ctx, "k", ReturnBody()); return err }},
		{"content type on get", func() error { _, err := c.Get(ctx, "k", ContentType("a/b")); return err }},
		{"n on members", func() error { _, err := c.Members(ctx, N(3)); return err }},
		{"empty key", func() error { _, err := c.Get(ctx, ""); return err }},
		{"node out of range", func() error { _, err := c.Get(ctx, "k", Node(1)); return err }},
		{"negative node", func() error { _, err := c.Put(ctx, "k", nil, Node(-1)); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
	if n := f.count(); n != 0 {
		t.Fatalf("the fake saw %d requests, want none", n)
	}
}

func TestRoundRobinAndNode(t *testing.T) {
	a := newFake(t, answer(204, nil, ""))
	b := newFake(t, answer(204, nil, ""))
	c := mustNew(t, a.srv.URL, b.srv.URL)
	for range 6 {
		if _, err := c.Delete(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
	}
	if a.count() != 3 || b.count() != 3 {
		t.Fatalf("round robin sent %d and %d, want 3 and 3", a.count(), b.count())
	}
	for range 4 {
		if _, err := c.Delete(t.Context(), "k", Node(1)); err != nil {
			t.Fatal(err)
		}
	}
	if a.count() != 3 || b.count() != 7 {
		t.Fatalf("Node(1) sent %d and %d, want 3 and 7", a.count(), b.count())
	}
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFailoverOnlyWhenNothingWasSent(t *testing.T) {
	live := newFake(t, answer(204, map[string]string{api.HeaderCoordinator: "n1"}, ""))
	dead := deadAddr(t)
	c := mustNew(t, dead, live.srv.URL)
	for i := range 4 {
		wr, err := c.Put(t.Context(), "k", []byte("v"))
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if wr.Addr != live.srv.URL {
			t.Fatalf("answered by %s", wr.Addr)
		}
	}
	if live.count() != 4 {
		t.Fatalf("live node saw %d puts, want 4 (each exactly once)", live.count())
	}
	// Pinned to the dead node: no failover, a connection error.
	_, err := c.Get(t.Context(), "k", Node(0))
	var oe *net.OpError
	if !errors.As(err, &oe) || live.count() != 4 {
		t.Fatalf("pinned get: err = %v, live saw %d", err, live.count())
	}

	// A node that accepted the request and then failed is not retried:
	// the write may have been applied.
	hijack := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	other := newFake(t, answer(204, nil, ""))
	c2 := mustNew(t, hijack.srv.URL, other.srv.URL)
	if _, err := c2.Put(t.Context(), "k", []byte("v")); err == nil {
		t.Fatal("put through a node that dropped the connection succeeded")
	}
	if other.count() != 0 {
		t.Fatalf("the write was retried on another node")
	}
}

// Issue 19, item 7: with WithFailover, a node that accepts connections
// but answers nothing (paused with SIGSTOP, overloaded) is skipped after
// the failover timeout, and the request goes to the next address, once.
// Without it, the request waits for its whole timeout.
func TestFailoverSkipsANodeThatDoesNotAnswer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var stuckKV sync.Mutex
	stuckWrites := 0
	stuck := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/kv/") {
			stuckKV.Lock()
			stuckWrites++
			stuckKV.Unlock()
		}
		<-release // a paused process: the connection is open, no answer
	})
	live := newFake(t, answer(204, map[string]string{api.HeaderCoordinator: "n2"}, ""))
	c, err := New([]string{stuck.srv.URL, live.srv.URL}, WithFailover(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	wr, err := c.Put(t.Context(), "k", []byte("v"))
	if err != nil || wr.Addr != live.srv.URL {
		t.Fatalf("put with the first node stuck: %+v %v", wr, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("put took %s with a 200ms failover", d)
	}
	stuckKV.Lock()
	defer stuckKV.Unlock()
	liveWrites := 0
	live.mu.Lock()
	for _, r := range live.reqs {
		if strings.HasPrefix(r.URL.Path, "/kv/") {
			liveWrites++
		}
	}
	live.mu.Unlock()
	if stuckWrites != 0 || liveWrites != 1 {
		t.Fatalf("the write reached the stuck node %d time(s) and the live one %d; want 0 and 1", stuckWrites, liveWrites)
	}

	// Only a stuck node: the error says it did not answer.
	only, err := New([]string{stuck.srv.URL}, WithFailover(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	if _, err := only.Get(t.Context(), "k"); !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("get from a stuck node: %v, want ErrNoAnswer", err)
	}
	// An unhealthy node (503 on /healthz) is skipped too.
	sick := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(204)
	})
	c3, err := New([]string{sick.srv.URL, live.srv.URL}, WithFailover(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if wr, err := c3.Put(t.Context(), "k", []byte("v")); err != nil || wr.Addr != live.srv.URL {
		t.Fatalf("put with the first node unhealthy: %+v %v", wr, err)
	}
}

func TestTimeoutMargin(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, err := New([]string{slow.srv.URL}, WithRequestTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Get(t.Context(), "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("request timeout of 100ms took %s", d)
	}
	// With Timeout the client waits longer than the node's own deadline.
	start = time.Now()
	_, err = c.Get(t.Context(), "k", Timeout(50*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond+timeoutMargin {
		t.Fatalf("gave up after %s, before the node's timeout plus the margin", d)
	}
}

func TestAnswerSizeCaps(t *testing.T) {
	big := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(MaxInfoBytes+1))
		w.WriteHeader(200)
		_, _ = w.Write([]byte("{"))
	})
	if _, err := mustNew(t, big.srv.URL).Status(t.Context()); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize declared answer: err = %v", err)
	}
	chunked := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		chunk := strings.Repeat("x", 32<<10)
		for range 4 { // 128 KiB, over the error body cap, without Content-Length
			_, _ = io.WriteString(w, chunk)
			w.(http.Flusher).Flush()
		}
	})
	if _, err := mustNew(t, chunked.srv.URL).Get(t.Context(), "k"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize streamed error: err = %v", err)
	}
}

func TestInfoCalls(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster/members", answer(200, nil,
		`{"node":"n1","members":[{"id":"n1","http":"h1","rpc":"r1","state":"alive","on_ring":true,"self":true},{"id":"n2","state":"dead","on_ring":true}]}`))
	mux.HandleFunc("GET /cluster/ring", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("n") != "2" {
			answer(400, nil, `{"error":"want n=2","code":"bad_parameter"}`)(w, r)
			return
		}
		answer(200, nil, `{"node":"n1","partitions":2,"tokens":4,"n":2,"members":["n1","n2"],"owners":[{"partition":0,"primaries":["n1","n2"]},{"partition":1,"primaries":["n2","n1"]}]}`)(w, r)
	})
	mux.HandleFunc("GET /status", answer(200, nil, `{"node":"n1","ring_size":2,"alive":1,"extra":{"x":1}}`))
	healthy := true
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if healthy {
			answer(200, nil, `{"status":"ok"}`)(w, r)
		} else {
			answer(503, nil, `{"error":"node is shutting down","code":"shutting_down"}`)(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := mustNew(t, srv.URL)
	ctx := t.Context()

	ms, err := c.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || !ms[0].Self || ms[0].State != "alive" || ms[1].State != "dead" || !ms[1].OnRing {
		t.Fatalf("members = %+v", ms)
	}
	rg, err := c.Ring(ctx, N(2))
	if err != nil {
		t.Fatal(err)
	}
	if rg.Partitions != 2 || len(rg.Owners) != 2 || rg.Owners[1].Primaries[0] != "n2" {
		t.Fatalf("ring = %+v", rg)
	}
	if _, err := c.Ring(ctx); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("ring without n: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "n1" || st.RingSize != 2 || !strings.Contains(string(st.Raw), `"extra"`) {
		t.Fatalf("status = %+v raw %s", st, st.Raw)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	healthy = false
	if err := c.Health(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("health while shutting down: %v", err)
	}
}

func TestReturnBody(t *testing.T) {
	f := newFake(t, answer(300, map[string]string{api.HeaderContext: "c", api.HeaderDot: "d", api.HeaderCoordinator: "n1", api.HeaderSiblings: "2"},
		`{"siblings":[{"value":"YQ==","dot":"d0"},{"value":"Yg==","dot":"d"}],"context":"c"}`))
	wr, err := mustNew(t, f.srv.URL).Put(t.Context(), "k", []byte("b"), ReturnBody())
	if err != nil {
		t.Fatal(err)
	}
	if wr.Object == nil || len(wr.Object.Live()) != 2 || wr.Context != "c" || wr.Siblings != 2 || wr.Dot != "d" {
		t.Fatalf("result = %+v object %+v", wr, wr.Object)
	}
	if r, _ := f.last(); r.URL.Query().Get("returnbody") != "true" {
		t.Fatalf("query = %v", r.URL.Query())
	}
}

func TestTimeoutParam(t *testing.T) {
	f := newFake(t, answer(204, nil, ""))
	c := mustNew(t, f.srv.URL)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{2 * time.Second, "2000ms"}, {1500 * time.Microsecond, "1500us"}, {time.Nanosecond, "1us"}, {0, ""}} {
		if _, err := c.Delete(t.Context(), "k", Timeout(tc.d)); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.last(); r.URL.Query().Get("timeout") != tc.want {
			t.Errorf("Timeout(%s) sent %q, want %q", tc.d, r.URL.Query().Get("timeout"), tc.want)
		}
	}
}
