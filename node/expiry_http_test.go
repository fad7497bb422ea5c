package node_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// PUT ?ttl= gives the value a deadline stamped by the coordinator; GET
// answers the time left (X-Quorumkv-Expires) and, past the deadline, 404
// on every node, quorum or local read; siblings list their deadlines.
func TestHTTPTTL(t *testing.T) {
	fc := clock.NewFake(time.Date(2045, 6, 1, 0, 0, 0, 0, time.UTC))
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(_ int, cfg *node.Config) { cfg.Now = fc.Now }})
	u := func(i int, path string) string { return c.URL(i) + path }

	if a := httpDo(t, "PUT", u(0, "/kv/k?ttl=30s&w=3"), "v", nil); a.status != 204 {
		t.Fatalf("put with ttl: %d %s", a.status, a.body)
	}
	if a := httpDo(t, "PUT", u(1, "/kv/days?ttl=2d&w=3"), "v", nil); a.status != 204 {
		t.Fatalf("put with ttl=2d: %d %s", a.status, a.body)
	}
	if a := httpDo(t, "PUT", u(1, "/kv/plain?w=3"), "v", nil); a.status != 204 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	fc.Advance(10 * time.Second)
	for i := range 3 {
		a := httpDo(t, "GET", u(i, "/kv/k?r=3"), "", nil)
		if a.status != 200 || a.header.Get(api.HeaderExpires) != "20s" {
			t.Fatalf("node %d, 10s after: %d, expires %q", i, a.status, a.header.Get(api.HeaderExpires))
		}
	}
	if a := httpDo(t, "GET", u(2, "/kv/days"), "", nil); a.header.Get(api.HeaderExpires) != "47h59m50s" {
		t.Fatalf("2d: expires %q", a.header.Get(api.HeaderExpires))
	}
	if a := httpDo(t, "GET", u(2, "/kv/plain"), "", nil); a.status != 200 || a.header.Get(api.HeaderExpires) != "" {
		t.Fatalf("a value without ttl: %d, expires %q", a.status, a.header.Get(api.HeaderExpires))
	}

	// A concurrent blind write without a deadline: siblings, each listing
	// its own.
	if a := httpDo(t, "PUT", u(2, "/kv/k?w=3"), "forever", nil); a.status != 204 {
		t.Fatalf("second put: %d", a.status)
	}
	a := httpDo(t, "GET", u(0, "/kv/k?r=3"), "", nil)
	var sibs api.Siblings
	if a.status != 300 || json.Unmarshal([]byte(a.body), &sibs) != nil || len(sibs.Siblings) != 2 || a.header.Get(api.HeaderExpires) != "" {
		t.Fatalf("siblings: %d %s (expires %q)", a.status, a.body, a.header.Get(api.HeaderExpires))
	}
	withDeadline := 0
	for _, s := range sibs.Siblings {
		if s.Expires != nil {
			withDeadline++
			if !s.Expires.Equal(fc.Now().Add(20 * time.Second)) {
				t.Fatalf("sibling deadline %v, want %v", s.Expires, fc.Now().Add(20*time.Second))
			}
		}
	}
	if withDeadline != 1 {
		t.Fatalf("%d siblings with a deadline, want 1", withDeadline)
	}

	fc.Advance(20 * time.Second) // at the deadline
	for i := range 3 {
		// Expired, the value answers as its tombstone, as a concurrent
		// delete does: marked deleted, without its data.
		a := httpDo(t, "GET", u(i, "/kv/k?r=3"), "", nil)
		var sibs api.Siblings
		if a.status != 300 || json.Unmarshal([]byte(a.body), &sibs) != nil {
			t.Fatalf("node %d after the deadline: %d %q", i, a.status, a.body)
		}
		for _, s := range sibs.Siblings {
			if (s.Expires != nil) != s.Deleted || s.Deleted && s.Value != "" {
				t.Fatalf("node %d after the deadline: %+v, want the expired value as a tombstone", i, s)
			}
		}
		if a := httpDo(t, "GET", u(i, "/kv/plain?local=true"), "", nil); a.status != 200 {
			t.Fatalf("node %d: plain key %d", i, a.status)
		}
	}
	if a := httpDo(t, "PUT", u(0, "/kv/short?ttl=1s&w=3"), "v", nil); a.status != 204 {
		t.Fatalf("put: %d", a.status)
	}
	fc.Advance(time.Second)
	for i := range 3 {
		for _, q := range []string{"?r=3", "?local=true"} {
			if a := httpDo(t, "GET", u(i, "/kv/short"+q), "", nil); a.status != 404 {
				t.Fatalf("node %d GET%s after the deadline: %d %q, want 404", i, q, a.status, a.body)
			}
		}
	}

	for _, bad := range []string{"ttl=0s", "ttl=-1s", "ttl=soon", "ttl=1.5d", "ttl=", "ttl=99999999999d", "ttl=2562047h"} {
		a := httpDo(t, "PUT", u(0, "/kv/bad?"+bad), "v", nil)
		if a.status != 400 || errorCode(t, a) != api.CodeBadParameter {
			t.Errorf("PUT ?%s: %d %s, want 400", bad, a.status, a.body)
		}
	}
	if a := httpDo(t, "DELETE", u(0, "/kv/k?ttl=1s"), "", nil); a.status != 400 {
		t.Errorf("DELETE with ttl: %d, want 400", a.status)
	}
}

// A write with a deadline through a node that is not a replica of the key
// is forwarded (RPC method 11) with the deadline the first node stamped.
func TestHTTPTTLForwarded(t *testing.T) {
	fc := clock.NewFake(time.Date(2045, 6, 1, 0, 0, 0, 0, time.UTC))
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(_ int, cfg *node.Config) { cfg.Now = fc.Now }})
	// At n=1 each key has one replica: through each node, write keys
	// until one is forwarded to its replica, then read it back there.
	for i := range 3 {
		key := ""
		for j := 0; j < 30 && key == ""; j++ {
			k := fmt.Sprintf("/kv/f%d-%d", i, j)
			a := httpDo(t, "PUT", c.URL(i)+k+"?n=1&ttl=30s", "v", nil)
			if a.status != 204 {
				t.Fatalf("put via node %d: %d %s", i, a.status, a.body)
			}
			if a.header.Get(api.HeaderCoordinator) != c.Node(i).ID() {
				key = k
			}
		}
		if key == "" {
			t.Fatalf("none of 30 keys written through node %d was forwarded", i)
		}
		fc.Advance(time.Second)
		a := httpDo(t, "GET", c.URL(i)+key+"?n=1", "", nil)
		if a.status != 200 || a.header.Get(api.HeaderExpires) != "29s" {
			t.Fatalf("get via node %d of %s forwarded: %d, expires %q", i, key, a.status, a.header.Get(api.HeaderExpires))
		}
	}
}
