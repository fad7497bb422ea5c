package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// fake is a Backend and a Cluster over a map, recording what the handler
// asked of it.
type fake struct {
	sets      map[string]vclock.Set
	err       error    // returned by Read and Write when set
	warnings  []string // returned by Write
	fitWarn   string   // returned by Fit
	gotParams quorum.Params
	gotOver   bool
	gotReq    quorum.PutRequest
	local     bool
}

func (f *fake) Read(_ context.Context, key []byte, p quorum.Params) (*quorum.ReadResult, error) {
	f.gotParams = p
	if f.err != nil {
		return nil, f.err
	}
	return &quorum.ReadResult{Set: f.sets[string(key)], Acks: quorum.Acks{Primary: 2}}, nil
}

func (f *fake) Write(_ context.Context, req quorum.PutRequest, overwrite bool) (*quorum.WriteResult, []string, error) {
	f.gotParams, f.gotOver, f.gotReq = req.Params, overwrite, req
	if f.err != nil {
		return nil, nil, f.err
	}
	if req.Value.Deleted && overwrite && len(f.sets[string(req.Key)].Live()) == 0 {
		return nil, nil, nil // a delete of nothing writes nothing
	}
	s := vclock.Set{Siblings: []vclock.Sibling{{Dot: dot(9), Value: req.Value}}}
	return &quorum.WriteResult{Set: s, Dot: dot(9), Acks: quorum.Acks{Primary: 2, Durable: 1, Zones: 2}, Coordinator: "n1"}, f.warnings, nil
}

func (f *fake) Fit(p quorum.Params) (quorum.Params, string, error) { return p, f.fitWarn, nil }
func (f *fake) DefaultN() int                                      { return 3 }
func (f *fake) Members() []api.Member                              { return []api.Member{{ID: "n1", State: "alive", OnRing: true}} }
func (f *fake) Ring() *ring.Ring                                   { return nil }
func (f *fake) Status() api.Status                                 { return api.Status{Node: "n1", RingSize: 3} }
func (f *fake) ReadLocal(key []byte) (vclock.Set, bool, error) {
	f.local = true
	s, ok := f.sets[string(key)]
	return s, ok, nil
}

// plainContexts encodes contexts without a signature.
type plainContexts struct{}

func (plainContexts) EncodeContext(v vclock.Vector) string { return vclock.EncodeContext(v) }
func (plainContexts) DecodeContext(s string) (vclock.Vector, error) {
	return vclock.DecodeContext(s)
}

func dot(c uint64) vclock.Dot {
	return vclock.Dot{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: c}
}

func newHandler(f *fake) *Handler {
	return New(f, f, Config{
		NodeID: "n1", MaxKeySize: 16, MaxValueSize: 64,
		Defaults:        quorum.Params{N: 3, R: 2, W: 2, Timeout: time.Second},
		Contexts:        plainContexts{},
		Log:             slog.New(slog.DiscardHandler),
		Requests:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"op", "code"}),
		Latency:         prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "l"}, []string{"op"}),
		QuorumFailures:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "q"}, []string{"op"}),
		SiblingsPerRead: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s"}),
	})
}

func do(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// apiError decodes an error body and checks its status and code.
func apiError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) api.Error {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if w.Code != status || e.Code != code {
		t.Fatalf("answer %d %+v, want %d %s", w.Code, e, status, code)
	}
	return e
}

func TestReads(t *testing.T) {
	one := vclock.Set{Siblings: []vclock.Sibling{{Dot: dot(1), Value: vclock.Value{Data: []byte("v1"), ContentType: "text/plain"}}}}
	two := vclock.Set{Siblings: []vclock.Sibling{{Dot: dot(1), Value: vclock.Value{Data: []byte("a")}}, {Dot: dot(2), Value: vclock.Value{Data: []byte("b")}}}}
	f := &fake{sets: map[string]vclock.Set{"one": one, "two": two}}
	h := newHandler(f)

	apiError(t, do(h, "GET", "/kv/missing", ""), 404, api.CodeNotFound)

	w := do(h, "GET", "/kv/one?r=quorum&timeout=250", "")
	if w.Code != 200 || w.Body.String() != "v1" || w.Header().Get("Content-Type") != "text/plain" ||
		w.Header().Get(api.HeaderSiblings) != "1" || w.Header().Get(api.HeaderAcksPrimary) != "2" ||
		w.Header().Get(api.HeaderDot) != vclock.EncodeDot(dot(1)) {
		t.Fatalf("GET one: %d %q %v", w.Code, w.Body, w.Header())
	}
	// Both timeout forms reach the coordinator (quorum.ParseParams).
	if f.gotParams != (quorum.Params{R: 2, Timeout: 250 * time.Millisecond}) {
		t.Fatalf("params %+v", f.gotParams)
	}
	do(h, "GET", "/kv/one?timeout=2s", "")
	if f.gotParams.Timeout != 2*time.Second {
		t.Fatalf("timeout=2s gave %+v", f.gotParams)
	}

	w = do(h, "GET", "/kv/two", "")
	var sibs api.Siblings
	if err := json.Unmarshal(w.Body.Bytes(), &sibs); err != nil || w.Code != 300 || len(sibs.Siblings) != 2 || sibs.Siblings[1].Value != "Yg==" {
		t.Fatalf("GET two: %d %q %v", w.Code, w.Body, err)
	}

	w = do(h, "HEAD", "/kv/one?local=true", "")
	if w.Code != 200 || w.Body.Len() != 0 || !f.local || w.Header().Get(api.HeaderLocal) != "n1" {
		t.Fatalf("local HEAD: %d %q local=%v %v", w.Code, w.Body, f.local, w.Header())
	}
}

func TestBadRequests(t *testing.T) {
	h := newHandler(&fake{})
	for _, tc := range []struct {
		method, target, body string
		header               []string
		status               int
		code, param          string
	}{
		{"GET", "/kv/k?rr=3", "", nil, 400, api.CodeBadParameter, "rr"},
		{"GET", "/kv/k?r=1&r=2", "", nil, 400, api.CodeBadParameter, "r"},
		{"GET", "/kv/k?timeout=soon", "", nil, 400, api.CodeBadParameter, "timeout"},
		{"GET", "/kv/k?timeout=6m", "", nil, 400, api.CodeBadParameter, "timeout"},
		{"GET", "/kv/k?local=maybe", "", nil, 400, api.CodeBadParameter, "local"},
		{"GET", "/kv/" + strings.Repeat("k", 17), "", nil, 400, api.CodeBadParameter, "key"},
		{"GET", "/kv/", "", nil, 400, api.CodeBadParameter, "key"},
		{"PUT", "/kv/k?r=2", "v", nil, 400, api.CodeBadParameter, "r"},
		{"PUT", "/kv/k?pz=-1", "v", nil, 400, api.CodeBadParameter, "pz"},
		{"DELETE", "/kv/k?pz=many", "", nil, 400, api.CodeBadParameter, "pz"},
		{"GET", "/kv/k?pz=2", "", nil, 400, api.CodeBadParameter, "pz"}, // a read reaches no zones
		{"PUT", "/kv/k", strings.Repeat("v", 65), nil, 413, api.CodeValueTooLarge, ""},
		{"PUT", "/kv/k", "v", []string{"Content-Type", "a/b; ="}, 400, api.CodeBadParameter, "content-type"},
		{"PUT", "/kv/k", "v", []string{api.HeaderContext, "not a context"}, 400, api.CodeBadParameter, "context"},
		{"PUT", "/kv/k", "v", []string{api.HeaderOverwrite, "yes"}, 400, api.CodeBadParameter, "overwrite"},
		{"DELETE", "/kv/k?returnbody=true", "", nil, 400, api.CodeBadParameter, "returnbody"},
		{"PATCH", "/kv/k", "", nil, 405, api.CodeMethodNotAllowed, ""},
		{"GET", "/nowhere", "", nil, 404, api.CodeUnknownPath, ""},
	} {
		w := do(h, tc.method, tc.target, tc.body, tc.header...)
		e := apiError(t, w, tc.status, tc.code)
		if e.Param != tc.param {
			t.Errorf("%s %s: param %q, want %q (%s)", tc.method, tc.target, e.Param, tc.param, e.Error)
		}
	}
}

func TestWrites(t *testing.T) {
	f := &fake{sets: map[string]vclock.Set{}, warnings: []string{"siblings: 2"}, fitWarn: "durability reduced: n=1"}
	h := newHandler(f)

	w := do(h, "PUT", "/kv/k?w=all&overwrite=true&pz=2", "hello", "Content-Type", "text/plain")
	if w.Code != 204 || !f.gotOver || f.gotParams.W != 3 || f.gotParams.PZ != 2 || string(f.gotReq.Value.Data) != "hello" ||
		w.Header().Get(api.HeaderCoordinator) != "n1" || w.Header().Get(api.HeaderAcksDurable) != "1" || w.Header().Get(api.HeaderAcksZones) != "2" ||
		strings.Join(w.Header().Values(api.HeaderWarning), "|") != "durability reduced: n=1|siblings: 2" {
		t.Fatalf("PUT: %d %v over=%v params=%+v", w.Code, w.Header(), f.gotOver, f.gotParams)
	}
	w = do(h, "PUT", "/kv/k?returnbody=true", "v2", api.HeaderOverwrite, "false")
	if w.Code != 200 || w.Body.String() != "v2" || f.gotOver {
		t.Fatalf("PUT returnbody: %d %q over=%v", w.Code, w.Body, f.gotOver)
	}

	// A DELETE without a context deletes what a read sees: nothing here.
	apiError(t, do(h, "DELETE", "/kv/k", ""), 404, api.CodeNotFound)
	if !f.gotOver || !f.gotReq.Value.Deleted {
		t.Fatalf("DELETE without a context: over=%v req=%+v", f.gotOver, f.gotReq)
	}
	ctx := vclock.EncodeContext(vclock.NewVector(vclock.Entry{Actor: dot(1).Actor, Counter: 1}))
	if w := do(h, "DELETE", "/kv/k", "", api.HeaderContext, ctx); w.Code != 204 || f.gotOver || len(f.gotReq.Context) != 1 {
		t.Fatalf("DELETE with a context: %d over=%v req=%+v", w.Code, f.gotOver, f.gotReq)
	}
	apiError(t, do(h, "DELETE", "/kv/k?r=2", "", api.HeaderContext, ctx), 400, api.CodeBadParameter)
}

func TestErrors(t *testing.T) {
	f := &fake{}
	h := newHandler(f)
	f.err = &quorum.QuorumError{Op: "get", Required: 2, Acks: 1, Targets: 3}
	e := apiError(t, do(h, "GET", "/kv/k", ""), 503, api.CodeQuorumNotMet)
	if e.Acks == nil || *e.Acks != 1 || *e.Required != 2 || *e.Targets != 3 {
		t.Fatalf("quorum error body %+v", e)
	}
	f.err = &quorum.QuorumError{Op: "put", Required: 2, Acks: 2, RequiredZones: 3, ZoneAcks: 2, Targets: 3}
	e = apiError(t, do(h, "PUT", "/kv/k?pz=3", "v"), 503, api.CodeQuorumNotMet)
	if e.RequiredZones == nil || *e.RequiredZones != 3 || *e.ZoneAcks != 2 || !strings.Contains(e.Error, "2 of 3 required zones") {
		t.Fatalf("zone quorum error body %+v", e)
	}
	f.err = quorum.ErrNotJoined
	apiError(t, do(h, "PUT", "/kv/k", "v"), 503, api.CodeUnavailable)
	f.err = quorum.ErrClosed
	apiError(t, do(h, "DELETE", "/kv/k", ""), 503, api.CodeShuttingDown)
	f.err = context.Canceled
	apiError(t, do(h, "GET", "/kv/k", ""), 499, api.CodeCanceled)
	f.err = errors.New("disk on fire")
	apiError(t, do(h, "GET", "/kv/k", ""), 500, api.CodeInternal)
}

func TestClusterViewsAndAddedRoutes(t *testing.T) {
	h := newHandler(&fake{})
	h.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	if w := do(h, "GET", "/healthz", ""); w.Code != 200 || w.Body.String() != "ok" {
		t.Fatalf("added route: %d %q", w.Code, w.Body)
	}
	var st api.Status
	if w := do(h, "GET", "/status", ""); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &st) != nil || st.Node != "n1" || st.RingSize != 3 {
		t.Fatalf("status: %d %q", w.Code, w.Body)
	}
	var ms api.Members
	if w := do(h, "GET", "/cluster/members", ""); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &ms) != nil || len(ms.Members) != 1 {
		t.Fatalf("members: %d %q", w.Code, w.Body)
	}
}

// TestHeaderNamesCanonical: setHeaders stores names as given, so every
// name it is given must already be canonical, or clients would find
// two spellings (or none) of a header.
func TestHeaderNamesCanonical(t *testing.T) {
	for _, name := range []string{api.HeaderContext, api.HeaderDot, api.HeaderSiblings, api.HeaderAcksPrimary,
		api.HeaderAcksFallback, api.HeaderAcksDurable, api.HeaderCoordinator, "Content-Type", "Content-Length", "Last-Modified"} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("header %q is not canonical (%q)", name, c)
		}
	}
	// And the answers carry them as Header.Get finds them.
	f := &fake{sets: map[string]vclock.Set{}}
	w := do(newHandler(f), http.MethodPut, "/kv/k", "v")
	for _, name := range []string{api.HeaderAcksPrimary, api.HeaderAcksDurable, api.HeaderDot, api.HeaderCoordinator, api.HeaderContext, api.HeaderSiblings} {
		if len(w.Header().Values(name)) != 1 {
			t.Errorf("PUT answer has not one %s: %v", name, w.Header())
		}
	}
}

// TestGetFraming: over a real server, a GET of one sibling is sized with
// Content-Length (not chunked) whether the value fits net/http's buffer
// (net/http sizes it; the handler no longer sets it) or not (the handler
// sets it; the reply is paced), and so is a HEAD, which writes no body.
// Several siblings (JSON) are sized too when small.
func TestGetFraming(t *testing.T) {
	small, big := strings.Repeat("s", 100), strings.Repeat("b", unpacedReply+1)
	sib := func(data string) vclock.Set {
		return vclock.Set{Siblings: []vclock.Sibling{{Dot: dot(1), Value: vclock.Value{Data: []byte(data)}}}}
	}
	f := &fake{sets: map[string]vclock.Set{"small": sib(small), "big": sib(big), "edge": sib(big[:unpacedReply]), "empty": sib(""),
		"two": {Siblings: []vclock.Sibling{{Dot: dot(1), Value: vclock.Value{Data: []byte("a")}}, {Dot: dot(2), Value: vclock.Value{Data: []byte("b")}}}}}}
	h := newHandler(f)
	h.cfg.MaxValueSize = 1 << 20
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		method, key string
		status      int
		size        int
	}{
		{"GET", "small", 200, len(small)},
		{"GET", "edge", 200, unpacedReply},
		{"GET", "big", 200, len(big)},
		{"GET", "empty", 200, 0},
		{"HEAD", "small", 200, len(small)},
		{"HEAD", "big", 200, len(big)},
		{"GET", "two", 300, -1},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+"/kv/"+c.key, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.key, err)
		}
		if resp.StatusCode != c.status || len(resp.TransferEncoding) != 0 || resp.ContentLength < 0 {
			t.Fatalf("%s %s: %d, Transfer-Encoding %v, Content-Length %d", c.method, c.key, resp.StatusCode, resp.TransferEncoding, resp.ContentLength)
		}
		if c.size >= 0 && resp.ContentLength != int64(c.size) {
			t.Fatalf("%s %s: Content-Length %d, want %d", c.method, c.key, resp.ContentLength, c.size)
		}
		if want := int(resp.ContentLength); c.method == "HEAD" && len(body) != 0 || c.method == "GET" && len(body) != want {
			t.Fatalf("%s %s: body of %d bytes, Content-Length %d", c.method, c.key, len(body), want)
		}
		if c.method == "GET" && c.status == 200 && string(body) != string(f.sets[c.key].Siblings[0].Value.Data) {
			t.Fatalf("GET %s: body %.40q", c.key, body)
		}
	}
}

// TestRequestsCounted: every /kv request counts once under its op and
// status, whether the status is one whose counter the handler keeps
// (200, 204, 300, 404) or another (400), and no series appears before a
// request of it.
func TestRequestsCounted(t *testing.T) {
	f := &fake{sets: map[string]vclock.Set{"one": {Siblings: []vclock.Sibling{{Dot: dot(1), Value: vclock.Value{Data: []byte("v")}}}}}}
	h := newHandler(f)
	if n := seriesOf(h.cfg.Requests); n != 0 {
		t.Fatalf("%d series before any request", n)
	}
	for range 3 {
		do(h, "GET", "/kv/one", "")
	}
	do(h, "GET", "/kv/missing", "")
	do(h, "PUT", "/kv/one", "v")
	do(h, "PUT", "/kv/one", "v")
	do(h, "GET", "/kv/one?rr=2", "")
	do(h, "GET", "/kv/one?rr=2", "")
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.cfg.Requests)
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 {
		t.Fatalf("gather: %d families, %v", len(fams), err)
	}
	got := map[string]float64{}
	for _, m := range fams[0].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		got[labels["op"]+" "+labels["code"]] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"get 200": 3, "get 404": 1, "put 204": 2, "get 400": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests by op and code: %v, want %v", got, want)
	}
}

// seriesOf counts the series vec holds.
func seriesOf(vec *prometheus.CounterVec) int {
	ch := make(chan prometheus.Metric, 64)
	vec.Collect(ch)
	close(ch)
	return len(ch)
}
