package client

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/quorumkv/quorumkv/api"
)

// FuzzDecodeAnswer feeds arbitrary answers (status, context header, body) to
// the decoders of a node's replies: they must never panic, must return
// either an Object or an error for a read, and a 404 must still carry the
// context.
func FuzzDecodeAnswer(f *testing.F) {
	seeds := []struct {
		status int
		ctx    string
		body   string
	}{
		{200, "ctx", "raw value"},
		{300, "c", `{"siblings":[{"value":"YQ==","content_type":"text/plain","timestamp":"2024-05-06T07:08:09Z","deleted":false,"dot":"d1"},{"value":"","deleted":true,"dot":"d2"}],"context":"c"}`},
		{300, "", `{"siblings":null}`},
		{300, "", `{"siblings":[{"value":"!!"}]}`},
		{404, "c", `{"error":"not found","code":"not_found"}`},
		{404, "", `{"error":"no such endpoint","code":"unknown_path"}`},
		{503, "", `{"error":"quorum not met","code":"quorum_not_met","acks":1,"required":3,"targets":2}`},
		{503, "", `{"acks":"x"}`},
		{400, "", `not json`},
		{204, "", ""},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ctx, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, ctx string, body []byte) {
		h := http.Header{}
		h.Set(api.HeaderContext, ctx)
		res := &response{status: status, header: h, body: body, addr: "http://127.0.0.1:1"}
		obj, err := decodeObject(res)
		if obj == nil && err == nil {
			t.Fatalf("status %d: neither object nor error", status)
		}
		if status == http.StatusNotFound && obj != nil && (obj.Found || err == nil) {
			t.Fatalf("404 decoded as found %+v / %v", obj, err)
		}
		if obj != nil && obj.Found != (len(obj.Live()) > 0) {
			t.Fatalf("Found=%v with %d live siblings", obj.Found, len(obj.Live()))
		}
		if status >= 400 {
			e := errorOf(res)
			if e.Status != status || e.Code == "" || e.Msg == "" {
				t.Fatalf("error %+v from %d %q", e, status, body)
			}
			// Decoding is a pure function of the answer.
			if e2 := errorOf(res); *e2 != *e {
				t.Fatalf("errorOf not deterministic: %+v vs %+v", e, e2)
			}
		}
		if status == http.StatusOK && obj != nil && !bytes.Equal(obj.Siblings[0].Value, body) {
			t.Fatal("200 value differs from the body")
		}
	})
}
