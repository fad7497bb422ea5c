package client_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// cluster starts three in-process nodes (in-memory stores, scripted gossip,
// HTTP on 127.0.0.1) and a client with all three addresses.
func cluster(t *testing.T) (*nodetest.Cluster, *client.Client) {
	t.Helper()
	cl := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	cl.WaitAllAlive(10 * time.Second)
	var addrs []string
	for i := range cl.Len() {
		addrs = append(addrs, cl.URL(i))
	}
	c, err := client.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return cl, c
}

func TestAgainstNodeSiblingsAndContexts(t *testing.T) {
	_, c := cluster(t)
	ctx := t.Context()

	obj, err := c.Get(ctx, "k")
	if !errors.Is(err, client.ErrNotFound) || obj == nil || obj.Found {
		t.Fatalf("get of a new key: obj %+v err %v", obj, err)
	}
	wr, err := c.Put(ctx, "k", []byte("v1"), client.W(3), client.ContentType("text/plain"))
	if err != nil {
		t.Fatal(err)
	}
	if wr.Acks.Total() != 3 || wr.Context == "" || wr.Dot == "" || wr.Coordinator == "" || wr.Siblings != 1 {
		t.Fatalf("put: %+v", wr)
	}
	for i := range 3 {
		obj, err := c.Get(ctx, "k", client.R(1), client.Node(i))
		if err != nil {
			t.Fatalf("get via node %d: %v", i, err)
		}
		if !obj.Found || len(obj.Siblings) != 1 || string(obj.Siblings[0].Value) != "v1" ||
			obj.Siblings[0].ContentType != "text/plain" || obj.Siblings[0].Dot != wr.Dot {
			t.Fatalf("get via node %d: %+v", i, obj)
		}
	}

	// A second blind write is concurrent with the first: two siblings.
	if _, err := c.Put(ctx, "k", []byte("v2"), client.W(3)); err != nil {
		t.Fatal(err)
	}
	obj, err = c.Get(ctx, "k", client.R(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(obj.Live()) != 2 {
		t.Fatalf("after two blind puts: %+v", obj)
	}
	var vals []string
	for _, s := range obj.Siblings {
		vals = append(vals, string(s.Value))
	}
	if strings.Join(vals, ",") != "v1,v2" && strings.Join(vals, ",") != "v2,v1" {
		t.Fatalf("sibling values %q", vals)
	}

	// Writing with the read's context resolves them.
	wr, err = c.Put(ctx, "k", []byte("v3"), client.Context(obj.Context), client.W(3), client.ReturnBody())
	if err != nil {
		t.Fatal(err)
	}
	if wr.Object == nil || len(wr.Object.Siblings) != 1 || string(wr.Object.Siblings[0].Value) != "v3" {
		t.Fatalf("put with context: %+v %+v", wr, wr.Object)
	}
	obj, err = c.Get(ctx, "k", client.R(3))
	if err != nil || len(obj.Siblings) != 1 || !bytes.Equal(obj.Siblings[0].Value, []byte("v3")) {
		t.Fatalf("after resolving: %+v %v", obj, err)
	}

	// Delete with the context: not found, but a context remains.
	if _, err := c.Delete(ctx, "k", client.Context(obj.Context), client.W(3)); err != nil {
		t.Fatal(err)
	}
	obj, err = c.Get(ctx, "k", client.R(3))
	if !errors.Is(err, client.ErrNotFound) || obj == nil || obj.Context == "" {
		t.Fatalf("after delete: obj %+v err %v", obj, err)
	}
	// Local read of each node's own copy, no quorum.
	for i := range 3 {
		_, err := c.Get(ctx, "k", client.Local(), client.Node(i))
		if !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("local get on node %d after a w=3 delete: %v", i, err)
		}
	}
}

func TestAgainstNodeErrors(t *testing.T) {
	cl, c := cluster(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		param string
		opts  []client.RequestOption
	}{
		{"r above n", "r", []client.RequestOption{client.N(3), client.R(4)}},
		{"n zero", "n", []client.RequestOption{client.N(0)}},
		{"r not a number", "r", []client.RequestOption{client.Param("r", "abc")}},
		{"unknown parameter", "rr", []client.RequestOption{client.Param("rr", "3")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Get(ctx, "k", tc.opts...)
			var e *client.Error
			if !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &e) || e.Status != 400 || e.Param != tc.param || e.Msg == "" {
				t.Fatalf("err = %#v", err)
			}
		})
	}
	if _, err := c.Put(ctx, strings.Repeat("k", 2000), []byte("v")); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("long key: %v", err)
	}
	if _, err := c.Put(ctx, "k", []byte("v"), client.Context("not a context")); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("bad context: %v", err)
	}

	// With one node down, r=3 cannot be met: a quorum error with counts.
	cl.Kill(2)
	cl.Gossip.SetDead(cl.ID(2), true)
	_, err := c.Get(ctx, "k", client.R(3), client.Node(0))
	var e *client.Error
	if !errors.Is(err, client.ErrQuorum) || !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &e) {
		t.Fatalf("r=3 with a node down: %v", err)
	}
	if e.Status != 503 || e.Required != 3 || e.Targets != 2 {
		t.Fatalf("quorum error counts: %+v", e)
	}
	if _, err := c.Put(ctx, "k", []byte("v"), client.W(2), client.Node(0)); err != nil {
		t.Fatalf("w=2 with a node down: %v", err)
	}
}

func TestAgainstNodeInfo(t *testing.T) {
	cl, c := cluster(t)
	ctx := t.Context()
	ms, err := c.Members(ctx, client.Node(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("members = %+v", ms)
	}
	for _, m := range ms {
		if m.State != "alive" || !m.OnRing || m.HTTP == "" {
			t.Errorf("member %+v", m)
		}
	}
	rg, err := c.Ring(ctx, client.N(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(rg.Members) != 3 || rg.N != 2 || len(rg.Owners) != rg.Partitions || len(rg.Owners[0].Primaries) != 2 {
		t.Fatalf("ring = %+v", rg)
	}
	st, err := c.Status(ctx, client.Node(2))
	if err != nil {
		t.Fatal(err)
	}
	if st.RingSize != 3 || st.Node == "" || len(st.Raw) == 0 {
		t.Fatalf("status = %+v", st)
	}
	// One type (api.Status) on both sides: the typed sections arrive as
	// the node filled them.
	own := cl.Node(2).Status()
	if st.Node != own.Node || st.AntiEntropy.LeafBits != own.AntiEntropy.LeafBits || st.AntiEntropy.LeafBits == 0 ||
		st.AntiEntropy.IntervalSeconds != own.AntiEntropy.IntervalSeconds || st.Hints.Dropped == nil {
		t.Fatalf("status = %+v, the node's own = %+v", st.Status, own)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAgainstNodeConcurrent runs many requests at once through one client,
// as the bench tool will, under -race.
func TestAgainstNodeConcurrent(t *testing.T) {
	_, c := cluster(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			key := "c" + string(rune('a'+g%26))
			if _, err := c.Put(ctx, key, []byte("x")); err != nil {
				errs <- err
				return
			}
			if _, err := c.Get(ctx, key); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Issue 19, item 8: "." and ".." are keys like any other (a path cleaner
// used to turn /kv/.. into a redirect to /), and so are keys with slashes
// that cleaning would merge; each keeps its own value, through the client
// and through raw paths.
func TestAgainstNodeDotKeys(t *testing.T) {
	cl, c := cluster(t)
	ctx := t.Context()
	keys := []string{".", "..", "...", "a//b", "a/b", "a/../b", "b", "/", "./x"}
	for _, k := range keys {
		if _, err := c.Put(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	for _, k := range keys {
		obj, err := c.Get(ctx, k)
		if err != nil || len(obj.Siblings) != 1 || string(obj.Siblings[0].Value) != "v:"+k {
			t.Fatalf("get %q: %+v %v", k, obj, err)
		}
	}
	// Raw paths, as curl --path-as-is sends them: not cleaned, not
	// redirected.
	for raw, key := range map[string]string{"/kv/..": "..", "/kv/.": ".", "/kv/a//b": "a//b", "/kv/%2E%2E": ".."} {
		res, err := http.Get(cl.URL(0) + raw)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "v:"+key {
			t.Errorf("GET %s: %d %q, want the value of key %q", raw, res.StatusCode, b, key)
		}
	}
}
