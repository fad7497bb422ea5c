package httpguard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/quorumkv/quorumkv/httpguard"
)

func Example() {
	g, err := httpguard.New(httpguard.Config{
		Listen:      []string{"0.0.0.0:8080"},
		Advertised:  []string{"kv-0.example.com:8080"},
		CORSOrigins: []string{"https://app.example.com"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := g.Handler(api)

	for _, tc := range []struct{ host, origin, target string }{
		{"kv-0.example.com:8080", "", "/kv/k?w=3"},
		{"kv-0.example.com:8080", "https://app.example.com", "/kv/k"},
		{"kv-0.example.com:8080", "https://evil.example", "/kv/k"},
		{"rebound.evil.example:8080", "", "/kv/k"},
		{"127.0.0.1:8080", "", "/kv/k?w=3;x=1"},
	} {
		req := httptest.NewRequest("PUT", tc.target, nil)
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, tc.host, tc.origin, tc.target)
	}
	fmt.Println(httpguard.IsHTTP([]byte("POST / HTTP/1.1\r\n")), httpguard.IsHTTP([]byte("SET k v\r\n")))
	// Output:
	// 200 kv-0.example.com:8080  /kv/k?w=3
	// 200 kv-0.example.com:8080 https://app.example.com /kv/k
	// 403 kv-0.example.com:8080 https://evil.example /kv/k
	// 403 rebound.evil.example:8080  /kv/k
	// 400 127.0.0.1:8080  /kv/k?w=3;x=1
	// true false
}
