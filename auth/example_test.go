package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/quorumkv/quorumkv/auth"
)

func Example() {
	file := "# NAME ROLE TOKEN\n" +
		"ops admin " + auth.HashToken("ops-token-0123456789") + "\n" +
		"app write app-token-0123456789\n"
	a, warnings, err := auth.New([]byte(file))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(warnings), "warnings")

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.Name)
	})
	h := a.HTTP(api, auth.ClassifyHTTP)

	for _, tc := range []struct{ method, path, token string }{
		{"PUT", "/kv/k", ""},
		{"PUT", "/kv/k", "app-token-0123456789"},
		{"POST", "/admin/leave", "app-token-0123456789"},
		{"POST", "/admin/leave", "ops-token-0123456789"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(tc.method, tc.path, rec.Code)
	}
	// Output:
	// 0 warnings
	// PUT /kv/k 401
	// PUT /kv/k 200
	// POST /admin/leave 403
	// POST /admin/leave 200
}
