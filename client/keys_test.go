package client_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/quorumkv/quorumkv/client"
)

func TestAgainstNodeKeysAndScan(t *testing.T) {
	_, c := cluster(t)
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

	stopped := 0
	if _, err := c.Scan(ctx, "", func(string) bool { stopped++; return stopped < 3 }); err != nil || stopped != 3 {
		t.Fatalf("Scan stopped by fn: %d calls, %v", stopped, err)
	}
	for _, tc := range []struct{ after, param, value string }{
		{"bogus", "", ""}, {"", "limit", "0"}, {"", "limit", "x"}, {"", "n", "1"},
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
