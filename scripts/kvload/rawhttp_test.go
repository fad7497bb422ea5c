package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// kvServer is an httptest server on 127.0.0.1 answering /kv/{key} as
// quorumkv does for kvload's requests (PUT 204, GET 200 or 404 with a JSON
// body), plus keys that answer otherwise: "err" 503, "chunked" a chunked
// 200, "close" a 204 with Connection: close, "hangup" nothing at all. It
// counts the connections it accepted.
type kvServer struct {
	*httptest.Server
	conns atomic.Int64
	mu    sync.Mutex
	kv    map[string][]byte
}

func newKVServer(t *testing.T) *kvServer {
	s := &kvServer{kv: map[string][]byte{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *kvServer) serve(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/kv/")
	switch key {
	case "err":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"unavailable"}`)
		return
	case "chunked":
		for _, part := range []string{"abc", "defgh", strings.Repeat("z", 5000)} {
			_, _ = io.WriteString(w, part)
			w.(http.Flusher).Flush() // no Content-Length: net/http chunks
		}
		return
	case "close":
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNoContent)
		return
	case "hangup":
		nc, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = nc.Close()
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get("X-Quorumkv-Overwrite") != "true" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.kv[key] = b
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		v, ok := s.kv[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"not found"}`)
			return
		}
		_, _ = w.Write(v)
	}
}

// get GETs key with c and returns the status and body.
func get(t *testing.T, c *rawHTTP, key string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	c.sink = &body
	status, err := c.do(http.MethodGet, "/kv/", key, "", nil)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return status, body.String()
}

func TestRawHTTPAgainstServer(t *testing.T) {
	s := newKVServer(t)
	c := &rawHTTP{addr: s.Listener.Addr().String()}
	defer c.close()

	if st, body := get(t, c, "a"); st != 404 || body != `{"error":"not found"}` {
		t.Fatalf("absent key: %d %q", st, body)
	}
	for _, v := range []string{"first", "", strings.Repeat("v", 100)} {
		st, err := c.do(http.MethodPut, "/kv/", "a", "X-Quorumkv-Overwrite: true\r\n", []byte(v))
		if err != nil || st != 204 {
			t.Fatalf("PUT %q: %d %v", v, st, err)
		}
		if st, body := get(t, c, "a"); st != 200 || body != v {
			t.Fatalf("GET after PUT %q: %d %q", v, st, body)
		}
	}
	if st, body := get(t, c, "err"); st != 503 || body != `{"error":"unavailable"}` {
		t.Fatalf("error status: %d %q", st, body)
	}
	if st, body := get(t, c, "chunked"); st != 200 || body != "abcdefgh"+strings.Repeat("z", 5000) {
		t.Fatalf("chunked: %d, %d bytes", st, len(body))
	}
	if st, body := get(t, c, "a"); st != 200 || body != strings.Repeat("v", 100) {
		t.Fatalf("GET after chunked: %d %q", st, body)
	}
	if n := s.conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 kept alive throughout", n)
	}

	// Connection: close: the answer counts, the next request dials anew.
	st, err := c.do(http.MethodPut, "/kv/", "close", "X-Quorumkv-Overwrite: true\r\n", []byte("x"))
	if err != nil || st != 204 {
		t.Fatalf("Connection: close answer: %d %v", st, err)
	}
	if c.nc != nil {
		t.Fatal("connection kept after Connection: close")
	}
	if st, _ := get(t, c, "a"); st != 200 || s.conns.Load() != 2 {
		t.Fatalf("after close: status %d, %d connections, want 200 and 2", st, s.conns.Load())
	}

	// The server closing the idle connection: retried once on a new one.
	s.CloseClientConnections()
	if st, _ := get(t, c, "a"); st != 200 || s.conns.Load() != 3 {
		t.Fatalf("after the server closed: status %d, %d connections, want 200 and 3", st, s.conns.Load())
	}

	// A server that hangs up without an answer is an error, not a loop,
	// and the client recovers on a new connection.
	if _, err := c.do(http.MethodGet, "/kv/", "hangup", "", nil); err == nil {
		t.Fatal("hang-up: no error")
	}
	if st, _ := get(t, c, "a"); st != 200 {
		t.Fatalf("after hang-up: status %d", st)
	}
}

func TestKVLoadRawAndNetHTTPClients(t *testing.T) {
	s := newKVServer(t)
	addr := s.Listener.Addr().String()
	value := []byte("0123456789")
	for name, mk := range map[string]func(addr, op string, value []byte) func(string) error{
		"raw": newRawHTTP, "nethttp": newHTTP,
	} {
		set, read := mk(addr, "set", value), mk(addr, "get", value)
		if err := read("absent-" + name); err != nil {
			t.Errorf("%s: GET of an absent key: %v", name, err)
		}
		if err := set("k-" + name); err != nil {
			t.Errorf("%s: SET: %v", name, err)
		}
		if err := read("k-" + name); err != nil {
			t.Errorf("%s: GET: %v", name, err)
		}
		if err := read("err"); err == nil || !strings.Contains(err.Error(), "status 503") {
			t.Errorf("%s: GET answered 503: error %v", name, err)
		}
		if err := set("err"); err == nil {
			t.Errorf("%s: SET answered 503: no error", name)
		}
		s.mu.Lock()
		got := string(s.kv["k-"+name])
		s.mu.Unlock()
		if got != string(value) {
			t.Errorf("%s: server stored %q", name, got)
		}
	}
}

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		head       bool
		status     int
		keep       bool
		body, rest string
		bad        bool
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcNEXT", status: 200, keep: true, body: "abc", rest: "NEXT"},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\nNEXT", status: 204, keep: true, rest: "NEXT"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\ncontent-length: 2\n\nokNEXT", status: 200, keep: true, body: "ok", rest: "NEXT"},
		{name: "head", in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nNEXT", head: true, status: 200, keep: true, rest: "NEXT"},
		{name: "interim", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", status: 204, keep: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\nNEXT",
			status: 200, keep: true, body: "abc0123456789", rest: "NEXT"},
		{name: "close", in: "HTTP/1.1 404 Not Found\r\nConnection: Close\r\nContent-Length: 1\r\n\r\nx", status: 404, body: "x"},
		{name: "to EOF", in: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, body: "all of it"},
		{name: "1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", status: 200, keep: true},
		{name: "empty", in: "", bad: true},
		{name: "not http", in: "+OK\r\n", bad: true},
		{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", bad: true},
		{name: "status run-on", in: "HTTP/1.1 2000 OK\r\n\r\n", bad: true},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", bad: true},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", bad: true},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", bad: true},
		{name: "bad header", in: "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", bad: true},
		{name: "bad chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", bad: true},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", bad: true},
		{name: "cut headers", in: "HTTP/1.1 200 OK\r\nContent-Le", bad: true},
		{name: "switching", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", bad: true},
		{name: "long line", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine) + "\r\n\r\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := bufio.NewReaderSize(strings.NewReader(tc.in), maxLine)
			var body bytes.Buffer
			status, keep, err := readResponse(rd, tc.head, &body)
			if tc.bad {
				if err == nil {
					t.Fatalf("no error; status %d", status)
				}
				return
			}
			rest, _ := io.ReadAll(rd)
			if err != nil || status != tc.status || keep != tc.keep || body.String() != tc.body || string(rest) != tc.rest {
				t.Fatalf("got %d keep=%v body %q rest %q err %v; want %d keep=%v body %q rest %q",
					status, keep, body.String(), rest, err, tc.status, tc.keep, tc.body, tc.rest)
			}
		})
	}
}

// TestRawHTTPDiscards checks the nil sink (kvload's) reads bodies of every
// kind to their end, keeping the connection in step.
func TestRawHTTPDiscards(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n" +
		"HTTP/1.1 204 No Content\r\n\r\n"
	rd := bufio.NewReader(strings.NewReader(in))
	for _, want := range []int{200, 200, 204} {
		if status, keep, err := readResponse(rd, false, nil); err != nil || status != want || !keep {
			t.Fatalf("got %d keep=%v %v, want %d", status, keep, err, want)
		}
	}
	if rd.Buffered() != 0 {
		t.Fatalf("%d bytes left", rd.Buffered())
	}
}
