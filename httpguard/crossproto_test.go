package httpguard

import (
	"bytes"
	"strings"
	"testing"
)

// Requests as browsers send them when a page points fetch, an <img>, a
// <form> or a WebSocket at the RESP port (captured from Chrome and
// Firefox, trimmed of headers that do not matter here).
var browserPayloads = map[string]string{
	"fetch no-cors text/plain POST (Chrome)": "POST / HTTP/1.1\r\nHost: 127.0.0.1:6379\r\nConnection: keep-alive\r\n" +
		"Content-Length: 27\r\nsec-ch-ua-platform: \"Linux\"\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Content-Type: text/plain;charset=UTF-8\r\nAccept: */*\r\nOrigin: https://evil.example\r\n" +
		"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n\r\n" +
		"SET pwned 1\r\nCONFIG GET *\r\n",
	"form POST (Firefox)": "POST /x HTTP/1.1\r\nHost: localhost:6379\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Content-Type: multipart/form-data; boundary=----geckoformboundary\r\nContent-Length: 120\r\nOrigin: null\r\n\r\n" +
		"------geckoformboundary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nSET pwned 1\r\n",
	"img GET": "GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:6379\r\nAccept: image/avif,image/webp,*/*\r\n" +
		"Sec-Fetch-Dest: image\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Site: cross-site\r\n\r\n",
	"WebSocket upgrade": "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:6379\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://evil.example\r\nSec-WebSocket-Version: 13\r\n\r\n",
	"HTTP/1.0 HEAD":       "HEAD / HTTP/1.0\r\n\r\n",
	"HTTP/2 preface":      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"curl OPTIONS":        "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:6379\r\nUser-Agent: curl/8.5.0\r\n\r\n",
	"absolute-form proxy": "GET http://127.0.0.1:6379/ HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n",
}

// Each payload is caught on its first line, before any of its lines could
// run as a command.
func TestIsHTTPBrowserPayloads(t *testing.T) {
	for name, p := range browserPayloads {
		first, _, _ := strings.Cut(p, "\n")
		if !IsHTTP([]byte(first)) {
			t.Errorf("%s: first line %q not caught", name, first)
		}
		// A Host: header line is caught too (Redis's second check).
		for _, line := range strings.Split(p, "\n") {
			if strings.HasPrefix(strings.ToLower(line), "host:") && !IsHTTP([]byte(line)) {
				t.Errorf("%s: Host line %q not caught", name, line)
			}
		}
	}
}

func TestIsHTTP(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"GET / HTTP/1.1", true},
		{"GET / HTTP/1.1\r\n", true},
		{"DELETE /kv/x HTTP/1.1", true},
		{"POST", true}, {"post /", true}, {"Post x y z", true},
		{"Host: 127.0.0.1:6379", true}, {"host:x", true}, {"HOST:", true},
		{"PRI * HTTP/2.0", true},
		{"GET / HTTP/3", true},
		// RESP and real inline commands.
		{"*1", false}, {"*3\r\n$3\r\nSET\r\n", false}, {"$4", false},
		{"PING", false}, {"ping", false}, {"GET key", false}, {"SET k v", false},
		{"SET k HTTP/1.1 EX", false}, {"QUORUM W 2", false}, {"HOST x", false}, {"hostname: x", false},
		{"GET / HTTPS/1.1", false}, {"GET / HTTP/", false}, {"GET / HTTP/.1", false}, {"GET / HTTP/1.1.1", false},
		{"G3T / HTTP/1.1", false},
		{"get / http/1.1", false}, // browsers always send "HTTP/" in capitals
		{"", false}, {"\r\n", false}, {"   ", false},
	}
	for _, tc := range tests {
		if got := IsHTTP([]byte(tc.line)); got != tc.want {
			t.Errorf("IsHTTP(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// FuzzIsHTTP: never panics; a RESP array line is never taken for HTTP.
func FuzzIsHTTP(f *testing.F) {
	for _, p := range browserPayloads {
		first, _, _ := strings.Cut(p, "\n")
		f.Add([]byte(first))
	}
	f.Add([]byte("*2\r\n$4\r\nAUTH\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := IsHTTP(b)
		if bytes.HasPrefix(b, []byte("*")) && got {
			t.Fatalf("RESP array %q taken for HTTP", b)
		}
	})
}
