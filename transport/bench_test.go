package transport

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// reflect replies with the request body itself (handlers may alias it).
var reflect = HandlerFunc(func(_ context.Context, _ string, _ Method, body []byte) ([]byte, error) {
	return body, nil
})

func benchPair(b *testing.B) (srv, cli *TCP) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Secret = []byte("bench")
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
	// Open every connection before timing.
	for range 2 * cfg.ConnsPerPeer {
		if _, err := cli.Call(context.Background(), srv.LocalAddr(), 1, nil); err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv, cli
}

// runCalls times call with the given number of concurrent callers and
// reports throughput. ns/op is wall time per call across all callers.
func runCalls(b *testing.B, callers int, call func() error) {
	b.ReportAllocs()
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
}

func BenchmarkTCPRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4 << 10} {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("size=%d/callers=%d", size, callers), func(b *testing.B) {
				srv, cli := benchPair(b)
				addr, body, ctx := srv.LocalAddr(), make([]byte, size), context.Background()
				runCalls(b, callers, func() error {
					_, err := cli.Call(ctx, addr, 1, body)
					return err
				})
			})
		}
	}
}

// BenchmarkTCPRoundTripDeadline is the common case of a caller with a
// deadline: it adds the per-call context.WithTimeout on the caller side
// and the budget's context on the handler side.
func BenchmarkTCPRoundTripDeadline(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("size=64/callers=%d", callers), func(b *testing.B) {
			srv, cli := benchPair(b)
			addr, body := srv.LocalAddr(), make([]byte, 64)
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
	for _, size := range []int{64, 4 << 10} {
		for _, callers := range []int{1, 64} {
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
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("yield=%t/size=64/callers=%d", yield, callers), func(b *testing.B) {
				srv, cli := benchPair(b)
				srv.noYield.Store(!yield)
				cli.noYield.Store(!yield)
				addr, body, ctx := srv.LocalAddr(), make([]byte, 64), context.Background()
				before := cli.Stats()[addr]
				runCalls(b, callers, func() error {
					_, err := cli.Call(ctx, addr, 1, body)
					return err
				})
				after := cli.Stats()[addr]
				b.ReportMetric(float64(after.FramesSent-before.FramesSent)/float64(after.Batches-before.Batches), "frames/write")
			})
		}
	}
}
