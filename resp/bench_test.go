package resp_test

import (
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/internal/cputime"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/transport"
)

// tcpRESPCluster is a 3-node cluster in this process on the real TCP
// transport and badger on disk, as agents run, each node with a RESP
// listener on 127.0.0.1.
//
// With QUORUMKV_BENCH_SYNC=1 every node runs with Sync (--sync: a write is
// acknowledged once fsynced), so the synced/unsynced ratio at 50 clients
// is that of two runs of this benchmark.
func tcpRESPCluster(b testing.TB) *nodetest.Cluster {
	sync := os.Getenv("QUORUMKV_BENCH_SYNC") == "1"
	return nodetest.NewCluster(b, 3, nodetest.Options{Config: func(i int, c *node.Config) {
		c.Sync = sync
		c.RESPAddr = "127.0.0.1:0"
		c.RPCAddr = "127.0.0.1:0"
		c.NewTransport = func(h transport.Handler) (transport.Transport, error) {
			tc := transport.DefaultConfig()
			tc.NodeID, tc.ListenAddr, tc.Secret, tc.Handler = c.NodeID, c.RPCAddr, []byte(c.Secret), h
			return transport.Listen(tc)
		}
	}})
}

// goroutinesCreated is how many goroutines the process has started so far.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// BenchmarkRESP drives SET and GET (N=3 R=2 W=2, 100-byte values, 100,000
// keys) through one node's RESP port of an in-process 3-node cluster, with
// one client (latency, allocations) and with 50 concurrent clients (group
// commit and frame coalescing at work). cpu-µs/op is the whole process's
// CPU time per operation: the three nodes and the go-redis client;
// goroutines/op the goroutines the process started per operation.
func BenchmarkRESP(b *testing.B) {
	c := tcpRESPCluster(b)
	cl := redis.NewClient(&redis.Options{Addr: c.Node(0).RESPAddr(), Protocol: 2, DisableIdentity: true, PoolSize: 64})
	b.Cleanup(func() { cl.Close() })
	ctx := context.Background()
	const keys = 100000
	val := make([]byte, 100)
	for i := range 1000 { // some keys exist before the reads start
		if err := cl.Set(ctx, "key:"+strconv.Itoa(i*(keys/1000)), val, 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	ops := map[string]func(k string) error{
		"set": func(k string) error { return cl.Set(ctx, k, val, 0).Err() },
		"get": func(k string) error {
			if err := cl.Get(ctx, k).Err(); err != nil && err != redis.Nil {
				return err
			}
			return nil
		},
	}
	for _, op := range []string{"set", "get"} {
		do := ops[op]
		b.Run(fmt.Sprintf("op=%s/clients=1", op), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			cpu0, g0 := cputime.Process(b), goroutinesCreated()
			for b.Loop() {
				i++
				if err := do("key:" + strconv.Itoa(i*7919%keys)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cputime.Process(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(goroutinesCreated()-g0)/float64(b.N), "goroutines/op")
		})
		b.Run(fmt.Sprintf("op=%s/clients=50", op), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(25) // 50 goroutines on 2 cores
			cpu0, g0 := cputime.Process(b), goroutinesCreated()
			// RunParallel rather than b.Loop: the point is 50 requests in
			// flight at once.
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if err := do("key:" + strconv.Itoa(i*7919%keys)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64((cputime.Process(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(goroutinesCreated()-g0)/float64(b.N), "goroutines/op")
		})
	}
}
