package httpguard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/api"
)

var testConfig = Config{
	Listen:       []string{"0.0.0.0:8080", "10.1.2.3:8080"},
	Advertised:   []string{"kv-0.kv.default.svc.cluster.local:8080"},
	AllowedHosts: []string{"kv.example.com", "*.internal.example.org", "Bare.Example.Net:443"},
	CORSOrigins:  []string{"https://app.example.com", "http://localhost:3000"},
}

func newGuard(t *testing.T, cfg Config) *Guard {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// reached answers 200 "reached" when a request gets through.
var reached = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") })

func TestHostAllowed(t *testing.T) {
	g := newGuard(t, testConfig)
	tests := []struct {
		host string
		ok   bool
	}{
		{"", true},
		{"localhost", true}, {"localhost:8080", true}, {"LOCALHOST.", true}, {"app.localhost:8080", true},
		{"127.0.0.1:8080", true}, {"127.8.9.10", true}, {"[::1]:8080", true}, {"[::1]", true},
		{"10.1.2.3:8080", true}, {"192.168.7.7:8080", true}, {"[2001:db8::1]:80", true},
		{"kv-0.kv.default.svc.cluster.local:8080", true},
		{"kv.example.com", true}, {"KV.Example.COM:9999", true},
		{"a.internal.example.org", true}, {"a.b.internal.example.org:1", true},
		{"internal.example.org", false}, // "*.x" is below x, not x itself
		{"bare.example.net", true},
		{"evil.com", false}, {"evil.com:8080", false}, {"localhost.evil.com", false},
		{"kv.example.com.evil.com", false}, {"127.0.0.1.nip.io:8080", false},
		{"xinternal.example.org", false},
		{"kv.example.com@evil.com", false}, {"evil.com/x", false},
	}
	for _, tc := range tests {
		if got := g.HostAllowed(tc.host); got != tc.ok {
			t.Errorf("HostAllowed(%q) = %v, want %v", tc.host, got, tc.ok)
		}
	}
	if !newGuard(t, Config{AllowedHosts: []string{"*"}}).HostAllowed("evil.com") {
		t.Error(`"*" does not allow every host`)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{AllowedHosts: []string{"*."}},
		{AllowedHosts: []string{"http://x.com"}},
		{AllowedHosts: []string{"a b"}},
		{AllowedHosts: []string{""}},
		{AllowedHosts: []string{"*.*.x"}},
		{CORSOrigins: []string{"*"}},
		{CORSOrigins: []string{"app.example.com"}},
		{CORSOrigins: []string{"ftp://app.example.com"}},
		{CORSOrigins: []string{"https://app.example.com/path"}},
		{CORSOrigins: []string{"https://user@app.example.com"}},
		{CORSOrigins: []string{"https://"}},
		{CORSOrigins: []string{"null"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

type req struct {
	method, target, host string
	header               map[string]string
}

func serve(g *Guard, rq req) *httptest.ResponseRecorder {
	r := httptest.NewRequest(rq.method, rq.target, strings.NewReader("SET x y\r\n"))
	r.Host = rq.host
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	g.Handler(reached).ServeHTTP(rec, r)
	return rec
}

// Each attack of the issue, and the requests that must still pass.
func TestHandler(t *testing.T) {
	g := newGuard(t, testConfig)
	tests := []struct {
		name   string
		rq     req
		status int
		code   string
	}{
		{"cross-origin text/plain POST", req{"POST", "/kv/k", "127.0.0.1:8080", map[string]string{
			"Origin": "https://evil.example", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}}, 403, api.CodeForbidden},
		{"cross-origin POST to /admin/leave", req{"POST", "/admin/leave", "localhost:8080", map[string]string{
			"Origin": "http://attacker.test"}}, 403, api.CodeForbidden},
		{"same-site other port", req{"PUT", "/kv/k", "localhost:8080", map[string]string{
			"Origin": "http://localhost:3001", "Sec-Fetch-Site": "same-site"}}, 403, api.CodeForbidden},
		{"opaque origin (sandboxed page)", req{"POST", "/kv/k", "localhost:8080", map[string]string{"Origin": "null"}}, 403, api.CodeForbidden},
		{"no-cors GET from another site", req{"GET", "/kv/k", "localhost:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, api.CodeForbidden},
		{"DNS rebinding", req{"PUT", "/kv/k", "rebind.attacker.test:8080", nil}, 403, api.CodeForbidden},
		{"DNS rebinding, same origin by the browser's view", req{"POST", "/admin/leave", "rebind.attacker.test:8080", map[string]string{
			"Origin": "http://rebind.attacker.test:8080", "Sec-Fetch-Site": "same-origin"}}, 403, api.CodeForbidden},
		{"semicolon in query", req{"PUT", "/kv/k?w=3;x=1", "localhost:8080", nil}, 400, api.CodeBadParameter},
		{"encoded semicolon is a value", req{"PUT", "/kv/k?w=3%3Bx", "localhost:8080", nil}, 200, ""},
		{"curl", req{"PUT", "/kv/k?w=3", "127.0.0.1:8080", nil}, 200, ""},
		{"advertised name", req{"GET", "/status", "kv-0.kv.default.svc.cluster.local:8080", nil}, 200, ""},
		{"allowed host", req{"GET", "/status", "kv.example.com", nil}, 200, ""},
		{"typed URL", req{"GET", "/kv/k", "localhost:8080", map[string]string{"Sec-Fetch-Site": "none"}}, 200, ""},
		{"allowed origin", req{"PUT", "/kv/k", "kv.example.com", map[string]string{
			"Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"}}, 200, ""},
		{"allowed origin, explicit default port", req{"PUT", "/kv/k", "kv.example.com", map[string]string{
			"Origin": "https://APP.example.com:443"}}, 200, ""},
		{"allowed origin's other port", req{"PUT", "/kv/k", "kv.example.com", map[string]string{
			"Origin": "http://localhost:3001"}}, 403, api.CodeForbidden},
		{"same origin", req{"POST", "/kv/k", "kv.example.com:8080", map[string]string{
			"Origin": "http://kv.example.com:8080", "Sec-Fetch-Site": "same-origin"}}, 200, ""},
		{"same origin, default port", req{"POST", "/kv/k", "kv.example.com", map[string]string{
			"Origin": "http://kv.example.com"}}, 200, ""},
		{"https origin to http node is cross-origin", req{"POST", "/kv/k", "kv.example.com:8080", map[string]string{
			"Origin": "https://kv.example.com:8080"}}, 403, api.CodeForbidden},
		{"preflight of an allowed origin", req{"OPTIONS", "/kv/k", "localhost:8080", map[string]string{
			"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT",
			"Access-Control-Request-Headers": "authorization,x-quorumkv-context"}}, 204, ""},
		{"preflight of another origin", req{"OPTIONS", "/kv/k", "localhost:8080", map[string]string{
			"Origin": "http://evil.test", "Access-Control-Request-Method": "PUT"}}, 403, api.CodeForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(g, tc.rq)
			if rec.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.status)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
				"Cross-Origin-Resource-Policy": "same-origin"} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			switch {
			case tc.code != "":
				var e api.Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != tc.code {
					t.Fatalf("body %s, want code %s", rec.Body, tc.code)
				}
				if rec.Header().Get("Access-Control-Allow-Origin") != "" {
					t.Fatal("refusal carries Access-Control-Allow-Origin")
				}
			case tc.status == 200 && rec.Body.String() != "reached":
				t.Fatalf("body %q: handler not reached", rec.Body)
			}
		})
	}
}

func TestCORSHeaders(t *testing.T) {
	g := newGuard(t, testConfig)
	rec := serve(g, req{"OPTIONS", "/kv/k", "localhost:8080", map[string]string{
		"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"}})
	h := rec.Header()
	if h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), api.HeaderContext) ||
		h.Get("Access-Control-Allow-Credentials") != "" || rec.Body.Len() != 0 {
		t.Fatalf("preflight answer: %d %v %q", rec.Code, h, rec.Body)
	}
	rec = serve(g, req{"GET", "/kv/k", "localhost:8080", map[string]string{"Origin": "http://localhost:3000"}})
	h = rec.Header()
	if h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || !strings.Contains(h.Get("Vary"), "Origin") ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), api.HeaderContext) {
		t.Fatalf("CORS answer headers: %v", h)
	}
	// An OPTIONS without Origin is not a preflight: the API answers it.
	if rec := serve(g, req{"OPTIONS", "/kv/k", "localhost:8080", nil}); rec.Body.String() != "reached" {
		t.Fatalf("plain OPTIONS: %d %q", rec.Code, rec.Body)
	}
}

// The browser attacks through a real server on 127.0.0.1 and a real
// client: the body of a cross-origin text/plain POST never reaches the
// handler.
func TestHandlerRealServer(t *testing.T) {
	g := newGuard(t, Config{})
	var got []string
	srv := httptest.NewServer(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.String()+" "+string(b))
	})))
	defer srv.Close()
	do := func(method, url, host string, hdr map[string]string) int {
		r, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader("v"))
		if host != "" {
			r.Host = host
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		res, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := do("POST", srv.URL+"/kv/k", "", map[string]string{"Origin": "http://evil.test", "Content-Type": "text/plain"}); s != 403 {
		t.Errorf("cross-origin POST: %d", s)
	}
	if s := do("POST", srv.URL+"/admin/leave", "attacker.test", nil); s != 403 {
		t.Errorf("rebound Host: %d", s)
	}
	if s := do("PUT", srv.URL+"/kv/k?w=3;x=1", "", nil); s != 400 {
		t.Errorf("';' query: %d", s)
	}
	if s := do("PUT", srv.URL+"/kv/k?w=3", "", nil); s != 200 {
		t.Errorf("plain PUT: %d", s)
	}
	if len(got) != 1 || got[0] != "PUT /kv/k?w=3 v" {
		t.Fatalf("handler saw %q, want only the plain PUT", got)
	}
}

// FuzzHandler: Host, Origin, Sec-Fetch-Site and the query are untrusted
// bytes; the guard never panics, always sets its headers, and lets a
// request through only with an allowed Host and no ';' in the query.
func FuzzHandler(f *testing.F) {
	f.Add("localhost:8080", "http://localhost:3000", "", "w=3")
	f.Add("evil.test", "", "cross-site", "")
	f.Add("[::1", "http://[::1", "same-origin", "a;b")
	f.Add("kv.example.com:x", "https://app.example.com:99999", "", "")
	g, err := New(testConfig)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, origin, site, query string) {
		r := httptest.NewRequest("POST", "/kv/k", nil)
		r.Host, r.URL.RawQuery = host, query
		r.Header["Origin"] = []string{origin}
		r.Header["Sec-Fetch-Site"] = []string{site}
		rec := httptest.NewRecorder()
		g.Handler(reached).ServeHTTP(rec, r)
		if rec.Header().Get("Content-Security-Policy") != "sandbox" {
			t.Fatal("no CSP")
		}
		if rec.Body.String() == "reached" && (!g.HostAllowed(host) || strings.Contains(query, ";")) {
			t.Fatalf("host %q query %q reached the handler", host, query)
		}
	})
}

// TestGuardHeaders: the defence headers are set under their canonical
// names, one value each, and a handler that adds to one of them changes
// none of the others (their values share one array).
func TestGuardHeaders(t *testing.T) {
	g := newGuard(t, testConfig)
	addTo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Content-Type-Options", "extra")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
	})
	for i, h := range []http.Handler{reached, addTo} {
		rec := httptest.NewRecorder()
		g.Handler(h).ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8080/kv/k", nil))
		want := map[string][]string{"X-Content-Type-Options": {"nosniff"}, "Content-Security-Policy": {"sandbox"},
			"Cross-Origin-Resource-Policy": {"same-origin"}}
		if i == 1 {
			want["X-Content-Type-Options"] = []string{"nosniff", "extra"}
			want["Content-Security-Policy"] = []string{"default-src 'none'"}
		}
		for k, v := range want {
			if http.CanonicalHeaderKey(k) != k || strings.Join(rec.Header()[k], "|") != strings.Join(v, "|") {
				t.Errorf("%s: %q, want %q", k, rec.Header()[k], v)
			}
		}
	}
}
