package auth

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"
)

func argv(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func TestParseRESP(t *testing.T) {
	long := strings.Repeat("t", MaxTokenLen+50)
	tests := []struct {
		args  []string
		want  RESPCommand
		reply string
	}{
		{[]string{"AUTH", "tok"}, RESPCommand{Kind: RESPAuth, HasAuth: true, Token: "tok"}, ""},
		{[]string{"auth", "app", "tok"}, RESPCommand{Kind: RESPAuth, HasAuth: true, User: "app", Token: "tok"}, ""},
		{[]string{"Auth"}, RESPCommand{}, ReplyAuthArity},
		{[]string{"AUTH", "a", "b", "c"}, RESPCommand{}, ReplySyntax},
		{[]string{"AUTH", long}, RESPCommand{Kind: RESPAuth, HasAuth: true, Token: long[:MaxTokenLen+1]}, ""},
		{[]string{"HELLO"}, RESPCommand{Kind: RESPHello}, ""},
		{[]string{"hello", "2"}, RESPCommand{Kind: RESPHello, Proto: 2}, ""},
		{[]string{"HELLO", "3"}, RESPCommand{Kind: RESPHello, Proto: 3}, ""},
		{[]string{"HELLO", "3", "AUTH", "default", "tok"}, RESPCommand{Kind: RESPHello, Proto: 3, HasAuth: true, User: "default", Token: "tok"}, ""},
		{[]string{"HELLO", "2", "auth", "app", "tok", "setname", "c1"}, RESPCommand{Kind: RESPHello, Proto: 2, HasAuth: true, User: "app", Token: "tok", SetName: "c1", HasSetName: true}, ""},
		{[]string{"HELLO", "3", "SETNAME", "x"}, RESPCommand{Kind: RESPHello, Proto: 3, SetName: "x", HasSetName: true}, ""},
		{[]string{"HELLO", "4"}, RESPCommand{}, ReplyNoProto},
		{[]string{"HELLO", "1", "AUTH", "a", "b"}, RESPCommand{}, ReplyNoProto},
		{[]string{"HELLO", "-3"}, RESPCommand{}, ReplyNoProto},
		{[]string{"HELLO", "99999999999999999999"}, RESPCommand{}, ReplyProtoNotInteger},
		{[]string{"HELLO", "three"}, RESPCommand{}, ReplyProtoNotInteger},
		{[]string{"HELLO", "+3"}, RESPCommand{}, ReplyProtoNotInteger},
		{[]string{"HELLO", "03"}, RESPCommand{}, ReplyProtoNotInteger},
		{[]string{"HELLO", ""}, RESPCommand{}, ReplyProtoNotInteger},
		{[]string{"HELLO", "3", "AUTH", "a"}, RESPCommand{}, "ERR Syntax error in HELLO option 'AUTH'"},
		{[]string{"HELLO", "3", "SETNAME"}, RESPCommand{}, "ERR Syntax error in HELLO option 'SETNAME'"},
		{[]string{"HELLO", "3", "x\r\n-OK"}, RESPCommand{}, "ERR Syntax error in HELLO option 'x??-OK'"},
		{[]string{"GET", "k"}, RESPCommand{}, "ERR not AUTH or HELLO: 'GET'"},
	}
	for _, tc := range tests {
		got, err := ParseRESP(argv(tc.args...))
		var re *RESPError
		switch {
		case tc.reply == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.reply != "" && (!errors.As(err, &re) || re.Reply != tc.reply):
			t.Errorf("%q: err %v, want reply %q", tc.args, err, tc.reply)
		case got != tc.want:
			t.Errorf("%q = %+v, want %+v", tc.args, got, tc.want)
		}
	}
	if _, err := ParseRESP(nil); err == nil {
		t.Error("empty command parsed")
	}
}

func TestParseRESPDoesNotAlias(t *testing.T) {
	args := argv("AUTH", "app", "secret")
	c, err := ParseRESP(args)
	if err != nil {
		t.Fatal(err)
	}
	copy(args[2], "XXXXXX")
	copy(args[1], "YYY")
	if c.Token != "secret" || c.User != "app" {
		t.Fatalf("parsed command aliases its arguments: %+v", c)
	}
}

func TestLogin(t *testing.T) {
	a, _, _ := New([]byte(testFile))
	tests := []struct {
		args  []string
		name  string
		reply string
	}{
		{[]string{"AUTH", tokWrite}, "app", ""},
		{[]string{"AUTH", "app", tokWrite}, "app", ""},
		{[]string{"AUTH", "default", tokWrite}, "app", ""},
		{[]string{"AUTH", "ops", tokWrite}, "", ReplyWrongPass}, // another principal's name
		{[]string{"AUTH", "nobody-token-0123456789"}, "", ReplyWrongPass},
		{[]string{"AUTH", strings.Repeat("t", 5000)}, "", ReplyWrongPass},
		{[]string{"HELLO", "2", "AUTH", "default", tokAdmin}, "ops", ""},
		{[]string{"HELLO", "2", "AUTH", "grafana", tokRead}, "grafana", ""},
	}
	for _, tc := range tests {
		c, err := ParseRESP(argv(tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		p, reply := a.Login(c)
		if reply != tc.reply || p.Name != tc.name {
			t.Errorf("%q: %+v %q, want %q %q", tc.args, p, reply, tc.name, tc.reply)
		}
	}
	// Authentication off: Redis's passwordless default user.
	var off *Authenticator
	if _, reply := off.Login(RESPCommand{Kind: RESPAuth, HasAuth: true, Token: "x"}); reply != ReplyAuthNotConfigured {
		t.Errorf("AUTH x with authentication off: %q", reply)
	}
	if _, reply := off.Login(RESPCommand{Kind: RESPHello, HasAuth: true, User: "default", Token: "x"}); reply != "" {
		t.Errorf("HELLO AUTH with authentication off: %q", reply)
	}
}

func TestAllowedBeforeAuth(t *testing.T) {
	for _, c := range []string{"AUTH", "auth", "Hello", "QUIT"} {
		if !AllowedBeforeAuth([]byte(c)) {
			t.Errorf("%s refused", c)
		}
	}
	for _, c := range []string{"PING", "GET", "SET", "INFO", "CLIENT", "COMMAND", "", "authx"} {
		if AllowedBeforeAuth([]byte(c)) {
			t.Errorf("%q allowed before AUTH", c)
		}
	}
}

func TestRESPAction(t *testing.T) {
	tests := []struct {
		flags []string
		want  Action
	}{
		{[]string{"readonly", "fast"}, ActionRead},
		{[]string{"write", "denyoom"}, ActionWrite},
		{[]string{"fast"}, ActionStatus},
		{[]string{"admin"}, ActionStatus},
		{nil, ActionStatus},
	}
	for _, tc := range tests {
		if got := RESPAction(tc.flags); got != tc.want {
			t.Errorf("RESPAction(%q) = %s, want %s", tc.flags, got, tc.want)
		}
	}
	if got := ReplyNoPerm(Principal{Name: "grafana"}, []byte("set")); got != "NOPERM User grafana has no permissions to run the 'set' command" {
		t.Errorf("ReplyNoPerm = %q", got)
	}
}

// miniFront is the RESP gate as node's front is meant to wire it, in a
// redcon server: AUTH and HELLO through ParseRESP and Login, HELLO 3
// refused with NOPROTO (RESP2 only) before its credentials are looked at,
// NOAUTH before a login, NOPERM for a role that may not run a command.
func miniFront(t *testing.T, a *Authenticator) string {
	t.Helper()
	type session struct {
		p      Principal
		authed bool
	}
	flags := map[string][]string{"get": {"readonly"}, "set": {"write"}, "ping": {"fast"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := redcon.NewServer("", func(conn redcon.Conn, cmd redcon.Command) {
		s := conn.Context().(*session)
		name := strings.ToLower(string(cmd.Args[0]))
		if name == "auth" || name == "hello" {
			c, err := ParseRESP(cmd.Args)
			if err != nil {
				conn.WriteError(err.Error())
				return
			}
			if c.Kind == RESPHello && c.Proto == 3 {
				conn.WriteError("NOPROTO this server speaks RESP2 only")
				return
			}
			if c.HasAuth {
				p, reply := a.Login(c)
				if reply != "" {
					conn.WriteError(reply)
					return
				}
				s.p, s.authed = p, true
			}
			if c.Kind == RESPAuth {
				conn.WriteString("OK")
				return
			}
			if !s.authed {
				conn.WriteError(ReplyHelloNoAuth)
				return
			}
			conn.WriteArray(4)
			conn.WriteBulkString("server")
			conn.WriteBulkString("mini")
			conn.WriteBulkString("proto")
			conn.WriteInt(2)
			return
		}
		if !s.authed && !AllowedBeforeAuth(cmd.Args[0]) {
			conn.WriteError(ReplyNoAuth)
			return
		}
		if err := a.Authorize(s.p, RESPAction(flags[name])); err != nil {
			conn.WriteError(ReplyNoPerm(s.p, cmd.Args[0]))
			return
		}
		switch name {
		case "set":
			conn.WriteString("OK")
		case "get":
			conn.WriteBulkString("v")
		default:
			conn.WriteString("PONG")
		}
	}, func(conn redcon.Conn) bool { conn.SetContext(&session{}); return true }, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Real go-redis clients against the gate: password only (HELLO 3 AUTH
// default, NOPROTO, then AUTH TOKEN), user and password (AUTH NAME TOKEN),
// RESP2 (HELLO 2 AUTH), wrong token, no token, read-only role.
func TestRESPGoRedisFlows(t *testing.T) {
	a, _, _ := New([]byte(testFile))
	addr := miniFront(t, a)
	ctx := t.Context()
	client := func(o redis.Options) *redis.Client {
		o.Addr, o.MaxRetries, o.PoolSize = addr, -1, 1
		c := redis.NewClient(&o)
		t.Cleanup(func() { c.Close() })
		return c
	}

	for _, o := range []redis.Options{
		{Password: tokWrite},
		{Username: "app", Password: tokWrite},
		{Username: "default", Password: tokWrite},
		{Password: tokWrite, Protocol: 2},
		{Username: "app", Password: tokWrite, Protocol: 2},
	} {
		c := client(o)
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Errorf("user %q protocol %d: SET: %v", o.Username, o.Protocol, err)
		}
		if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Errorf("user %q protocol %d: GET: %q %v", o.Username, o.Protocol, v, err)
		}
	}

	for _, o := range []redis.Options{
		{Password: "wrong-token-0123456789"},
		{Username: "ops", Password: tokWrite}, // the token is app's
		{Password: "wrong-token-0123456789", Protocol: 2},
	} {
		err := client(o).Ping(ctx).Err()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("user %q password %q protocol %d: %v, want WRONGPASS", o.Username, o.Password, o.Protocol, err)
		}
	}

	if err := client(redis.Options{}).Get(ctx, "k").Err(); err == nil || err.Error() != ReplyNoAuth {
		t.Errorf("GET without AUTH: %v, want %q", err, ReplyNoAuth)
	}

	ro := client(redis.Options{Username: "grafana", Password: tokRead})
	if err := ro.Get(ctx, "k").Err(); err != nil {
		t.Errorf("read token GET: %v", err)
	}
	if err := ro.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM User grafana") {
		t.Errorf("read token SET: %v, want NOPERM", err)
	}
}
