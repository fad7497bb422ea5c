package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkChecker measures the cost of feeding one event (a write or a
// read) for several History sizes, over 10,000 keys with version-vector
// Observed values.
func BenchmarkChecker(b *testing.B) {
	const keys = 10_000
	names := make([]string, keys)
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
	obs := vv{"n0": 1 << 40, "n1": 1 << 40, "n2": 1 << 40}
	for _, history := range []int{1, 8, 64} {
		c, err := NewChecker(CheckerConfig{History: history})
		if err != nil {
			b.Fatal(err)
		}
		// Fill every key's history so reads scan full rings.
		var n uint64
		for range history {
			for _, k := range names {
				n++
				c.Write(WriteEvent{Key: k, ID: WriteID{Node: "n" + strconv.Itoa(int(n%3)), Epoch: 1, Counter: n}, Coord: int(n % 3), Ack: time.Duration(n)})
			}
		}
		b.Run(fmt.Sprintf("write/history=%d", history), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n++
				c.Write(WriteEvent{Key: names[n%keys], ID: WriteID{Node: "n1", Epoch: 1, Counter: n}, Coord: 1, Ack: time.Duration(n)})
			}
		})
		b.Run(fmt.Sprintf("read/history=%d", history), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				c.Read(ReadEvent{Key: names[i%keys], Coord: 2, Invoke: time.Duration(n + 1), Found: true, Siblings: 1, Observed: obs})
			}
		})
	}
}

// BenchmarkHistogramRecord measures recording one latency.
func BenchmarkHistogramRecord(b *testing.B) {
	for _, d := range []time.Duration{50 * time.Microsecond, 5 * time.Millisecond, 2 * time.Second} {
		b.Run(d.String(), func(b *testing.B) {
			l := newLatency()
			b.ReportAllocs()
			for b.Loop() {
				l.record(d)
			}
		})
	}
}

// BenchmarkKeyChooser measures drawing one key index.
func BenchmarkKeyChooser(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		u, _ := NewUniform(n)
		z, _ := NewZipfian(n, DefaultTheta, true)
		l, _ := NewLatest(n, DefaultTheta)
		for _, c := range []struct {
			name string
			c    KeyChooser
		}{{"uniform", u}, {"zipfian", z}, {"latest", l}} {
			b.Run(fmt.Sprintf("%s/keys=%d", c.name, n), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				b.ReportAllocs()
				for b.Loop() {
					_ = c.c.Next(r)
				}
			})
		}
	}
}

// nopClient answers instantly: every write is acknowledged with a fresh
// dot, every read covers everything. Running against it measures the
// harness's own cost per operation.
type nopClient struct{ n atomic.Uint64 }

func (c *nopClient) Coordinators() int { return 3 }

func (c *nopClient) Get(context.Context, int, string, Quorum, bool) (ReadResult, error) {
	return ReadResult{Found: true, Siblings: 1, Context: "ctx", Observed: ObservedFunc(func(WriteID) bool { return true })}, nil
}

func (c *nopClient) Put(context.Context, int, string, []byte, string, Quorum) (WriteResult, error) {
	return WriteResult{ID: WriteID{Node: "n", Epoch: 1, Counter: c.n.Add(1)}, Context: "ctx"}, nil
}

// BenchmarkRun measures the harness overhead per operation (key choice,
// timing, histogram, checker, coordinator choice) for a closed-loop run of
// 20,000 YCSB A operations over 10,000 keys against a client that does
// nothing; ns/benchop is the figure.
func BenchmarkRun(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Keys, cfg.Concurrency, cfg.Duration, cfg.Ops = 10_000, workers, 0, 20_000
			cfg.Load, cfg.CheckLost, cfg.Settle = false, false, 0
			b.ReportAllocs()
			var ops int64
			start := time.Now()
			for b.Loop() {
				res, err := Run(b.Context(), &nopClient{}, cfg)
				if err != nil {
					b.Fatal(err)
				}
				ops += res.Ops
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(ops), "ns/benchop")
		})
	}
}
