package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/vclock"
)

// discardWriter is a ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }

// SetReadDeadline and SetWriteDeadline stand for the connection's, as
// net/http's writer has them (the paced body reader and reply set them).
func (d *discardWriter) SetReadDeadline(time.Time) error  { return nil }
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkHandler is the HTTP front's own work for a PUT (an overwrite of
// a 100-byte value, as kvload sends) and a GET of a one-sibling key, over
// a backend that answers at once (and a GET of an absent key, 404): what the handler costs per request,
// apart from net/http's and the coordinator's (a copy of the request, one
// allocation, is the benchmark's own).
func BenchmarkHandler(b *testing.B) {
	value := bytes.Repeat([]byte{'x'}, 100)
	f := &fake{sets: map[string]vclock.Set{"key:1": {Context: vclock.Vector{{Actor: dot(1).Actor, Counter: 1}},
		Siblings: []vclock.Sibling{{Dot: dot(1), Value: vclock.Value{Data: value, Timestamp: 1}}}}}}
	h := newHandler(f)
	h.cfg.MaxValueSize = 1 << 20
	for _, op := range []string{"put", "get", "get-absent"} {
		b.Run("op="+op, func(b *testing.B) {
			body := bytes.NewReader(value)
			r := httptest.NewRequest(http.MethodGet, "/kv/key:1", nil)
			if op == "get-absent" {
				r = httptest.NewRequest(http.MethodGet, "/kv/key:2", nil)
			}
			if op == "put" {
				r = httptest.NewRequest(http.MethodPut, "/kv/key:1", body)
				r.Header.Set("X-Quorumkv-Overwrite", "true")
				r.Header.Set("Content-Length", "100")
				r.ContentLength = 100
			}
			want := map[string]int{"put": http.StatusNoContent, "get": http.StatusOK, "get-absent": http.StatusNotFound}[op]
			w := &discardWriter{}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(value)
				// A fresh request each time, as net/http gives: one
				// reused would hide what the handler sets on it.
				fresh := *r
				fresh.Body = io.NopCloser(body)
				w.h, w.status = http.Header{}, 0
				h.ServeHTTP(w, &fresh)
				if w.status != want {
					b.Fatalf("status %d, want %d", w.status, want)
				}
			}
		})
	}
}
