package auth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/api"
)

// nodeMux mimics node's routes: each handler answers its own name and the
// principal it sees.
func nodeMux() *http.ServeMux {
	mux := http.NewServeMux()
	h := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			io.WriteString(w, name+" "+p.Name)
		}
	}
	for _, pat := range []string{"GET /kv/{key...}", "HEAD /kv/{key...}", "PUT /kv/{key...}", "POST /kv/{key...}",
		"DELETE /kv/{key...}", "GET /cluster/members", "GET /cluster/ring", "GET /status", "GET /healthz",
		"GET /readyz", "GET /metrics", "POST /admin/repair", "POST /admin/leave", "POST /admin/remove"} {
		mux.Handle(pat, h(pat))
	}
	mux.Handle("/", http.NotFoundHandler())
	return mux
}

// The table, against a real server on 127.0.0.1 with a real
// client: no token 401, read token writing 403, write token on
// /admin/leave 403, /healthz open.
func TestHTTPRoles(t *testing.T) {
	a, _, err := New([]byte(testFile))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.HTTP(nodeMux(), nil))
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		method, path, token string
		status              int
		code                string // api.Error code for errors
		body                string // handler reached, for successes
	}{
		{"GET", "/healthz", "", 200, "", "GET /healthz "},
		{"GET", "/readyz", "bogus", 200, "", "GET /readyz "},
		{"GET", "/kv/a", "", 401, api.CodeUnauthorized, ""},
		{"PUT", "/kv/a", "wrong-token-0123456789", 401, api.CodeUnauthorized, ""},
		{"GET", "/status", "", 401, api.CodeUnauthorized, ""},
		{"GET", "/metrics", "", 401, api.CodeUnauthorized, ""},
		{"GET", "/cluster/members", "", 401, api.CodeUnauthorized, ""},
		{"GET", "/no/such/path", "", 401, api.CodeUnauthorized, ""},
		{"GET", "/kv/a", tokRead, 200, "", "GET /kv/{key...} grafana"},
		{"HEAD", "/kv/a", tokRead, 200, "", ""},
		{"GET", "/status", tokRead, 200, "", "GET /status grafana"},
		{"GET", "/cluster/ring", tokRead, 200, "", "GET /cluster/ring grafana"},
		{"GET", "/metrics", tokRead, 200, "", "GET /metrics grafana"},
		{"PUT", "/kv/a", tokRead, 403, api.CodeForbidden, ""},
		{"POST", "/kv/a", tokRead, 403, api.CodeForbidden, ""},
		{"DELETE", "/kv/a", tokRead, 403, api.CodeForbidden, ""},
		{"PUT", "/kv/a", tokWrite, 200, "", "PUT /kv/{key...} app"},
		{"DELETE", "/kv/a", tokWrite, 200, "", "DELETE /kv/{key...} app"},
		{"POST", "/admin/leave", tokWrite, 403, api.CodeForbidden, ""},
		{"POST", "/admin/remove?node=n2", tokWrite, 403, api.CodeForbidden, ""},
		{"POST", "/admin/repair", tokRead, 403, api.CodeForbidden, ""},
		{"POST", "/admin/leave", tokAdmin, 200, "", "POST /admin/leave ops"},
		{"PUT", "/kv/a", tokAdmin, 200, "", "PUT /kv/{key...} ops"},
		// Path tricks: the stricter reading wins.
		{"POST", "/kv/../admin/leave", tokWrite, 403, api.CodeForbidden, ""},
		{"POST", "/kv/..%2Fadmin%2Fleave", tokWrite, 403, api.CodeForbidden, ""},
		{"POST", "//admin/leave", tokWrite, 403, api.CodeForbidden, ""},
		{"GET", "/healthz/../kv/a", "", 401, api.CodeUnauthorized, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, body, tc.status)
			}
			if tc.code != "" {
				var e api.Error
				if err := json.Unmarshal(body, &e); err != nil || e.Code != tc.code || e.Error == "" {
					t.Fatalf("body %s: want code %s", body, tc.code)
				}
				if strings.Contains(string(body), tc.token) && tc.token != "" {
					t.Fatalf("error body %s echoes the token", body)
				}
			}
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer realm="quorumkv"`) {
				t.Fatalf("401 without a Bearer challenge: %q", res.Header.Get("WWW-Authenticate"))
			}
			if tc.method != "HEAD" && tc.body != "" && string(body) != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header []string
		token  string
	}{
		{[]string{"Bearer abc"}, "abc"},
		{[]string{"bearer abc"}, "abc"},
		{[]string{"BEARER   abc  "}, "abc"},
		{nil, ""},
		{[]string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, ""},
		{[]string{"Bearer"}, ""},
		{[]string{"Bearer "}, ""},
		{[]string{"Bearer a b"}, ""},
		{[]string{"Bearer a", "Bearer b"}, ""},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.header {
			h.Add("Authorization", v)
		}
		got, err := BearerToken(h)
		if got != tc.token || (err == nil) != (tc.token != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", tc.header, got, err, tc.token)
		}
	}
}

func TestHTTPNilAuthenticatorPassesThrough(t *testing.T) {
	var a *Authenticator
	next := http.NotFoundHandler()
	if h := a.HTTP(next, nil); h == nil {
		t.Fatal("nil handler")
	}
	rec := httptest.NewRecorder()
	a.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }), nil).
		ServeHTTP(rec, httptest.NewRequest("POST", "/admin/leave", nil))
	if rec.Code != 299 {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestHTTPCustomClassifier(t *testing.T) {
	a, _, _ := New([]byte(testFile))
	h := a.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(*http.Request) Action { return 0 })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/kv/a", nil)
	req.Header.Set("Authorization", "Bearer "+tokWrite)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("unset action with a write token: %d, want 403 (fail closed)", rec.Code)
	}
}

// TestClassifyHTTPForms: the stricter of the path as sent and cleaned
// wins, also for a path without its leading slash, and a clean path is
// classified without an allocation (it runs twice per request).
func TestClassifyHTTPForms(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         Action
	}{
		{"GET", "/kv/a", ActionRead},
		{"PUT", "/kv/a", ActionWrite},
		{"GET", "/healthz", ActionOpen},
		{"GET", "/healthz/../admin/leave", ActionAdmin},
		{"POST", "/kv/../admin/leave", ActionAdmin},
		{"POST", "admin/leave", ActionAdmin},
		{"GET", "healthz", ActionStatus}, // as sent: no route, so any token
		{"GET", "/kv/a//b", ActionRead},
		{"GET", "/unknown", ActionStatus},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		r.URL.Path = c.path
		if got := ClassifyHTTP(r); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.method, c.path, got, c.want)
		}
	}
	r := httptest.NewRequest("GET", "/kv/key:1", nil)
	if n := testing.AllocsPerRun(100, func() { ClassifyHTTP(r) }); n != 0 {
		t.Fatalf("ClassifyHTTP of a clean path: %v allocations", n)
	}
}
