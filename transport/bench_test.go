package transport

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/cputime"
	"github.com/quorumkv/quorumkv/membudget"
)

// reflect replies with the request body itself (handlers may alias it).
var reflect = HandlerFunc(func(_ context.Context, _ string, _ Method, body []byte) ([]byte, error) {
	return body, nil
})

// benchPair starts a server and a client on 127.0.0.1 with the default
// config and the given secret ("" for a plain wire) and opens every
// connection before timing.
func benchPair(b *testing.B, secret string) (srv, cli *TCP) {
	b.Helper()
	return benchPairWith(b, func(cfg *Config) { cfg.Secret = []byte(secret) })
}

// benchPairWith is benchPair with the config (of both ends) adjusted.
func benchPairWith(b *testing.B, adjust func(*Config)) (srv, cli *TCP) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	adjust(&cfg)
	cfg.NodeID, cfg.Handler = "server", reflect
	srv, err := Listen(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	cfg.NodeID, cfg.Handler = "client", nil
	cli, err = Listen(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	for range 2 * cfg.ConnsPerPeer {
		if _, err := cli.Call(context.Background(), srv.LocalAddr(), 1, nil); err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv, cli
}

// runCalls times call with the given number of concurrent callers and
// reports throughput and process CPU per call. ns/op is wall time per call
// across all callers.
func runCalls(b *testing.B, callers int, call func() error) {
	b.ReportAllocs()
	cpu0 := cputime.Process(b)
	if callers == 1 {
		for b.Loop() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// RunParallel starts parallelism*GOMAXPROCS goroutines.
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((callers + procs - 1) / procs)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(cputime.Process(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// reportSyscalls reports the socket writes and reads per call made by both
// ends, from the transports' own counters.
func reportSyscalls(b *testing.B, srv, cli *TCP, before [2]PeerStats) {
	c, s := cli.Stats()[srv.LocalAddr()], srv.Stats()[cli.LocalAddr()]
	writes := c.Writes + s.Writes - before[0].Writes - before[1].Writes
	reads := c.Reads + s.Reads - before[0].Reads - before[1].Reads
	frames := c.FramesSent + s.FramesSent - before[0].FramesSent - before[1].FramesSent
	b.ReportMetric(float64(writes)/float64(b.N), "writes/call")
	b.ReportMetric(float64(reads)/float64(b.N), "reads/call")
	b.ReportMetric(float64(frames)/float64(writes), "frames/write")
}

// roundTrips runs calls of a body of size bytes from cli to srv with the
// given number of concurrent callers (runCalls), and reports the syscalls
// per call (reportSyscalls).
func roundTrips(b *testing.B, srv, cli *TCP, callers, size int) {
	addr, body, ctx := srv.LocalAddr(), make([]byte, size), context.Background()
	before := [2]PeerStats{cli.Stats()[addr], srv.Stats()[cli.LocalAddr()]}
	runCalls(b, callers, func() error {
		_, err := cli.Call(ctx, addr, 1, body)
		return err
	})
	reportSyscalls(b, srv, cli, before)
}

// BenchmarkTCPRoundTrip is a call whose handler echoes the body, on a
// plain wire (no secret: protocol version 1) and a sealed one (secret:
// version 2, AES-256-GCM records), with one caller and with 32.
func BenchmarkTCPRoundTrip(b *testing.B) {
	for _, wire := range []string{"plain", "sealed"} {
		for _, size := range []int{100, 4 << 10} {
			for _, callers := range []int{1, 32} {
				b.Run(fmt.Sprintf("wire=%s/size=%d/callers=%d", wire, size, callers), func(b *testing.B) {
					secret := ""
					if wire == "sealed" {
						secret = "bench secret"
					}
					srv, cli := benchPair(b, secret)
					roundTrips(b, srv, cli, callers, size)
				})
			}
		}
	}
}

// BenchmarkTCPRoundTripDeadline is the common case of a caller with a
// deadline: it adds the per-call context.WithTimeout on the caller side
// and the budget's context on the handler side.
func BenchmarkTCPRoundTripDeadline(b *testing.B) {
	for _, callers := range []int{1, 32} {
		b.Run(fmt.Sprintf("size=100/callers=%d", callers), func(b *testing.B) {
			srv, cli := benchPair(b, "bench secret")
			addr, body := srv.LocalAddr(), make([]byte, 100)
			runCalls(b, callers, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Call(ctx, addr, 1, body)
				cancel()
				return err
			})
		})
	}
}

func BenchmarkMemRoundTrip(b *testing.B) {
	for _, size := range []int{100, 4 << 10} {
		for _, callers := range []int{1, 32} {
			b.Run(fmt.Sprintf("size=%d/callers=%d", size, callers), func(b *testing.B) {
				n := NewMemNetwork(1)
				srv, err := n.Listen("srv", "server", reflect)
				if err != nil {
					b.Fatal(err)
				}
				defer srv.Close()
				cli, err := n.Listen("cli", "client", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer cli.Close()
				body, ctx := make([]byte, size), context.Background()
				runCalls(b, callers, func() error {
					_, err := cli.Call(ctx, "srv", 1, body)
					return err
				})
			})
		}
	}
}

// BenchmarkTCPWriterYield compares the writer with and without its yield
// before a flush, which is what makes frames from concurrent callers share
// a write syscall.
func BenchmarkTCPWriterYield(b *testing.B) {
	for _, yield := range []bool{true, false} {
		for _, callers := range []int{1, 32} {
			b.Run(fmt.Sprintf("yield=%t/size=100/callers=%d", yield, callers), func(b *testing.B) {
				srv, cli := benchPair(b, "bench secret")
				srv.noYield.Store(!yield)
				cli.noYield.Store(!yield)
				roundTrips(b, srv, cli, callers, 100)
			})
		}
	}
}

// BenchmarkTCPMemBudget is the sealed 100-byte round trip at 32 callers
// with and without a node memory budget (Config.Budget) charged for every
// request and reply frame: the cost of the accounting (issue 14).
func BenchmarkTCPMemBudget(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("budget=%t", on), func(b *testing.B) {
			srv, cli := benchPairWith(b, func(cfg *Config) {
				cfg.Secret = []byte("bench secret")
				if on {
					cfg.Budget, _ = membudget.New(membudget.Config{Limit: 1 << 30})
				}
			})
			roundTrips(b, srv, cli, 32, 100)
		})
	}
}

// BenchmarkTCPGo is the coordinator's path: asynchronous calls (TCP.Go)
// under a deadline, so the handler runs under the request's budget ctx,
// on a sealed wire, 100-byte bodies. Each caller waits for its reply as a
// client connection waits for its quorum.
func BenchmarkTCPGo(b *testing.B) {
	benchAsync(b, func(cli *TCP, ctx context.Context, addr string, body []byte) error {
		ch := make(chan error, 1)
		cli.Go(ctx, addr, 1, body, func(_ []byte, err error) { ch <- err })
		return <-ch
	})
}

// benchAsync times call, an asynchronous call and the wait for its end, as
// BenchmarkTCPGo describes.
func benchAsync(b *testing.B, call func(cli *TCP, ctx context.Context, addr string, body []byte) error) {
	for _, callers := range []int{1, 32} {
		b.Run(fmt.Sprintf("size=100/callers=%d", callers), func(b *testing.B) {
			srv, cli := benchPair(b, "bench secret")
			addr, body := srv.LocalAddr(), make([]byte, 100)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			before := [2]PeerStats{cli.Stats()[addr], srv.Stats()[cli.LocalAddr()]}
			runCalls(b, callers, func() error { return call(cli, ctx, addr, body) })
			reportSyscalls(b, srv, cli, before)
		})
	}
}

// chanCompleter hands a GoTo call's error to the caller waiting on it.
type chanCompleter chan error

func (c chanCompleter) Complete(_ []byte, err error) { c <- err }

// BenchmarkTCPGoTo is BenchmarkTCPGo through GoTo, each caller reusing
// its Completer: the allocations left are the transport's own (the reply
// body; the handler's ctx, unless shared).
func BenchmarkTCPGoTo(b *testing.B) {
	waiters := sync.Pool{New: func() any { return make(chanCompleter, 1) }}
	benchAsync(b, func(cli *TCP, ctx context.Context, addr string, body []byte) error {
		c := waiters.Get().(chanCompleter)
		defer waiters.Put(c)
		cli.GoTo(ctx, addr, 1, body, c)
		return <-c
	})
}
