package httpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/bench/httpclient"
	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/transport"
)

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&client.Error{Status: 503, Code: "quorum_not_met"}, "quorum"},
		{fmt.Errorf("get %q: %w", "k", &client.Error{Status: 503, Code: "quorum_not_met"}), "quorum"},
		{&client.Error{Status: 503, Code: "shutting_down"}, "unavailable"},
		{&client.Error{Status: 400, Code: "bad_parameter"}, "bad_request"},
		{&client.Error{Status: 413, Code: "too_large"}, "bad_request"},
		{&client.Error{Status: 500, Code: "internal"}, "other"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("get: %w", context.Canceled), "canceled"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "unavailable"},
		{&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, "unavailable"},
		{fmt.Errorf("get: %w", io.EOF), "unavailable"},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "timeout"},
		{fmt.Errorf("put: %w", httpclient.ErrBadAnswer), "bad_answer"},
		{errors.New("something else"), "other"},
	}
	for _, tc := range tests {
		if got := httpclient.ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// cluster starts three in-process nodes whose node-to-node calls are
// delayed by delay each way, and the adapter over a client of all three.
func cluster(t *testing.T, delay time.Duration) *httpclient.Client {
	t.Helper()
	cl := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(i int, c *node.Config) {
		c.WrapTransport = func(tr transport.Transport) transport.Transport {
			return transport.NewDelayed(tr, func() time.Duration { return delay })
		}
	}})
	cl.WaitAllAlive(10 * time.Second)
	var addrs []string
	for i := range cl.Len() {
		addrs = append(addrs, cl.URL(i))
	}
	hc, err := client.New(addrs, client.WithMaxIdleConnsPerHost(16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Close() })
	return httpclient.New(hc)
}

func TestAdapterAgainstNodes(t *testing.T) {
	c := cluster(t, 0)
	ctx := t.Context()
	if c.Coordinators() != 3 {
		t.Fatalf("Coordinators = %d, want 3", c.Coordinators())
	}
	q := bench.Quorum{N: 3, R: 2, W: 2}
	r, err := c.Get(ctx, 0, "k", q, false)
	if err != nil || r.Found || len(r.Values) != 0 {
		t.Fatalf("get of a new key: %+v, %v (want a successful not-found read)", r, err)
	}
	w1, err := c.Put(ctx, 1, "k", []byte("a"), "", q)
	if err != nil || w1.Context == "" || !sameValues(w1.Values, "a") {
		t.Fatalf("put via node 1: %+v, %v (want its answer to show a)", w1, err)
	}
	// A blind write through another node is concurrent: two siblings.
	// Its answer shows the coordinator's copy after the write (returnbody):
	// b, and a if that node already had it.
	w2, err := c.Put(ctx, 2, "k", []byte("b"), "", q)
	if err != nil || !(sameValues(w2.Values, "a", "b") || sameValues(w2.Values, "b")) {
		t.Fatalf("blind put via node 2: %+v, %v", w2, err)
	}
	r, err = c.Get(ctx, 0, "k", q, true)
	if err != nil || !r.Found || !sameValues(r.Values, "a", "b") {
		t.Fatalf("read after two blind writes: %+v, %v", r, err)
	}
	// A write with the read's context supersedes both.
	w3, err := c.Put(ctx, 0, "k", []byte("c"), r.Context, q)
	if err != nil || !sameValues(w3.Values, "c") {
		t.Fatalf("resolving put: %+v, %v", w3, err)
	}
	r, err = c.Get(ctx, 1, "k", q, false)
	if err != nil || !sameValues(r.Values, "c") {
		t.Fatalf("read after resolving: %+v, %v", r, err)
	}
	if _, err := c.Get(ctx, 0, "k", bench.Quorum{N: 3, R: 4, W: 1}, false); httpclient.ErrorKind(err) != "bad_request" {
		t.Fatalf("R > N: %v (kind %q), want bad_request", err, httpclient.ErrorKind(err))
	}
	if _, err := c.Get(ctx, 5, "k", q, false); httpclient.ErrorKind(err) != "bad_request" {
		t.Fatalf("coordinator out of range: %v, want bad_request", err)
	}
	// Create: written when absent, refused (false, no error) when present.
	for i, want := range []bool{true, false} {
		if created, err := c.Create(ctx, i, "new", []byte("n"), q); err != nil || created != want {
			t.Fatalf("create %d: %v, %v; want %v", i, created, err, want)
		}
	}
}

// sameValues reports whether got holds exactly want, in any order.
func sameValues(got [][]byte, want ...string) bool {
	g := make([]string, len(got))
	for i, v := range got {
		g[i] = string(v)
	}
	slices.Sort(g)
	slices.Sort(want)
	return slices.Equal(g, want)
}

// TestSweepOverDelayedCluster is the bench's claim in small: with node-to-node
// messages delayed, R=W=1 reads through another coordinator miss recent
// writes, R+W>N reads never do, and no setting loses a write.
func TestSweepOverDelayedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for a few seconds")
	}
	c := cluster(t, 10*time.Millisecond)
	cfg := bench.DefaultConfig()
	cfg.Workload = bench.WorkloadA
	cfg.Keys = 20
	cfg.Concurrency = 4
	cfg.Duration = 0
	cfg.Ops = 600
	cfg.Settle = 200 * time.Millisecond
	cfg.ErrorKind = httpclient.ErrorKind
	rep, err := bench.Sweep(t.Context(), c, cfg, []bench.Quorum{{N: 3, R: 1, W: 1}, {N: 3, R: 2, W: 2}})
	if err != nil {
		t.Fatal(err)
	}
	weak, strict := rep.Results[0], rep.Results[1]
	for _, r := range rep.Results {
		if r.Errors != 0 || r.LoadErrors != 0 || !r.Consistency.LostChecked || r.Consistency.LostWrites != 0 {
			t.Errorf("%s: %d errors %v, %d load errors, lost writes %d (checked %v)", r.Quorum,
				r.Errors, r.ErrorsByKind, r.LoadErrors, r.Consistency.LostWrites, r.Consistency.LostChecked)
		}
	}
	if weak.Consistency.StaleReads == 0 {
		t.Errorf("3/1/1 with 10ms delays: no stale read in %d reads", weak.Read.Count)
	}
	if strict.Consistency.StaleReads != 0 {
		t.Errorf("3/2/2: %d stale reads, want 0", strict.Consistency.StaleReads)
	}
}
