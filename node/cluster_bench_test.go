package node_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

// BenchmarkClusterTCP is a 3-node put and get at N=3 R=2 W=2 over the real
// TCP transport on 127.0.0.1, badger on disk, in one process, driven through
// node 1's coordinator (no HTTP): the replicated write and read paths alone.
// It reports ops/s, p50 and p99 besides ns/op and allocs/op (allocations of
// the whole process: three nodes and the caller). Each node has a memory
// budget for requests in flight, as an agent always does (--memory-limit):
// RPC frames are charged to it.
func BenchmarkClusterTCP(b *testing.B) {
	c := nodetest.NewCluster(b, 3, nodetest.Options{TCP: true, Config: func(_ int, cfg *node.Config) {
		budget, err := membudget.New(membudget.Config{Limit: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Limits.Budget = budget
	}})
	co := c.Node(0).Coordinator()
	p := quorum.Params{N: 3, R: 2, W: 2}
	val := make([]byte, 100)
	const keys = 100000
	ctx := b.Context()
	for i := range 1000 {
		if _, err := co.Put(ctx, quorum.PutRequest{Key: []byte("k" + strconv.Itoa(i*100)), Value: vclock.Value{Data: val}, Params: p}); err != nil {
			b.Fatal(err)
		}
	}
	ops := map[string]func(key []byte) error{
		"put": func(key []byte) error {
			_, err := co.Put(ctx, quorum.PutRequest{Key: key, Value: vclock.Value{Data: val}, Params: p})
			return err
		},
		"get": func(key []byte) error {
			_, err := co.Get(ctx, quorum.GetRequest{Key: key, Params: p})
			return err
		},
	}
	for _, op := range []string{"put", "get"} {
		for _, callers := range []int{1, 32} {
			b.Run(fmt.Sprintf("op=%s/callers=%d", op, callers), func(b *testing.B) {
				do := ops[op]
				b.ReportAllocs()
				// Exactly callers goroutines share b.N operations
				// (RunParallel would start a multiple of GOMAXPROCS).
				var (
					mu   sync.Mutex
					lats []time.Duration
					next atomic.Int64
					wg   sync.WaitGroup
				)
				start := time.Now()
				for range callers {
					wg.Go(func() {
						local := make([]time.Duration, 0, 1024)
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								break
							}
							t0 := time.Now()
							if err := do([]byte("k" + strconv.Itoa(int(i)*7919%keys))); err != nil {
								b.Error(err)
								break
							}
							local = append(local, time.Since(t0))
						}
						mu.Lock()
						lats = append(lats, local...)
						mu.Unlock()
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				slices.Sort(lats)
				if len(lats) > 0 {
					b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "ops/s")
					b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}
