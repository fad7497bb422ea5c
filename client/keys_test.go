package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/client"
)

func TestAgainstNodeKeysAndScan(t *testing.T) {
	cl, c := cluster(t)
	ctx := t.Context()
	var want []string
	for i := range 120 {
		k := fmt.Sprintf("%s/%03d", []string{"a", "b"}[i%2], i)
		if _, err := c.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			want = append(want, k)
		}
	}
	if _, err := c.Delete(ctx, "a/000"); err != nil {
		t.Fatal(err)
	}
	want = want[1:]

	var got []string
	if _, err := c.Scan(ctx, "a/", func(k string) bool { got = append(got, k); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(a/) = %q, want %q", got, want)
	}

	// Pages of 7 through every node in turn: the cursor is stateless.
	got = got[:0]
	after := ""
	for i := 0; ; i++ {
		pg, err := c.Keys(ctx, "", after, 7, client.Node(i%3))
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Keys) > 7 {
			t.Fatalf("page of %d keys for limit 7", len(pg.Keys))
		}
		got = append(got, pg.Keys...)
		if pg.Next == "" {
			break
		}
		after = pg.Next
	}
	if len(got) != 119 {
		t.Fatalf("paged listing: %d keys, want 119", len(got))
	}
	// Partitions in ring order, keys in byte order within each, across
	// pages.
	rg := cl.Node(0).Ring()
	same := 0
	for i := 1; i < len(got); i++ {
		pa, pb := rg.PartitionOf([]byte(got[i-1])), rg.PartitionOf([]byte(got[i]))
		if pb < pa || (pb == pa && got[i] <= got[i-1]) {
			t.Fatalf("paged listing: %q (partition %d) after %q (partition %d)", got[i], pb, got[i-1], pa)
		}
		if pa == pb {
			same++
		}
	}
	if same < 10 {
		t.Fatalf("only %d neighbours share a partition (of %d): the order check checked little", same, rg.Partitions())
	}

	stopped := 0
	if _, err := c.Scan(ctx, "", func(string) bool { stopped++; return stopped < 3 }); err != nil || stopped != 3 {
		t.Fatalf("Scan stopped by fn: %d calls, %v", stopped, err)
	}
	for _, tc := range []struct{ after, param, value string }{
		{"bogus", "", ""}, {"", "limit", "0"}, {"", "limit", "x"}, {"", "limit", "20000"}, {"", "n", "1"}, {"", "timeout", "0"},
	} {
		var opts []client.RequestOption
		if tc.param != "" {
			opts = append(opts, client.Param(tc.param, tc.value))
		}
		if _, err := c.Keys(ctx, "", tc.after, 0, opts...); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("Keys(after=%q, %s=%s) = %v, want ErrBadRequest", tc.after, tc.param, tc.value, err)
		}
	}
	if _, err := c.Keys(ctx, "", "", 0, client.W(2)); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("Keys with option W: %v", err)
	}
}

func TestAgainstNodeCreateOnly(t *testing.T) {
	_, c := cluster(t)
	ctx := t.Context()
	// A single client creating each key twice: the second always refused.
	for i := range 200 {
		k := fmt.Sprintf("c%d", i/2)
		_, err := c.Put(ctx, k, []byte(fmt.Sprint(i)), client.CreateOnly(), client.Node(i%3))
		switch {
		case i%2 == 0 && err != nil:
			t.Fatalf("create %d of %s: %v", i, k, err)
		case i%2 == 1 && !errors.Is(err, client.ErrExists):
			t.Fatalf("second create %d of %s: %v, want ErrExists", i, k, err)
		case i%2 == 1 && errors.Is(err, client.ErrBadRequest):
			t.Fatalf("ErrExists matches ErrBadRequest: %v", err)
		}
	}
	obj, err := c.Get(ctx, "c0")
	if err != nil || len(obj.Siblings) != 1 || string(obj.Siblings[0].Value) != "0" {
		t.Fatalf("c0 after a refused create: %+v, %v", obj, err)
	}
	// A deleted key can be created again (the create supersedes the tombstone).
	if _, err := c.Delete(ctx, "c0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "c0", []byte("again"), client.CreateOnly(), client.R(3)); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if obj, err = c.Get(ctx, "c0"); err != nil || len(obj.Siblings) != 1 || string(obj.Siblings[0].Value) != "again" {
		t.Fatalf("c0 re-created: %+v, %v", obj, err)
	}
	for _, opts := range [][]client.RequestOption{{client.CreateOnly(), client.Overwrite()}, {client.CreateOnly(), client.Context(obj.Context)}} {
		if _, err := c.Put(ctx, "c0", []byte("x"), opts...); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("create only combined with overwrite or context: %v, want ErrBadRequest", err)
		}
	}
}

func TestIfNoneMatchOnlyStar(t *testing.T) {
	cl, _ := cluster(t)
	for _, h := range []string{`"etag"`, "*, *", ""} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, cl.URL(0)+"/kv/x", strings.NewReader("v"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("If-None-Match", h)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("If-None-Match %q: %d, want 400", h, res.StatusCode)
		}
	}
}
