package resp_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRESPScan(t *testing.T) {
	c := respCluster(t, 3, nil)
	cl := client(t, c, 0)
	ctx := t.Context()
	var users []string
	for i := range 150 {
		k := fmt.Sprintf("%s:%d", []string{"user", "order", "cart"}[i%3], i)
		if err := cl.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			users = append(users, k)
		}
	}
	if err := cl.Del(ctx, users[0]).Err(); err != nil {
		t.Fatal(err)
	}
	users = users[1:]

	// go-redis's iterator follows the numeric cursor to 0, through node 1.
	var got []string
	it := client(t, c, 1).Scan(ctx, 0, "user:*", 7).Iterator()
	for it.Next(ctx) {
		got = append(got, it.Val())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(users)
	if !slices.Equal(got, users) {
		t.Fatalf("SCAN MATCH user:* = %q, want %q", got, users)
	}

	// Every key, by hand: pages bounded by about COUNT, cursor 0 at the end.
	total, cursor := 0, uint64(0)
	for pages := 0; ; pages++ {
		keys, next, err := cl.Scan(ctx, cursor, "", 20).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 20 {
			t.Fatalf("page of %d keys for COUNT 20", len(keys))
		}
		total += len(keys)
		if next == 0 {
			break
		}
		if pages > 1000 {
			t.Fatal("scan does not end")
		}
		cursor = next
	}
	if total != 149 {
		t.Fatalf("SCAN listed %d keys, want 149", total)
	}
	if keys, next, err := cl.ScanType(ctx, 0, "*", 1000, "hash").Result(); err != nil || len(keys) != 0 || next != 0 {
		t.Fatalf("SCAN TYPE hash: %q %d %v", keys, next, err)
	}
	var orders []string
	it = cl.ScanType(ctx, 0, "ord?r:[0-9]*", 10000, "string").Iterator()
	for it.Next(ctx) {
		orders = append(orders, it.Val())
	}
	if err := it.Err(); err != nil || len(orders) != 50 {
		t.Fatalf("SCAN MATCH ord?r:[0-9]* TYPE string: %d keys, %v; want 50", len(orders), err)
	}
	for _, bad := range [][]any{{"SCAN", "x"}, {"SCAN", "-1"}, {"SCAN", "0", "COUNT", "0"}, {"SCAN", "0", "MATCH"}, {"SCAN", "0", "BOGUS", "1"},
		{"SCAN", "0", "MATCH", strings.Repeat("*a", 200)}, {"SCAN", "0", "MATCH", strings.Repeat("a", 5000) + "*"}} {
		if err := cl.Do(ctx, bad...).Err(); err == nil || errors.Is(err, redis.Nil) {
			t.Errorf("%v: %v, want an error", bad, err)
		}
	}
}

func TestRESPSetNX(t *testing.T) {
	c := respCluster(t, 3, nil)
	ctx := t.Context()
	for i := range 60 {
		cl := client(t, c, i%3)
		ok, err := cl.SetNX(ctx, fmt.Sprintf("lock:%d", i/2), i, 0).Result()
		if err != nil {
			t.Fatalf("SETNX %d: %v", i, err)
		}
		if ok != (i%2 == 0) {
			t.Fatalf("SET NX %d: %v, want %v", i, ok, i%2 == 0)
		}
	}
	cl := client(t, c, 0)
	if v, err := cl.Get(ctx, "lock:0").Result(); err != nil || v != "0" {
		t.Fatalf("lock:0 = %q, %v", v, err)
	}
	// A deleted key can be created again; the raw reply of a refusal is nil.
	if err := cl.Del(ctx, "lock:0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Do(ctx, "SET", "lock:0", "again", "nx", "R", "3").Err(); err != nil {
		t.Fatalf("SET NX after DEL: %v", err)
	}
	if err := cl.Do(ctx, "SET", "lock:0", "x", "NX").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("SET NX of an existing key: %v, want nil", err)
	}
	for _, bad := range [][]any{{"SET", "k", "v", "NX", "NX"}, {"SET", "k", "v", "XX"}, {"SET", "k", "v", "NX", "W"}} {
		if err := cl.Do(ctx, bad...).Err(); err == nil || errors.Is(err, redis.Nil) {
			t.Errorf("%v: %v, want an error", bad, err)
		}
	}
}
