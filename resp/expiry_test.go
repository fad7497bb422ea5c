package resp_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/node"
)

// SET's expiry options, EXPIRE, PEXPIRE, PERSIST, TTL and PTTL on three
// nodes sharing a settable clock.
func TestRESPExpiry(t *testing.T) {
	start := time.Date(2050, 3, 1, 0, 0, 0, 0, time.UTC) // past 2038
	fc := clock.NewFake(start)
	now, advance := fc.Now, fc.Advance
	c := respCluster(t, 3, func(cfg *node.Config) { cfg.Now = now })
	ctx := t.Context()
	cl := [3]*redis.Client{client(t, c, 0), client(t, c, 1), client(t, c, 2)}
	do := func(i int, args ...any) *redis.Cmd {
		t.Helper()
		return cl[i].Do(ctx, args...)
	}
	wantInt := func(what string, cmd *redis.Cmd, want int64) {
		t.Helper()
		if got, err := cmd.Int64(); err != nil || got != want {
			t.Fatalf("%s = %d, %v; want %d", what, got, err, want)
		}
	}
	absent := func(key string) {
		t.Helper()
		for i := range cl {
			if v, err := do(i, "GET", key, "R", "1").Text(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET %s via node %d = %q, %v; want nil", key, i, v, err)
			}
			wantInt("TTL "+key, do(i, "TTL", key), -2)
		}
	}

	if err := do(0, "SET", "ex", "v", "EX", "10", "W", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if err := do(1, "SET", "px", "v", "W", "3", "PX", "1500").Err(); err != nil {
		t.Fatal(err)
	}
	if err := do(2, "SET", "exat", "v", "EXAT", start.Add(time.Minute).Unix(), "W", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if err := do(0, "SET", "plain", "v", "W", "3").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range cl {
		wantInt("TTL ex", do(i, "TTL", "ex"), 10)
		wantInt("PTTL px", do(i, "PTTL", "px"), 1500)
		wantInt("TTL exat", do(i, "TTL", "exat"), 60)
		wantInt("TTL plain", do(i, "TTL", "plain"), -1)
		wantInt("TTL missing", do(i, "TTL", "missing"), -2)
	}
	advance(1500 * time.Millisecond)
	absent("px")
	wantInt("PTTL ex", do(1, "PTTL", "ex"), 8500)

	// KEEPTTL keeps the deadline; a plain SET drops it.
	if err := do(1, "SET", "ex", "w", "KEEPTTL", "W", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := do(2, "GET", "ex", "R", "3").Text(); err != nil || v != "w" {
		t.Fatalf("GET after SET KEEPTTL = %q, %v", v, err)
	}
	wantInt("PTTL after KEEPTTL", do(2, "PTTL", "ex", "R", "3"), 8500)

	// EXPIRE and its conditions; PEXPIRE; PERSIST.
	wantInt("EXPIRE plain NX", do(0, "EXPIRE", "plain", "100", "NX", "W", "3"), 1)
	wantInt("TTL plain", do(1, "TTL", "plain", "R", "3"), 100)
	wantInt("EXPIRE plain NX again", do(0, "EXPIRE", "plain", "5", "NX"), 0)
	wantInt("EXPIRE plain GT smaller", do(0, "EXPIRE", "plain", "5", "GT"), 0)
	wantInt("EXPIRE plain LT smaller", do(0, "EXPIRE", "plain", "50", "LT", "W", "3"), 1)
	wantInt("TTL plain", do(2, "TTL", "plain", "R", "3"), 50)
	wantInt("PEXPIRE plain", do(2, "PEXPIRE", "plain", "20000", "W", "3"), 1)
	wantInt("PTTL plain", do(0, "PTTL", "plain", "R", "3"), 20000)
	wantInt("PERSIST plain", do(1, "PERSIST", "plain", "W", "3"), 1)
	wantInt("TTL plain", do(0, "TTL", "plain", "R", "3"), -1)
	wantInt("PERSIST plain again", do(1, "PERSIST", "plain"), 0)
	wantInt("EXPIRE missing", do(1, "EXPIRE", "missing", "10"), 0)
	wantInt("PERSIST missing", do(1, "PERSIST", "missing"), 0)
	if v, err := do(0, "GET", "plain", "R", "3").Text(); err != nil || v != "v" {
		t.Fatalf("the value after EXPIRE and PERSIST = %q, %v", v, err)
	}
	// A time that is not positive deletes, as in Redis.
	wantInt("EXPIRE plain 0", do(0, "EXPIRE", "plain", "0", "W", "3"), 1)
	absent("plain")

	advance(time.Minute)
	absent("ex")
	absent("exat")

	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SET", "k", "v", "PX", "0"}, "ERR bad parameter expire: invalid expire time in 'set' command"},
		{[]any{"SET", "k", "v", "EXAT", "9223372036854775807"}, "ERR bad parameter expire: invalid expire time"},
		{[]any{"SET", "k", "v", "KEEPTTL", "PX", "5"}, "ERR syntax error: KEEPTTL and PX given together"},
		{[]any{"SET", "k", "v", "EX"}, "ERR syntax error: option EX needs a value"},
		{[]any{"EXPIRE", "k", "soon"}, "ERR bad parameter expire: value is not an integer"},
		{[]any{"EXPIRE", "k", "9223372036854775807"}, "ERR bad parameter expire: invalid expire time in 'expire' command"},
		{[]any{"EXPIRE", "k", "5", "NX", "GT"}, "ERR syntax error: NX, XX, GT and LT"},
		{[]any{"EXPIRE", "k", "5", "CONTEXT", "x"}, "ERR syntax error: unknown option"},
		{[]any{"EXPIRE", "k", "5", "FOO"}, "ERR syntax error: unknown option \"FOO\""},
		{[]any{"GET", "k", "FOO"}, "ERR syntax error: unknown option \"FOO\""},
		{[]any{"TTL", "k", "W", "2"}, "ERR syntax error: unknown option"},
		{[]any{"EXPIRE", "k"}, "ERR wrong number of arguments"},
		{[]any{"PERSIST"}, "ERR wrong number of arguments"},
	} {
		wantErr(t, do(0, tc.args...).Err(), tc.want)
	}
}
