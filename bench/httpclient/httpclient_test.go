package httpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/bench/httpclient"
	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
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

func TestWriteIDAndObserved(t *testing.T) {
	d := vclock.Dot{Actor: vclock.Actor{Node: "n2", Epoch: 5}, Counter: 7}
	id, err := httpclient.WriteID(vclock.EncodeDot(d))
	if err != nil || id != (bench.WriteID{Node: "n2", Epoch: 5, Counter: 7}) {
		t.Fatalf("WriteID = %+v, %v", id, err)
	}
	for _, bad := range []string{"", "!!", vclock.EncodeContext(vclock.NewVector(vclock.Entry(d)))} {
		if _, err := httpclient.WriteID(bad); !errors.Is(err, httpclient.ErrBadAnswer) {
			t.Errorf("WriteID(%q): %v, want ErrBadAnswer", bad, err)
		}
	}
	o := httpclient.Observed(vclock.NewVector(vclock.Entry(d)))
	for _, tc := range []struct {
		id   bench.WriteID
		want bool
	}{
		{id, true},
		{bench.WriteID{Node: "n2", Epoch: 5, Counter: 1}, true},
		{bench.WriteID{Node: "n2", Epoch: 5, Counter: 8}, false},
		{bench.WriteID{Node: "n2", Epoch: 4, Counter: 1}, false},
		{bench.WriteID{Node: "n1", Epoch: 5, Counter: 1}, false},
	} {
		if got := o.Covers(tc.id); got != tc.want {
			t.Errorf("Covers(%v) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if httpclient.Observed(nil).Covers(id) {
		t.Error("empty vector covers a write")
	}
}

// FuzzWriteID: arbitrary dot tokens never panic; a failure wraps
// ErrBadAnswer; a decoded id re-encodes to the same id.
func FuzzWriteID(f *testing.F) {
	f.Add(vclock.EncodeDot(vclock.Dot{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 1}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := httpclient.WriteID(s)
		if err != nil {
			if !errors.Is(err, httpclient.ErrBadAnswer) {
				t.Fatalf("error %v does not wrap ErrBadAnswer", err)
			}
			return
		}
		tok := vclock.EncodeDot(vclock.Dot{Actor: vclock.Actor{Node: id.Node, Epoch: id.Epoch}, Counter: id.Counter})
		again, err := httpclient.WriteID(tok)
		if err != nil || again != id {
			t.Fatalf("round trip %+v: %+v, %v", id, again, err)
		}
	})
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
	cl.WaitFor(10*time.Second, "every node to see every node alive", func() bool {
		for _, nd := range cl.Nodes() {
			ms := nd.Members()
			if len(ms) != cl.Len() {
				return false
			}
			for _, m := range ms {
				if m.State != "alive" {
					return false
				}
			}
		}
		return true
	})
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
	if err != nil || r.Found || r.Siblings != 0 {
		t.Fatalf("get of a new key: %+v, %v (want a successful not-found read)", r, err)
	}
	w1, err := c.Put(ctx, 1, "k", []byte("a"), "", q)
	if err != nil || w1.ID.Node != "n2" || w1.ID.Counter == 0 || w1.Context == "" {
		t.Fatalf("put via node 1: %+v, %v (want a dot minted by n2)", w1, err)
	}
	// A blind write through another node is concurrent: two siblings.
	w2, err := c.Put(ctx, 2, "k", []byte("b"), "", q)
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.Get(ctx, 0, "k", q, true)
	if err != nil || !r.Found || r.Siblings != 2 || !r.Observed.Covers(w1.ID) || !r.Observed.Covers(w2.ID) {
		t.Fatalf("read after two blind writes: %+v, %v", r, err)
	}
	// A write with the read's context supersedes both.
	w3, err := c.Put(ctx, 0, "k", []byte("c"), r.Context, q)
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.Get(ctx, 1, "k", q, false)
	if err != nil || r.Siblings != 1 || !r.Observed.Covers(w3.ID) {
		t.Fatalf("read after resolving: %+v, %v", r, err)
	}
	if _, err := c.Get(ctx, 0, "k", bench.Quorum{N: 3, R: 4, W: 1}, false); httpclient.ErrorKind(err) != "bad_request" {
		t.Fatalf("R > N: %v (kind %q), want bad_request", err, httpclient.ErrorKind(err))
	}
	if _, err := c.Get(ctx, 5, "k", q, false); httpclient.ErrorKind(err) != "bad_request" {
		t.Fatalf("coordinator out of range: %v, want bad_request", err)
	}
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
