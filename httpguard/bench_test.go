package httpguard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// headerWriter is a ResponseWriter that keeps only its header map, as
// net/http's does before the reply is written.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}

// BenchmarkGuard is the guard's work on every request: a client's
// request to the address the node listens on (Host listed), and to an IP
// address the node does not list (a load balancer's).
func BenchmarkGuard(b *testing.B) {
	g, err := New(Config{Listen: []string{"127.0.0.1:8080"}})
	if err != nil {
		b.Fatal(err)
	}
	h := g.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, host := range []string{"127.0.0.1:8080", "10.0.0.7:8080"} {
		b.Run("host="+host, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "http://"+host+"/kv/key:1", nil)
			w := &headerWriter{}
			b.ReportAllocs()
			for b.Loop() {
				w.h = make(http.Header, 4)
				h.ServeHTTP(w, r)
			}
		})
	}
}
