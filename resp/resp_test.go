package resp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// slow bounds a request that should succeed: generous, so a loaded
// machine does not fail the test.
const slow = 10 * time.Second

// respCluster starts n in-process nodes (MemNetwork, scripted gossip, badger
// in temporary directories), each with a RESP listener on 127.0.0.1:0.
func respCluster(t *testing.T, n int, adjust func(c *node.Config)) *nodetest.Cluster {
	t.Helper()
	return nodetest.NewCluster(t, n, nodetest.Options{Config: func(i int, c *node.Config) {
		c.RESPAddr = "127.0.0.1:0"
		c.Defaults.Timeout = slow
		if adjust != nil {
			adjust(c)
		}
	}})
}

// client is a go-redis client of node i. RESP2 and no CLIENT SETINFO keep
// its traffic to the commands the test sends; TestRESPDefaultClient covers
// go-redis's default handshake.
func client(t *testing.T, c *nodetest.Cluster, i int) *redis.Client {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: c.Node(i).RESPAddr(), Protocol: 2, DisableIdentity: true,
		MaxRetries: -1, ReadTimeout: 2 * slow, WriteTimeout: slow})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// wantErr checks that err is a Redis error starting with prefix.
func wantErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q...", prefix)
	}
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %q, want prefix %q", err, prefix)
	}
}

// info returns one INFO field of node i.
func info(t *testing.T, cl *redis.Client, field string) string {
	t.Helper()
	s, err := cl.Info(t.Context(), "all").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return v
		}
	}
	t.Fatalf("INFO has no %s:\n%s", field, s)
	return ""
}

func infoInt(t *testing.T, cl *redis.Client, field string) int {
	t.Helper()
	v, err := strconv.Atoi(info(t, cl, field))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// doer is a go-redis client or pinned connection.
type doer interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// qget runs QGET and returns the context and the live values, in dot order.
func qget(t *testing.T, cl doer, key string, args ...any) (ctx string, live []string, siblings int) {
	t.Helper()
	res, err := cl.Do(t.Context(), append([]any{"QGET", key}, args...)...).Slice()
	if err != nil {
		t.Fatalf("QGET %s: %v", key, err)
	}
	if len(res) != 2 {
		t.Fatalf("QGET %s: %d elements, want 2", key, len(res))
	}
	sibs := res[1].([]any)
	for _, s := range sibs {
		f := s.([]any)
		if len(f) != 5 {
			t.Fatalf("QGET sibling %v: want 5 fields", f)
		}
		if f[3].(int64) == 0 {
			live = append(live, f[0].(string))
		} else if f[0] != nil {
			t.Fatalf("tombstone with a value: %v", f)
		}
	}
	return res[0].(string), live, len(sibs)
}

func TestRESPCommands(t *testing.T) {
	c := respCluster(t, 3, nil)
	ctx := t.Context()
	cl := client(t, c, 0)
	other := client(t, c, 1)

	if s, err := cl.Ping(ctx).Result(); err != nil || s != "PONG" {
		t.Fatalf("PING = %q, %v", s, err)
	}
	if s, err := cl.Do(ctx, "PING", "hi").Text(); err != nil || s != "hi" {
		t.Fatalf("PING hi = %q, %v", s, err)
	}
	if s, err := cl.Echo(ctx, "a\r\nb").Result(); err != nil || s != "a\r\nb" {
		t.Fatalf("ECHO = %q, %v", s, err)
	}
	if err := cl.Set(ctx, "k1", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Binary-safe values and keys, read through another node.
	bin := string([]byte{0, 1, 2, '\r', '\n', 255})
	if err := cl.Set(ctx, bin, bin, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"k1": "v1", bin: bin} {
		if got, err := other.Get(ctx, key).Result(); err != nil || got != want {
			t.Fatalf("GET %q = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := cl.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET missing: %v, want nil reply", err)
	}
	if err := cl.Set(ctx, "empty", "", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Get(ctx, "empty").Result(); err != nil || got != "" {
		t.Fatalf("GET empty = %q, %v", got, err)
	}

	if err := cl.MSet(ctx, "m1", "a", "m2", "b", "m3", "c").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := other.MGet(ctx, "m1", "nope", "m3", "m2").Result()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vals) != "[a <nil> c b]" {
		t.Fatalf("MGET = %v", vals)
	}
	if n, err := cl.Exists(ctx, "m1", "m2", "nope", "m1").Result(); err != nil || n != 3 {
		t.Fatalf("EXISTS = %d, %v; want 3 (duplicates count, as in Redis)", n, err)
	}
	if n, err := cl.Del(ctx, "m1", "m2", "nope").Result(); err != nil || n != 2 {
		t.Fatalf("DEL = %d, %v; want 2", n, err)
	}
	for _, k := range []string{"m1", "m2"} {
		if _, err := other.Get(ctx, k).Result(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET %s after DEL: %v, want nil", k, err)
		}
	}
	if n, err := other.Exists(ctx, "m1", "m3").Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS after DEL = %d, %v; want 1", n, err)
	}
	// A deleted key can be written again.
	if err := cl.Set(ctx, "m1", "again", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Get(ctx, "m1").Result(); err != nil || got != "again" {
		t.Fatalf("GET m1 after DEL and SET = %q, %v", got, err)
	}

	// COMMAND, as redis-cli reads it: name, arity, flags, first, last, step.
	if n, err := cl.Do(ctx, "COMMAND", "COUNT").Int(); err != nil || n < 10 {
		t.Fatalf("COMMAND COUNT = %d, %v", n, err)
	}
	ci, err := cl.Do(ctx, "COMMAND", "INFO", "get", "nosuch").Slice()
	if err != nil || len(ci) != 2 || ci[1] != nil {
		t.Fatalf("COMMAND INFO = %v, %v", ci, err)
	}
	if g := ci[0].([]any); g[0] != "get" || g[1] != int64(-2) || g[3] != int64(1) {
		t.Fatalf("COMMAND INFO get = %v", g)
	}
	all, err := cl.Do(ctx, "COMMAND").Slice()
	if err != nil || len(all) < 10 {
		t.Fatalf("COMMAND = %d entries, %v", len(all), err)
	}
	wantErr(t, cl.Do(ctx, "COMMAND", "DOCS").Err(), "ERR")

	if err := cl.Do(ctx, "SELECT", "0").Err(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, cl.Do(ctx, "SELECT", "1").Err(), "ERR DB index is out of range")
	cfg, err := cl.ConfigGet(ctx, "save").Result()
	if err != nil || len(cfg) != 1 {
		t.Fatalf("CONFIG GET save = %v, %v", cfg, err)
	}
	conn := cl.Conn()
	defer conn.Close()
	if err := conn.ClientSetName(ctx, "tester").Err(); err != nil {
		t.Fatal(err)
	}
	if name, err := conn.ClientGetName(ctx).Result(); err != nil || name != "tester" {
		t.Fatalf("CLIENT GETNAME = %q, %v", name, err)
	}

	s, err := cl.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Server", "redis_version:", "# Stats", "total_commands_processed:", "# Quorumkv",
		"node_id:n1", "ring_members:3", "members_alive:3", "get_sibling_reads:", "member_n3:state=alive"} {
		if !strings.Contains(s, want) {
			t.Errorf("INFO lacks %q:\n%s", want, s)
		}
	}
	if s, err := cl.Info(ctx, "commandstats").Result(); err != nil || !strings.Contains(s, "cmdstat_set:calls=") {
		t.Fatalf("INFO commandstats = %q, %v", s, err)
	}

	// QUIT answers OK and closes the connection.
	raw := dialRESP(t, c.Node(0).RESPAddr())
	if got := raw.cmd(t, "QUIT"); got != "+OK" {
		t.Fatalf("QUIT = %q", got)
	}
	if _, err := raw.r.ReadByte(); err != io.EOF {
		t.Fatalf("after QUIT: %v, want EOF", err)
	}
}

// go-redis's default options send HELLO 3 (refused with NOPROTO, so it
// falls back to RESP2) and CLIENT SETINFO; both must leave a working client.
func TestRESPDefaultClient(t *testing.T) {
	c := respCluster(t, 1, func(c *node.Config) { c.Defaults.N, c.Defaults.R, c.Defaults.W = 1, 1, 1 })
	cl := redis.NewClient(&redis.Options{Addr: c.Node(0).RESPAddr()})
	defer cl.Close()
	if err := cl.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Get(t.Context(), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if err := cl.Do(t.Context(), "HELLO", "2").Err(); err != nil {
		t.Fatalf("HELLO 2: %v", err)
	}
}

// Trailing options set one command's quorum; QUORUM sets a connection's.
func TestRESPQuorumArguments(t *testing.T) {
	c := respCluster(t, 3, nil)
	ctx := t.Context()
	cl := client(t, c, 0)

	if err := cl.Do(ctx, "SET", "k", "v", "N", "3", "W", "3", "PW", "1", "DW", "1", "TIMEOUT", "5000").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Do(ctx, "GET", "k", "r", "all", "pr", "quorum", "timeout", "2s").Text(); err != nil || got != "v" {
		t.Fatalf("GET with options = %q, %v", got, err)
	}
	if got, err := cl.Do(ctx, "GET", "k", "N", "1", "R", "1").Text(); err != nil || got != "v" {
		t.Fatalf("GET N 1 R 1 = %q, %v", got, err)
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"GET", "k", "R", "4"}, "ERR bad parameter r: r=4: cannot exceed n=3"},
		{[]any{"GET", "k", "N", "4"}, "ERR bad parameter n: n=4: the ring has only 3 member(s)"},
		{[]any{"GET", "k", "R", "0"}, "ERR bad parameter r: r=0: must be at least 1"},
		{[]any{"GET", "k", "R", "many"}, "ERR bad parameter r:"},
		{[]any{"GET", "k", "W", "2"}, "ERR syntax error: unknown option"},
		{[]any{"GET", "k", "R"}, "ERR syntax error: option \"R\" needs a value"},
		{[]any{"GET", "k", "R", "1", "R", "2"}, "ERR syntax error: option R given twice"},
		{[]any{"SET", "k", "v", "W", "4"}, "ERR bad parameter w: w=4: cannot exceed n=3"},
		{[]any{"SET", "k", "v", "PW", "3", "W", "2"}, "ERR bad parameter pw: pw=3: cannot exceed w=2"},
		{[]any{"SET", "k", "v", "EX", "0"}, "ERR bad parameter expire: invalid expire time in 'set' command"},
		{[]any{"SET", "k", "v", "EX", "10", "PX", "5"}, "ERR syntax error: EX and PX given together"},
		{[]any{"QSET", "k", "v", "EX", "10"}, "ERR syntax error: quorumkv does not support expiry here"},
		{[]any{"SET", "k", "v", "XX"}, "ERR syntax error: quorumkv does not support SET ... XX"},
		{[]any{"SET", "k", "v", "GET"}, "ERR syntax error: quorumkv does not support SET ... XX or GET"},
		{[]any{"SET", "k", "v", "TIMEOUT", "0"}, "ERR bad parameter timeout:"},
		{[]any{"SET", "k", "v", "TIMEOUT", "6m"}, "ERR bad parameter timeout:"},
		{[]any{"QUORUM", "R", "5"}, "ERR bad parameter r: r=5: cannot exceed n=3"},
		{[]any{"QUORUM", "CONTEXT", "x"}, "ERR syntax error: unknown option"},
	} {
		wantErr(t, cl.Do(ctx, tc.args...).Err(), tc.want)
	}

	// QUORUM belongs to one connection.
	conn := cl.Conn()
	defer conn.Close()
	if err := conn.Do(ctx, "QUORUM", "N", "3", "R", "3", "W", "all").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := conn.Do(ctx, "QUORUM").Slice()
	if err != nil || fmt.Sprint(got[:6]) != "[n 3 r 3 w 3]" {
		t.Fatalf("QUORUM = %v, %v", got, err)
	}
	c.Isolate(2)
	defer c.Heal()
	// SET overwrites: its read at R=3 fails first.
	wantErr(t, conn.Set(ctx, "k", "w3", 0).Err(), "QUORUM put (its read at r): quorum not met: 0 of 3 required acks (2 replica(s) reachable)")
	wantErr(t, conn.Get(ctx, "k").Err(), "QUORUM get: quorum not met: 0 of 3 required acks")
	// A command's own options win over the connection's.
	if err := conn.Do(ctx, "SET", "k", "w2", "R", "2", "W", "2").Err(); err != nil {
		t.Fatalf("SET W 2 under QUORUM W 3: %v", err)
	}
	// Other connections keep the node's defaults.
	if err := cl.Set(ctx, "k", "w2b", 0).Err(); err != nil {
		t.Fatalf("SET on another connection: %v", err)
	}
	if err := conn.Do(ctx, "QUORUM", "RESET").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx, "k", "w2c", 0).Err(); err != nil {
		t.Fatalf("SET after QUORUM RESET: %v", err)
	}
	if n := infoInt(t, cl, "quorum_failures"); n < 2 {
		t.Fatalf("quorum_failures = %d, want at least 2", n)
	}
}

// Two SETs that truly race (each coordinator cut off from the other) become
// siblings; GET picks the latest and says so in INFO; QGET shows both; a
// plain SET through a node that holds both supersedes them; QSET with
// QGET's context collapses siblings; plain SETs through one node never grow
// siblings, while context-free QSETs do.
func TestRESPSiblings(t *testing.T) {
	c := respCluster(t, 3, nil)
	ctx := t.Context()
	c1, c2, c3 := client(t, c, 0), client(t, c, 1), client(t, c, 2)

	// n1 and n2 each alone (n3 too, from both): their writes cannot see
	// each other. (A short timeout: replica calls into the partition wait
	// for it, and closing the node waits for them.)
	c.Isolate(0)
	c.Isolate(1)
	if err := c1.Do(ctx, "SET", "race", "from-n1", "R", "1", "W", "1", "TIMEOUT", "300").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // distinct coordinator timestamps, for the GET pick below
	if err := c2.Do(ctx, "SET", "race", "from-n2", "R", "1", "W", "1", "TIMEOUT", "300").Err(); err != nil {
		t.Fatal(err)
	}
	c.Heal()

	tok, live, _ := qget(t, c3, "race", "R", "3")
	if fmt.Sprint(live) != "[from-n1 from-n2]" || tok == "" {
		t.Fatalf("QGET race = %q %v, want both writes as siblings", tok, live)
	}
	hidden := infoInt(t, c3, "get_siblings_hidden")
	if got, err := c3.Do(ctx, "GET", "race", "R", "3").Text(); err != nil || got != "from-n2" {
		t.Fatalf("GET race = %q, %v; want the latest sibling, from-n2", got, err)
	}
	if n := infoInt(t, c3, "get_sibling_reads"); n != 1 {
		t.Fatalf("get_sibling_reads = %d, want 1", n)
	}
	if n := infoInt(t, c3, "get_siblings_hidden"); n != hidden+1 {
		t.Fatalf("get_siblings_hidden = %d, want %d", n, hidden+1)
	}

	// Read repair (after R=3 read) leaves both siblings on n1; a plain SET
	// there replaces them.
	c.WaitFor(5*time.Second, "n1 to hold both siblings", func() bool {
		s, _, err := c.Node(0).ReadLocal([]byte("race"))
		return err == nil && len(s.Live()) == 2
	})
	if err := c1.Set(ctx, "race", "settled", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, live, n := qget(t, c2, "race", "R", "3"); fmt.Sprint(live) != "[settled]" || n != 1 {
		t.Fatalf("after plain SET through n1: %v (%d siblings), want [settled]", live, n)
	}

	// QSET with the context of a QGET collapses what the QGET saw.
	for _, v := range []string{"a", "b", "c"} {
		if err := c1.Do(ctx, "QSET", "ctx", v).Err(); err != nil { // no CONTEXT: concurrent with all
			t.Fatal(err)
		}
	}
	tok, live, _ = qget(t, c2, "ctx", "R", "3")
	if len(live) != 3 {
		t.Fatalf("three context-free QSETs: %v, want 3 siblings", live)
	}
	res, err := c3.Do(ctx, "QSET", "ctx", "merged", "CONTEXT", tok, "W", "3").Slice()
	if err != nil || len(res) != 2 || res[1] != int64(1) || res[0] == "" {
		t.Fatalf("QSET with context = %v, %v; want [context 1]", res, err)
	}
	if _, live, _ := qget(t, c1, "ctx", "R", "3"); fmt.Sprint(live) != "[merged]" {
		t.Fatalf("after QSET with context: %v, want [merged]", live)
	}
	// QDEL with a context deletes; the key reads as missing but QGET still
	// returns a context (of the tombstone).
	tok, _, _ = qget(t, c1, "ctx", "R", "3")
	if err := c1.Do(ctx, "QDEL", "ctx", "CONTEXT", tok, "W", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Get(ctx, "ctx").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after QDEL: %v, want nil", err)
	}
	if tok, live, n := qget(t, c2, "ctx", "R", "3"); tok == "" || len(live) != 0 || n != 1 {
		t.Fatalf("QGET after QDEL = %q %v %d, want a context and one tombstone", tok, live, n)
	}

	// redis-benchmark's pattern: one key hammered through one node.
	for i := range 30 {
		if err := c1.Set(ctx, "hot", "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, live, n := qget(t, c1, "hot", "R", "3"); fmt.Sprint(live) != "[v29]" || n != 1 {
		t.Fatalf("after 30 SETs through n1: %v (%d siblings), want [v29]", live, n)
	}
	// And concurrently, from many connections.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c1.Set(ctx, "hot", "c"+strconv.Itoa(i), 0).Err(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, _, n := qget(t, c1, "hot", "R", "3"); n != 1 {
		t.Fatalf("after 20 concurrent SETs through n1: %d siblings, want 1", n)
	}
}

func TestRESPErrors(t *testing.T) {
	c := respCluster(t, 3, func(c *node.Config) { c.MaxValueSize = 1024; c.MaxKeySize = 64 })
	ctx := t.Context()
	cl := client(t, c, 0)
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"SET", "k"}, "ERR wrong number of arguments for 'set' command"},
		{[]any{"MSET", "a", "1", "b"}, "ERR wrong number of arguments for 'mset' command"},
		{[]any{"ECHO", "a", "b"}, "ERR wrong number of arguments for 'echo' command"},
		{[]any{"FLUSHALL"}, "ERR unknown command 'FLUSHALL', with args beginning with: "},
		{[]any{"HSET", "h", "f", "v"}, "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v'"},
		{[]any{"GET", ""}, "ERR bad parameter key: empty key"},
		{[]any{"GET", strings.Repeat("k", 65)}, "ERR bad parameter key: key of 65 bytes exceeds the limit of 64"},
		{[]any{"SET", "k", strings.Repeat("v", 1025)}, "TOOLARGE value of 1025 bytes exceeds the limit of 1024"},
		{[]any{"MSET", "a", "1", "b", strings.Repeat("v", 2000)}, "TOOLARGE value of 2000 bytes"},
		{[]any{"QSET", "k", "v", "CONTEXT", "garbage"}, "ERR bad parameter context: malformed context"},
		{[]any{"QSET", "k", "v", "CONTEXT"}, "ERR syntax error"},
		{[]any{"QDEL", "k", "R", "1"}, "ERR syntax error: unknown option"},
		{[]any{"HELLO", "3"}, "NOPROTO"},
		{[]any{"CLIENT", "KILL", "x"}, "ERR unknown subcommand"},
		{[]any{"CONFIG", "SET", "save", ""}, "ERR quorumkv supports only CONFIG GET"},
	} {
		wantErr(t, cl.Do(ctx, tc.args...).Err(), tc.want)
	}
	// A context of another cluster (or forged) is refused too.
	other := respCluster(t, 1, func(c *node.Config) { c.Defaults.N, c.Defaults.R, c.Defaults.W = 1, 1, 1; c.Secret = "other" })
	ocl := client(t, other, 0)
	if err := ocl.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tok, _, _ := qget(t, ocl, "k")
	wantErr(t, cl.Do(ctx, "QSET", "k", "v", "CONTEXT", tok).Err(), "ERR bad parameter context: malformed context: context was not issued by this cluster")

	// Errors leave the connection usable; a protocol error closes it.
	raw := dialRESP(t, c.Node(0).RESPAddr())
	if got := raw.cmd(t, "SET", "k", strings.Repeat("v", 1500)); !strings.HasPrefix(got, "-TOOLARGE") {
		t.Fatalf("oversize SET = %q", got)
	}
	if got := raw.cmd(t, "PING"); got != "+PONG" {
		t.Fatalf("PING after TOOLARGE = %q", got)
	}
	raw.send(t, "*2\r\n$4\r\nECHO\r\n$999999999\r\n")
	if got := raw.line(t); !strings.HasPrefix(got, "-ERR Protocol error: invalid bulk length 999999999") {
		t.Fatalf("huge bulk = %q", got)
	}
	if _, err := raw.r.ReadByte(); err != io.EOF {
		t.Fatalf("after a protocol error: %v, want EOF", err)
	}
	for _, bad := range []string{"*1\r\n$-2\r\n", "*x\r\n", "*1\r\n+PING\r\n", "*1\r\n$4\r\nPINGxx", "*99999\r\n"} {
		raw := dialRESP(t, c.Node(0).RESPAddr())
		raw.send(t, bad)
		if got := raw.line(t); !strings.HasPrefix(got, "-ERR Protocol error") {
			t.Fatalf("%q: %q, want a protocol error", bad, got)
		}
	}
	if n := infoInt(t, cl, "total_error_replies"); n < 17 {
		t.Fatalf("total_error_replies = %d, want at least 17", n)
	}
}

// Inline commands (telnet) and pipelines of raw RESP.
func TestRESPInlineAndPipeline(t *testing.T) {
	c := respCluster(t, 3, nil)
	raw := dialRESP(t, c.Node(0).RESPAddr())
	raw.send(t, "SET  inline\tvalue\r\nGET inline\nPING\r\n\r\n")
	for _, want := range []string{"+OK", "$5", "value", "+PONG"} {
		if got := raw.line(t); got != want {
			t.Fatalf("inline: got %q, want %q", got, want)
		}
	}
	// One write carrying 200 commands, answered in order.
	var b strings.Builder
	for i := range 100 {
		k, v := "p"+strconv.Itoa(i), "v"+strconv.Itoa(i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
		fmt.Fprintf(&b, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
	}
	raw.send(t, b.String())
	for i := range 100 {
		v := "v" + strconv.Itoa(i)
		for _, want := range []string{"+OK", "$" + strconv.Itoa(len(v)), v} {
			if got := raw.line(t); got != want {
				t.Fatalf("pipeline reply %d: got %q, want %q", i, got, want)
			}
		}
	}
	// go-redis pipelines too.
	cl := client(t, c, 1)
	cmds, err := cl.Pipelined(t.Context(), func(p redis.Pipeliner) error {
		for i := range 50 {
			p.Get(t.Context(), "p"+strconv.Itoa(i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if got := cmd.(*redis.StringCmd).Val(); got != "v"+strconv.Itoa(i) {
			t.Fatalf("pipelined GET %d = %q", i, got)
		}
	}
}

// A node killed while clients write at W=2: every write succeeds (the two
// others ack) and every acknowledged write is readable afterwards.
func TestRESPNodeKilledMidRun(t *testing.T) {
	c := respCluster(t, 3, nil)
	ctx := t.Context()
	cl := redis.NewClient(&redis.Options{Addr: c.Node(0).RESPAddr(), Protocol: 2, DisableIdentity: true,
		MaxRetries: -1, PoolSize: 16, ReadTimeout: 2 * slow})
	defer cl.Close()

	const writers, perWriter = 8, 60
	var (
		written  atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	killed := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				k := fmt.Sprintf("w%d-%d", w, i)
				if err := cl.Set(ctx, k, k, 0).Err(); err != nil {
					failures.Add(1)
					t.Errorf("SET %s: %v", k, err)
					continue
				}
				if written.Add(1) == writers*perWriter/3 {
					close(killed)
				}
			}
		}()
	}
	<-killed
	c.Kill(2)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d writes failed with one node of three down at W=2", f)
	}
	rd := client(t, c, 1)
	for w := range writers {
		for i := range perWriter {
			k := fmt.Sprintf("w%d-%d", w, i)
			if got, err := rd.Get(ctx, k).Result(); err != nil || got != k {
				t.Fatalf("GET %s = %q, %v after the kill", k, got, err)
			}
		}
	}
	// The dead node's RESP port is gone; the survivors say who is alive.
	c.WaitFor(5*time.Second, "n1 to see n3 dead", func() bool {
		return strings.HasPrefix(info(t, cl, "member_n3"), "state=dead")
	})
}

// Close drains: a connection's in-flight command is answered, then the
// connection is closed; new connections are refused.
func TestRESPCloseDrains(t *testing.T) {
	c := respCluster(t, 1, func(c *node.Config) { c.Defaults.N, c.Defaults.R, c.Defaults.W = 1, 1, 1 })
	addr := c.Node(0).RESPAddr()
	idle := dialRESP(t, addr)
	busy := dialRESP(t, addr)
	if got := busy.cmd(t, "SET", "k", "v"); got != "+OK" {
		t.Fatal(got)
	}
	c.Kill(0)
	if _, err := idle.r.ReadByte(); err == nil {
		t.Fatal("idle connection still open after Close")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("RESP port still accepting after Close")
	}
}

// rawConn speaks RESP by hand, for what clients libraries will not send.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(2 * slow)); err != nil {
		t.Fatal(err)
	}
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		t.Fatal(err)
	}
}

func (rc *rawConn) line(t *testing.T) string {
	t.Helper()
	s, err := rc.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// cmd sends one command as a RESP array and returns the first reply line.
func (rc *rawConn) cmd(t *testing.T, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	rc.send(t, b.String())
	return rc.line(t)
}

// Issue 19, items 3 and 5 over RESP: QSETs without a context grow
// siblings and INFO counts them (sibling_writes); SET overwrites them as
// HTTP's PUT with overwrite does; DEL deletes what a read sees; on a ring
// smaller than the default N, plain commands work and INFO says so.
func TestRESPSiblingCountersAndSmallRing(t *testing.T) {
	c := respCluster(t, 2, nil)
	ctx := t.Context()
	c1, c2 := client(t, c, 0), client(t, c, 1)
	if n := infoInt(t, c1, "effective_n"); n != 2 {
		t.Fatalf("effective_n = %d on a ring of 2, want 2", n)
	}
	before := infoInt(t, c1, "sibling_writes")
	for _, v := range []string{"a", "b"} {
		if err := c1.Do(ctx, "QSET", "k", v).Err(); err != nil {
			t.Fatalf("QSET on a ring of 2: %v", err)
		}
	}
	if n := infoInt(t, c1, "sibling_writes"); n != before+1 {
		t.Fatalf("sibling_writes = %d after a second context-free QSET, want %d", n, before+1)
	}
	if err := c2.Set(ctx, "k", "set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, live, n := qget(t, c1, "k"); fmt.Sprint(live) != "[set]" || n != 1 {
		t.Fatalf("after SET: %v (%d siblings), want [set]", live, n)
	}
	if n, err := c1.Del(ctx, "k", "missing").Result(); err != nil || n != 1 {
		t.Fatalf("DEL k missing = %d, %v; want 1", n, err)
	}
	if _, err := c2.Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after DEL: %v, want nil", err)
	}
	wantErr(t, c1.Do(ctx, "GET", "k", "N", "3").Err(), "ERR bad parameter n: n=3: the ring has only 2 member(s)")
}
