package node_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/quorumhook"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// Issue 16: an overwrite of a key whose replicas are in sync costs the
// coordinator two RPCs, both checked merges (wire method 15), and no read.
// The counts are logged per method (docs/bench/condwrite.md).
func TestOverwriteRPCsPerWrite(t *testing.T) {
	var mu sync.Mutex
	calls := map[transport.Method]int{}
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(i int, cfg *node.Config) {
		listen := cfg.NewTransport
		cfg.NewTransport = func(h transport.Handler) (transport.Transport, error) {
			return listen(transport.HandlerFunc(func(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
				if m == wire.MethodMerge || m == wire.MethodRead || m == wire.MethodReadContext || m == wire.MethodMergeCheck {
					mu.Lock() // the write path's methods only: not anti-entropy's
					calls[m]++
					mu.Unlock()
				}
				return h.ServeRPC(ctx, from, m, body)
			}))
		}
	}})
	co := c.Node(0).Coordinator()
	const n = 200
	overwrite := func(i int) {
		t.Helper()
		if _, err := co.Overwrite(t.Context(), quorum.PutRequest{Key: []byte("k" + strconv.Itoa(i)), Value: vclock.Value{Data: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		overwrite(i)
	}
	quorumhook.Wait(co) // the first pass's late acks land before counting starts
	mu.Lock()
	clear(calls)
	mu.Unlock()
	for i := range n {
		overwrite(i)
	}
	quorumhook.Wait(co)
	mu.Lock()
	defer mu.Unlock()
	var ms []int
	total := 0
	for m, v := range calls {
		ms = append(ms, int(m))
		total += v
	}
	sort.Ints(ms)
	var out string
	for _, m := range ms {
		out += fmt.Sprintf(" method %d: %.2f", m, float64(calls[transport.Method(m)])/n)
	}
	t.Logf("RPCs per overwrite: %.2f;%s", float64(total)/n, out)
	if calls[wire.MethodMergeCheck] != 2*n || total != 2*n {
		t.Errorf("RPCs per overwrite: %.2f;%s; want 2, both checked merges (method 15)", float64(total)/n, out)
	}
}

// BenchmarkOverwriteTCP is BenchmarkClusterTCP's one-caller put as an
// overwrite (RESP SET, HTTP PUT ?overwrite) of keys that exist, replicas
// in sync: allocs/op are the whole process's (three nodes and the caller).
func BenchmarkOverwriteTCP(b *testing.B) {
	c := nodetest.NewCluster(b, 3, nodetest.Options{TCP: true})
	co := c.Node(0).Coordinator()
	val := make([]byte, 100)
	const keys = 1000
	key := func(i int) []byte { return []byte("k" + strconv.Itoa(i%keys)) }
	for i := range keys {
		if _, err := co.Overwrite(b.Context(), quorum.PutRequest{Key: key(i), Value: vclock.Value{Data: val}}); err != nil {
			b.Fatal(err)
		}
	}
	quorumhook.Wait(co)
	b.ReportAllocs()
	lats := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := co.Overwrite(b.Context(), quorum.PutRequest{Key: key(i), Value: vclock.Value{Data: val}}); err != nil {
			b.Fatal(err)
		}
		lats = append(lats, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
}
