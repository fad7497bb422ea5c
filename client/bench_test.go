package client

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/quorumkv/quorumkv/api"
)

// The client's own cost per request: a loopback httptest server that
// answers at once, so the figures are the client plus net/http on both ends,
// per value size.
func BenchmarkClient(b *testing.B) {
	for _, size := range []int{100, 4 << 10, 64 << 10} {
		value := make([]byte, size)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			h := w.Header()
			h.Set(api.HeaderContext, "AZGTom4xzzvcAwjBxKRrAQ")
			h.Set(api.HeaderAcksPrimary, "2")
			if r.Method == http.MethodGet {
				h.Set(api.HeaderDot, "AZOibjHPO9wDCMHEpGsB")
				h.Set("Content-Length", strconv.Itoa(size))
				_, _ = w.Write(value)
				return
			}
			h.Set(api.HeaderDot, "AZOibjHPO9wDCMHEpGsB")
			w.WriteHeader(http.StatusNoContent)
		}))
		c, err := New([]string{srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("op=get/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := c.Get(b.Context(), "bench/key", R(2)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("op=put/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := c.Put(b.Context(), "bench/key", value, W(2), Context("AZGTom4xzzvcAwjBxKRrAQ")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("op=get-parallel/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Get(b.Context(), "bench/key"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		c.Close()
		srv.Close()
	}
}
