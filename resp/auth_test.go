package resp_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/node"
)

const (
	respTokRead  = "resp-read-token-0123456789"
	respTokWrite = "resp-write-token-0123456789"
)

// Issue 13 on the RESP port: with tokens, every command but AUTH, HELLO
// and QUIT answers NOAUTH until AUTH (either form) or HELLO 2 AUTH names a
// principal; a wrong token is WRONGPASS; HELLO 3 is NOPROTO (clients fall
// back to AUTH); a read token's writes are NOPERM; go-redis with a
// username and password connects as Redis clients do.
func TestRESPAuth(t *testing.T) {
	a, _, err := auth.New([]byte("reader read " + respTokRead + "\nwriter write " + respTokWrite + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := respCluster(t, 2, func(cfg *node.Config) { cfg.Security.Auth = a })
	c.WaitConverged(10 * time.Second)
	addr := c.Node(0).RESPAddr()

	rc := dialRESP(t, addr)
	for _, args := range [][]string{{"PING"}, {"GET", "k"}, {"SET", "k", "v"}, {"INFO"}, {"NOSUCHCOMMAND"}} {
		if got := rc.cmd(t, args...); got != "-"+auth.ReplyNoAuth {
			t.Fatalf("%v before AUTH: %q, want NOAUTH", args, got)
		}
	}
	if got := rc.cmd(t, "HELLO", "2"); got != "-"+auth.ReplyHelloNoAuth {
		t.Fatalf("HELLO 2 before AUTH: %q", got)
	}
	if got := rc.cmd(t, "HELLO", "3", "AUTH", "reader", respTokRead); !strings.HasPrefix(got, "-NOPROTO") {
		t.Fatalf("HELLO 3 AUTH: %q, want NOPROTO", got)
	}
	if got := rc.cmd(t, "PING"); got != "-"+auth.ReplyNoAuth {
		t.Fatalf("HELLO 3 authenticated the connection: PING %q", got)
	}
	if got := rc.cmd(t, "AUTH", "not-a-token"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Fatalf("AUTH with a wrong token: %q", got)
	}
	if got := rc.cmd(t, "AUTH", "writer", respTokRead); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Fatalf("AUTH with another principal's token: %q", got)
	}
	if got := rc.cmd(t, "AUTH", respTokRead); got != "+OK" {
		t.Fatalf("AUTH TOKEN: %q", got)
	}
	if got := rc.cmd(t, "PING"); got != "+PONG" {
		t.Fatalf("PING after AUTH: %q", got)
	}
	if got := rc.cmd(t, "SET", "k", "v"); !strings.HasPrefix(got, "-NOPERM") {
		t.Fatalf("SET with a read token: %q, want NOPERM", got)
	}
	if got := rc.cmd(t, "GET", "k"); got != "$-1" {
		t.Fatalf("GET with a read token: %q", got)
	}
	if got := rc.cmd(t, "HELLO", "2", "AUTH", "writer", respTokWrite); got != "*14" {
		t.Fatalf("HELLO 2 AUTH: %q, want the 14-element map", got)
	}
	for rc.line(t) != "modules" { // the rest of HELLO's map, up to its last field
	}
	if got := rc.line(t); got != "*0" {
		t.Fatalf("HELLO's modules: %q", got)
	}
	if got := rc.cmd(t, "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET after HELLO 2 AUTH as writer: %q", got)
	}

	// go-redis as applications configure it: RESP3 first (NOPROTO), then
	// AUTH user pass.
	cl := redis.NewClient(&redis.Options{Addr: addr, Username: "writer", Password: respTokWrite, MaxRetries: -1})
	t.Cleanup(func() { cl.Close() })
	if err := cl.Set(t.Context(), "k2", "v2", 0).Err(); err != nil {
		t.Fatalf("go-redis with username and password: %v", err)
	}
	bad := redis.NewClient(&redis.Options{Addr: addr, Username: "writer", Password: "wrong", MaxRetries: -1})
	t.Cleanup(func() { bad.Close() })
	if err := bad.Get(t.Context(), "k2").Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("go-redis with a wrong password: %v", err)
	}
}

// A browser can be made to POST to the RESP port; the body's lines would
// run as inline commands. The connection is closed at the request line,
// unanswered, and nothing runs.
func TestRESPClosesHTTPRequests(t *testing.T) {
	c := respCluster(t, 2, nil)
	c.WaitConverged(10 * time.Second)
	addr := c.Node(0).RESPAddr()
	for _, req := range []string{
		"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\r\nSET pwned 1\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"Host: example.com\r\nSET pwned 1\r\n",
	} {
		rc := dialRESP(t, addr)
		rc.send(t, req)
		rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(rc.r)
		if err != nil || len(b) != 0 {
			t.Fatalf("%q: read %q, %v; want the connection closed without a reply", req, b, err)
		}
	}
	rc := dialRESP(t, addr)
	if got := rc.cmd(t, "EXISTS", "pwned"); got != ":0" {
		t.Fatalf("a command in an HTTP body ran: EXISTS pwned %q", got)
	}
}
